"""yesno: the openslr 1 tarball from ../shared/data -> 30/30 train/test manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora.yesno import (
    YesNoError,
    download_yesno,
    find_wavs,
    prepare_yesno,
    split_files,
    transcript,
)
from asr.data.manifest import validate_manifest
from tests.local_http_server import ServerState, serve


@pytest.fixture(scope="module")
def yesno_tarball(shared_data: Path) -> Path:
    path = shared_data / "yesno" / "waves_yesno.tar.gz"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_transcript_from_file_name() -> None:
    assert transcript("a/1_0_0_1_1_1_0_1.wav") == "YES NO NO YES YES YES NO YES"
    with pytest.raises(YesNoError, match=r"1_2_0\.wav: file name is not 8 labels"):
        transcript("1_2_0.wav")


def test_prepare_from_tarball_kaldi_split(yesno_tarball: Path, tmp_path: Path) -> None:
    root = download_yesno(tmp_path, source=yesno_tarball, progress=False)
    assert root == tmp_path / "waves_yesno"
    paths = prepare_yesno(tmp_path, tmp_path / "m")
    train, test = validate_manifest(paths["train"]), validate_manifest(paths["test"])
    assert len(train) == len(test) == 30
    names = sorted(p.name for p in root.glob("*.wav"))
    # Kaldi: the listing sorted, first half train, second half test.
    assert [Path(u.audio_filepath).name for u in train] == names[:30]
    assert [Path(u.audio_filepath).name for u in test] == names[30:]
    for utt in train + test:
        info = sf.info(utt.audio_filepath)
        assert info.samplerate == 8000
        assert utt.duration == info.frames / 8000
        labels = Path(utt.audio_filepath).stem.split("_")
        assert utt.text.split() == ["YES" if c == "1" else "NO" for c in labels]
        assert utt.utt_id == Path(utt.audio_filepath).stem
    # Second run: the manifests exist, nothing is rewritten.
    mtime = paths["train"].stat().st_mtime_ns
    assert prepare_yesno(tmp_path, tmp_path / "m") == paths
    assert paths["train"].stat().st_mtime_ns == mtime


def test_icefall_split_alternates(yesno_tarball: Path, tmp_path: Path) -> None:
    root = download_yesno(tmp_path, source=yesno_tarball, progress=False)
    wavs = find_wavs(root)
    train, test = split_files(list(reversed(wavs)), "icefall")
    assert train == wavs[0::2] and test == wavs[1::2]
    assert not set(train) & set(test) and len(train) == len(test) == 30


def test_download_over_http_and_cli(yesno_tarball: Path, tmp_path: Path, capsys) -> None:
    data = yesno_tarball.read_bytes()
    with serve(ServerState(files={"/1/waves_yesno.tar.gz": data})) as server:
        mirror = f"{server.base_url}/1"
        argv = ["download", "yesno", "--dest", str(tmp_path / "d"), "--mirror", mirror]
        assert main([*argv, "--no-progress"]) == 0
        assert (tmp_path / "d" / "waves_yesno.tar.gz").read_bytes() == data
        assert "no published md5" in capsys.readouterr().err
    out = tmp_path / "m"
    assert main(["prepare", "yesno", "--root", str(tmp_path / "d"), "--out", str(out)]) == 0
    assert len(validate_manifest(out / "test.jsonl")) == 30


def test_wrong_folder_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "waves_yesno"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"{i}_0_0_0_0_0_0_1.wav", np.zeros(800, np.float32), 8000)
    with pytest.raises(YesNoError, match=r"waves_yesno: expected 60 \.wav files, found 3"):
        prepare_yesno(tmp_path, tmp_path / "m")
    with pytest.raises(YesNoError, match="unknown yesno split 'random'"):
        prepare_yesno(tmp_path, tmp_path / "m", split="random")


def _fake_yesno(folder: Path) -> Path:
    """60 short, well-named WAV files (no tarball needed)."""
    folder.mkdir(parents=True)
    for n in range(60):
        name = "_".join(format(n * 4 + 1, "08b"))
        sf.write(str(folder / f"{name}.wav"), np.zeros(800, dtype=np.float32), 8000)
    return folder


def test_another_split_into_a_prepared_folder_is_refused(tmp_path: Path, capsys) -> None:
    """Issue 25 item 13: ``--split icefall`` over kaldi manifests said success and kept them."""
    root, out = _fake_yesno(tmp_path / "waves_yesno"), tmp_path / "m"
    argv = ["prepare", "yesno", "--root", str(root), "--out", str(out)]
    assert main([*argv, "--split", "kaldi"]) == 0
    kaldi = (out / "train.jsonl").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--split", "icefall"]) == 2
    err = capsys.readouterr().err
    assert "kaldi split, not icefall" in err and "--overwrite" in err and err.count("\n") == 1
    assert (out / "train.jsonl").read_bytes() == kaldi
    assert main([*argv, "--split", "kaldi"]) == 0  # the same split: kept, fine
    assert main([*argv, "--split", "icefall", "--overwrite"]) == 0
    assert (out / ".yesno-split").read_text().strip() == "icefall"
    (out / ".yesno-split").unlink()  # manifests of an older version: the split is worked out
    with pytest.raises(YesNoError, match="icefall split, not kaldi"):
        prepare_yesno(root, out, split="kaldi")
