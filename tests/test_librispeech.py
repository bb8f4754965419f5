"""LibriSpeech: download -> verify -> extract -> prepare, from a tiny tarball on 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora import librispeech as ls
from asr.corpora.librispeech import LibriSpeechError, download_subset, prepare_subset
from asr.data.manifest import read_manifest, validate_manifest
from asr.io import download as dl
from asr.io.download import DownloadError
from tests.local_http_server import ServerState, serve

RATE = 16000
# speaker -> chapter -> [(utt number, samples, transcript)]
CORPUS = {
    "19": {"198": [(0, 4000, "NORTHANGER ABBEY"), (1, 5600, "THIS LITTLE WORK WAS FINISHED")]},
    "1272": {
        "128104": [(0, 3200, "MISTER QUILTER IS THE APOSTLE")],
        "135031": [(2, 4800, "BECAUSE YOU WERE SLEEPING"), (3, 2400, "I DON'T KNOW")],
    },
}
UTT_IDS = ["1272-128104-0000", "1272-135031-0002", "1272-135031-0003", "19-198-0000", "19-198-0001"]


def _build_tree(root: Path, subset: str) -> Path:
    """A LibriSpeech-format subset under ``root/LibriSpeech/<subset>`` with short FLACs."""
    rng = np.random.default_rng(0)
    base = root / "LibriSpeech"
    for speaker, chapters in CORPUS.items():
        for chapter, utts in chapters.items():
            folder = base / subset / speaker / chapter
            folder.mkdir(parents=True)
            lines = []
            for num, samples, text in utts:
                utt_id = f"{speaker}-{chapter}-{num:04d}"
                audio = (0.1 * rng.standard_normal(samples)).astype(np.float32)
                sf.write(folder / f"{utt_id}.flac", audio, RATE, subtype="PCM_16")
                lines.append(f"{utt_id} {text}\n")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    (base / "SPEAKERS.TXT").write_text("; ID |SEX| SUBSET |MINUTES| NAME\n19 | F | x | 1 | A\n")
    return base / subset


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dev-clean.tar.gz`` in LibriSpeech's layout."""
    work = tmp_path_factory.mktemp("build")
    _build_tree(work, "dev-clean")
    out = tmp_path_factory.mktemp("tarballs") / "dev-clean.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(work / "LibriSpeech", arcname="LibriSpeech")
    return out


@pytest.fixture
def published(tarball: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Make the tiny tarball's md5 the "published" one for dev-clean."""
    data = tarball.read_bytes()
    monkeypatch.setitem(ls.SUBSET_MD5, "dev-clean", hashlib.md5(data).hexdigest())
    monkeypatch.setattr(dl, "RETRY_PAUSE_S", 0.0)
    return data


def test_published_checksums_are_well_formed() -> None:
    assert set(ls.SUBSETS) == {
        "dev-clean", "dev-other", "test-clean", "test-other",
        "train-clean-100", "train-clean-360", "train-other-500",
    }  # fmt: skip
    for md5 in [*ls.SUBSET_MD5.values(), *ls.LM_MD5.values()]:
        assert re.fullmatch(r"[0-9a-f]{32}", md5)
    assert ls.subset_resource("dev-clean").base_url == "https://www.openslr.org/resources/12"
    assert (
        ls.lm_resource("librispeech-vocab.txt").base_url == "https://www.openslr.org/resources/11"
    )
    with pytest.raises(LibriSpeechError, match="unknown LibriSpeech subset 'dev'"):
        ls.subset_resource("dev")


def test_download_resume_extract_prepare(published: bytes, tmp_path: Path) -> None:
    with serve(ServerState(files={"/12/dev-clean.tar.gz": published})) as server:
        server.drop_once.add("/12/dev-clean.tar.gz")
        dest = tmp_path / "corpus"
        out = download_subset("dev-clean", dest, mirror=f"{server.base_url}/12", progress=False)
        assert out == dest / "LibriSpeech" / "dev-clean"
        assert server.ranges("/12/dev-clean.tar.gz") == [None, f"bytes={len(published) // 2}-"]
        assert (dest / "dev-clean.tar.gz").read_bytes() == published
        # Done: no request, no re-extraction.
        download_subset("dev-clean", dest, mirror=f"{server.base_url}/12", progress=False)
        assert len(server.requests) == 2

    result = prepare_subset(dest, "dev-clean", tmp_path / "manifests", progress=False)
    assert result.manifest == tmp_path / "manifests" / "dev-clean.jsonl"
    assert result.num_utterances == 5 and result.skipped == () and not result.was_done
    utts = validate_manifest(result.manifest)
    assert [u.utt_id for u in utts] == UTT_IDS
    expected = {
        f"{spk}-{chap}-{num:04d}": (n / RATE, text, spk)
        for spk, chapters in CORPUS.items()
        for chap, items in chapters.items()
        for num, n, text in items
    }
    for utt in utts:
        duration, text, speaker = expected[utt.utt_id]
        assert utt.duration == duration and utt.text == text and utt.speaker == speaker
        assert Path(utt.audio_filepath).name == f"{utt.utt_id}.flac"
        assert sf.info(utt.audio_filepath).frames == round(duration * RATE)
    assert result.hours == pytest.approx(sum(v[0] for v in expected.values()) / 3600)
    again = prepare_subset(dest, "dev-clean", tmp_path / "manifests", progress=False)
    assert again.was_done and again.num_utterances == 5


def test_corrupt_download_is_rejected_before_extraction(published: bytes, tmp_path: Path) -> None:
    corrupt = bytearray(published)
    corrupt[len(corrupt) // 3] ^= 0xFF
    with serve(ServerState(files={"/dev-clean.tar.gz": bytes(corrupt)})) as server:
        url = f"{server.base_url}/dev-clean.tar.gz"
        with pytest.raises(DownloadError, match=rf"^{re.escape(url)}: md5 mismatch"):
            download_subset("dev-clean", tmp_path, mirror=server.base_url, progress=False)
    assert list(tmp_path.iterdir()) == []  # no tarball, no .part, no LibriSpeech/


def test_local_source_folder_and_tarball(published: bytes, tarball: Path, tmp_path: Path) -> None:
    out = download_subset("dev-clean", tmp_path / "a", source=tarball.parent, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["1272", "19"]
    assert not (tmp_path / "a" / "dev-clean.tar.gz").exists()  # used in place
    out = download_subset("dev-clean", tmp_path / "b", source=tarball, progress=False)
    assert (out / "19" / "198" / "19-198.trans.txt").is_file()
    with pytest.raises(DownloadError, match=r"source folder has no dev-other\.tar\.gz"):
        download_subset("dev-other", tmp_path / "c", source=tarball.parent, progress=False)


def test_missing_audio_is_an_error_or_a_reported_skip(tmp_path: Path, capsys) -> None:
    subset = _build_tree(tmp_path / "root", "test-x")
    (subset / "1272" / "135031" / "1272-135031-0002.flac").unlink()
    trans = subset / "1272" / "135031" / "1272-135031.trans.txt"
    with pytest.raises(LibriSpeechError) as info:
        prepare_subset(tmp_path / "root", "test-x", tmp_path / "m", progress=False)
    assert str(info.value).startswith(f"{trans}:1: audio for 1272-135031-0002 not found")
    assert not (tmp_path / "m" / "test-x.jsonl").exists()
    result = prepare_subset(
        tmp_path / "root" / "LibriSpeech", "test-x", tmp_path / "m", skip_missing=True,
        progress=False,
    )  # fmt: skip
    assert result.skipped == ("1272-135031-0002",) and result.num_utterances == 4
    assert "skipped 1272-135031-0002" in capsys.readouterr().err
    assert [u.utt_id for u in read_manifest(result.manifest)] == [
        i for i in UTT_IDS if i != "1272-135031-0002"
    ]


def test_bad_transcript_line_names_file_and_line(tmp_path: Path) -> None:
    subset = _build_tree(tmp_path, "dev-x")
    trans = subset / "19" / "198" / "19-198.trans.txt"
    trans.write_text("19-198-0000 NORTHANGER ABBEY\n20-198-0001 WRONG PREFIX\n")
    with pytest.raises(LibriSpeechError, match=rf"^{re.escape(str(trans))}:2: expected"):
        prepare_subset(tmp_path, "dev-x", tmp_path / "m", progress=False)
    with pytest.raises(LibriSpeechError, match="no LibriSpeech/nope/ or nope/ folder"):
        prepare_subset(tmp_path, "nope", tmp_path / "m", progress=False)


def test_cli_download_and_prepare(published: bytes, tarball: Path, tmp_path: Path, capsys) -> None:
    dest, out = str(tmp_path / "ls"), str(tmp_path / "manifests")
    args = ["download", "librispeech", "--subsets", "dev-clean", "--dest", dest]
    assert main([*args, "--source", str(tarball.parent), "--no-progress"]) == 0
    prep = ["prepare", "librispeech", "--root", dest, "--subsets", "dev-clean", "--out", out]
    assert main(prep) == 0  # stderr is no terminal here: no progress bar redraws
    written = capsys.readouterr()
    assert "dev-clean: wrote" in written.out and "\r" not in written.err
    Path(out, "dev-clean.jsonl").unlink()
    assert main([*prep, "--no-progress"]) == 0
    assert "dev-clean: wrote" in capsys.readouterr().out
    assert main([*prep, "--no-progress"]) == 0
    assert "dev-clean: exists" in capsys.readouterr().out
    assert len(read_manifest(Path(out) / "dev-clean.jsonl")) == 5
    assert main([*prep[:5], "dev-other", "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "dev-other" in err and "\n" not in err


def test_lm_resources_download_and_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"librispeech-vocab.txt": b"A\nABBEY\n", "librispeech-lm-norm.txt.gz": b"\x1f\x8bxx"}
    for name, data in files.items():
        monkeypatch.setitem(ls.LM_MD5, name, hashlib.md5(data).hexdigest())
    with serve(ServerState(files={f"/11/{n}": d for n, d in files.items()})) as server:
        paths = ls.download_lm(
            ls.LM_RESOURCES, tmp_path / "lm", f"{server.base_url}/11", None, False
        )
    assert [p.read_bytes() for p in paths] == [files[n] for n in ls.LM_RESOURCES]
    local = tmp_path / "local"
    local.mkdir()
    (local / "librispeech-vocab.txt").write_bytes(b"corrupt")
    with pytest.raises(DownloadError, match=r"librispeech-vocab\.txt: md5 mismatch"):
        ls.download_lm(["librispeech-vocab.txt"], tmp_path / "lm2", source=local)
    assert not (tmp_path / "lm2" / "librispeech-vocab.txt").exists()
    (local / "librispeech-vocab.txt").write_bytes(files["librispeech-vocab.txt"])
    (copied,) = ls.download_lm(["librispeech-vocab.txt"], tmp_path / "lm2", source=local)
    assert copied == tmp_path / "lm2" / "librispeech-vocab.txt"
    assert copied.read_bytes() == files["librispeech-vocab.txt"]
