"""egs/real/local/grow.py, the recipe's command around asr.models.grow: a folder grown deeper
(with calibration audio from a manifest) and wider computes what the source folder did,
checked here by loading both folders; bad arguments and outputs it did not create get one
line and leave files alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.models.io import export_model, load_model
from asr.text.tokenizer import CharTokenizer
from tests.test_grow import _model

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "egs" / "real" / "local" / "grow.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def _source(tmp_path: Path) -> Path:
    export_model(_model(), CharTokenizer(), tmp_path / "src")
    return tmp_path / "src"


def _manifest(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    rows = []
    for i, n in enumerate((12000, 7000, 9500)):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (rng.standard_normal(n) * 0.1).astype(np.float32), 16000)
        rows.append({"audio_filepath": str(path), "duration": n / 16000, "text": "A B"})
    manifest = tmp_path / "calib.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def _same_output(src: Path, out: Path) -> tuple[int, int]:
    """Parameter counts of both folders, after checking they give the same log-probs."""
    a, _ = load_model(src)
    b, _ = load_model(out)
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5200])
    with torch.no_grad():
        want, want_len = a.eval()(waves, lengths)
        got, got_len = b.eval()(waves, lengths)
    assert torch.equal(got_len, want_len)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    return a.num_parameters(), b.num_parameters()


def test_deeper_and_wider_folder_computes_the_same(tmp_path: Path) -> None:
    src, calib = _source(tmp_path), _manifest(tmp_path)
    out = tmp_path / "grown"
    done = _run(str(src), str(out), "--extra", "1", "--calib", str(calib), "--width", "24")
    assert done.returncode == 0, done.stderr
    before, after = _same_output(src, out)
    assert f"{before:,} -> {after:,} parameters" in done.stdout and after > before
    grown, _ = load_model(out)
    assert [b.repeat for b in grown.cfg.encoder.blocks] == [1, 3, 2, 1, 1]
    assert grown.encoder.blocks[1].mconv[1].conv.weight.shape[0] == 24


def test_wider_only_needs_no_audio(tmp_path: Path) -> None:
    src = _source(tmp_path)
    done = _run(str(src), str(tmp_path / "wide"), "--width", "20")
    assert done.returncode == 0, done.stderr
    before, after = _same_output(src, tmp_path / "wide")
    assert after > before


def test_bad_arguments_and_foreign_output(tmp_path: Path) -> None:
    src = _source(tmp_path)
    nothing = _run(str(src), str(tmp_path / "x"))
    assert nothing.returncode == 2 and "nothing to do" in nothing.stderr
    no_calib = _run(str(src), str(tmp_path / "x"), "--extra", "1")
    assert no_calib.returncode == 2 and "--calib" in no_calib.stderr.splitlines()[-1]
    assert not (tmp_path / "x").exists()
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    refused = _run(str(src), str(foreign), "--width", "20")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and str(foreign) in refused.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["todo.txt"]
    assert (foreign / "todo.txt").read_text() == "mine"
