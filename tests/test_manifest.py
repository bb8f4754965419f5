"""Manifests: round trip, relative paths, validation errors naming path and line, filter, concat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.data.manifest import (
    ManifestError,
    Utterance,
    concat_manifests,
    filter_by_duration,
    iter_manifest,
    read_manifest,
    total_duration,
    validate_manifest,
    write_manifest,
)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    utts = [
        Utterance(str(tmp_path / "a.flac"), 1.5, "HELLO WORLD", 0.0, "1-2-0000", "1"),
        Utterance(str(tmp_path / "b.wav"), 2.25, "ÉTÉ naïve", 0.5, None, None),
    ]
    out = tmp_path / "m.jsonl"
    assert write_manifest(out, utts) == 2
    assert read_manifest(out) == utts
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"audio_filepath", "duration", "text", "utt_id", "speaker"}
    second = json.loads(out.read_text(encoding="utf-8").splitlines()[1])
    assert set(second) == {"audio_filepath", "duration", "text", "offset"}
    assert second["text"] == "ÉTÉ naïve"  # written as UTF-8, not \\u escapes
    assert "ÉTÉ" in out.read_text(encoding="utf-8")


def test_relative_paths_resolve_against_manifest_folder(tmp_path: Path, monkeypatch) -> None:
    corpus = tmp_path / "corpus"
    audio = _touch(corpus / "wav" / "x.wav")
    manifest = _write_lines(
        corpus / "m.jsonl",
        ['{"audio_filepath": "wav/x.wav", "duration": 1, "text": "X", "lang": "en"}'],
    )
    monkeypatch.chdir(tmp_path)  # resolution must not depend on the working directory
    (utt,) = validate_manifest(Path("corpus/m.jsonl"))
    assert Path(utt.audio_filepath) == audio.resolve()
    assert utt.duration == 1.0 and isinstance(utt.duration, float)
    # Written back relative: the folder can move.
    write_manifest(corpus / "rel.jsonl", [utt], relative=True)
    assert json.loads((corpus / "rel.jsonl").read_text())["audio_filepath"] == "wav/x.wav"
    moved = tmp_path / "moved"
    corpus.rename(moved)
    (utt2,) = validate_manifest(moved / "rel.jsonl")
    assert Path(utt2.audio_filepath) == (moved / "wav" / "x.wav").resolve()
    assert manifest.name == "m.jsonl"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"audio_filepath": "a.wav", "duration": 1.0, "text": "A"', "bad JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"audio_filepath": "a.wav", "text": "A"}', "no 'duration', and the audio cannot be"),
        ('{"audio_filepath": "a.wav", "duration": 1}', "missing key 'text'"),
        ('{"duration": 1.0, "text": "A"}', "missing key 'audio_filepath'"),
        ('{"audio_filepath": "a.wav", "duration": "1.0", "text": "A"}', "'duration' must be"),
        ('{"audio_filepath": "a.wav", "duration": true, "text": "A"}', "'duration' must be"),
        ('{"audio_filepath": "a.wav", "duration": -0.5, "text": "A"}', "'duration' must be >= 0"),
        ('{"audio_filepath": "a.wav", "duration": NaN, "text": "A"}', "must be finite"),
        ('{"audio_filepath": "a.wav", "duration": 1, "text": 5}', "'text' must be a string"),
        ('{"audio_filepath": 3, "duration": 1, "text": "A"}', "'audio_filepath' must be"),
        ('{"audio_filepath": "a.wav", "duration": 1, "text": "A", "offset": -1}', "'offset'"),
        ('{"audio_filepath": "a.wav", "duration": 1, "text": "A", "speaker": [1]}', "'speaker'"),
        ('{"audio_filepath": "missing.wav", "duration": 1, "text": "A"}', "audio file not found"),
    ],
)
def test_errors_name_path_and_line(tmp_path: Path, line: str, needle: str) -> None:
    _touch(tmp_path / "a.wav")
    good = '{"audio_filepath": "a.wav", "duration": 1.0, "text": "A"}'
    path = _write_lines(tmp_path / "bad.jsonl", [good, "", line, good])
    with pytest.raises(ManifestError) as info:
        validate_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: "), message
    assert needle in message
    assert "\n" not in message


def test_missing_file_is_not_checked_by_default(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "m.jsonl", ['{"audio_filepath": "gone.wav", "duration": 1, "text": "A"}']
    )
    assert len(read_manifest(path)) == 1
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: audio file not found"):
        read_manifest(path, check_files=True)


def test_missing_manifest_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"audio_filepath": "a", "duration": 1, "text": "ok"}\n{"text": "\xe9"}\n')
    with pytest.raises(ManifestError, match=r"latin1\.jsonl:2: not UTF-8"):
        read_manifest(path)


def test_iter_is_lazy(tmp_path: Path) -> None:
    good = '{"audio_filepath": "a.wav", "duration": 1.0, "text": "A"}'
    path = _write_lines(tmp_path / "m.jsonl", [good, "not json"])
    it = iter_manifest(path)
    assert next(it).text == "A"
    with pytest.raises(ManifestError, match=":2: bad JSON"):
        next(it)


def test_duplicate_utt_id_is_an_error(tmp_path: Path) -> None:
    _touch(tmp_path / "a.wav")
    line = '{"audio_filepath": "a.wav", "duration": 1.0, "text": "A", "utt_id": "u1"}'
    path = _write_lines(tmp_path / "m.jsonl", [line, line])
    with pytest.raises(ManifestError, match="duplicate utt_id 'u1'"):
        validate_manifest(path)


def test_filter_by_duration_bounds_are_inclusive() -> None:
    utts = [Utterance(f"{d}.wav", d, "A") for d in (0.5, 1.0, 2.0, 16.0, 16.5)]
    kept = filter_by_duration(utts, min_duration=1.0, max_duration=16.0)
    assert [u.duration for u in kept] == [1.0, 2.0, 16.0]
    assert filter_by_duration(utts) == utts
    assert [u.duration for u in filter_by_duration(utts, max_duration=1.0)] == [0.5, 1.0]
    assert total_duration(kept) == pytest.approx(19.0)
    with pytest.raises(ManifestError, match="min_duration"):
        filter_by_duration(utts, min_duration=3, max_duration=2)


def test_concat_resolves_each_input_against_its_own_folder(tmp_path: Path) -> None:
    a = _touch(tmp_path / "one" / "a.wav")
    b = _touch(tmp_path / "two" / "sub" / "b.wav")
    m1 = _write_lines(
        tmp_path / "one" / "m.jsonl",
        ['{"audio_filepath": "a.wav", "duration": 1, "text": "A", "utt_id": "a"}'],
    )
    m2 = _write_lines(
        tmp_path / "two" / "m.jsonl",
        ['{"audio_filepath": "sub/b.wav", "duration": 2, "text": "B", "utt_id": "b"}'],
    )
    out = tmp_path / "all" / "m.jsonl"
    utts = concat_manifests([m1, m2], out, relative=True)
    assert [u.text for u in utts] == ["A", "B"]
    again = validate_manifest(out)
    assert [Path(u.audio_filepath) for u in again] == [a.resolve(), b.resolve()]
    with pytest.raises(ManifestError, match="utt_id 'a' already in"):
        concat_manifests([m1, m1])


def test_failed_write_leaves_old_manifest(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    write_manifest(out, [Utterance("a.wav", 1.0, "OLD")])

    def broken():
        yield Utterance("b.wav", 1.0, "NEW")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_manifest(out, broken())
    assert [u.text for u in read_manifest(out)] == ["OLD"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_hand_written_manifest_gets_duration_from_the_audio(tmp_path: Path) -> None:
    """Issue 25 item 22: ``{audio_filepath, text}`` without ``duration`` failed on the key."""
    import numpy as np

    from asr.io.audio import save_audio

    save_audio(tmp_path / "x.wav", np.zeros(8000, dtype=np.float32), 16000)  # 0.5 s
    lines = ['{"audio_filepath": "x.wav", "text": "A"}',
             '{"audio_filepath": "x.wav", "text": "B", "offset": 0.2}']  # fmt: skip
    utts = read_manifest(_write_lines(tmp_path / "m.jsonl", lines), check_files=True)
    assert [u.duration for u in utts] == [0.5, 0.3]
    past = _write_lines(tmp_path / "p.jsonl", ['{"audio_filepath": "x.wav", "text": "A", '
                                               '"offset": 0.6}'])  # fmt: skip
    with pytest.raises(ManifestError, match=r"p\.jsonl:1: no 'duration'.*beyond the end"):
        read_manifest(past)
