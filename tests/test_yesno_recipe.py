"""egs/yesno/run.sh end to end (prepare -> tokenizer -> train -> decode -> score) on CPU: WER <= 1%
on the 30 test files, and a second run skips every stage's work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "egs" / "yesno" / "run.sh"


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        ["bash", str(RUN), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_unknown_option_is_an_error():
    proc = _run("--no-such-option", "1")
    assert proc.returncode != 0
    assert "unknown option --no-such-option" in proc.stderr


def test_yesno_recipe_reaches_one_percent_wer(shared_data, tmp_path):
    tarball = shared_data / "yesno" / "waves_yesno.tar.gz"
    if not tarball.is_file():
        pytest.skip(f"{tarball} not present")
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = ("--tarball", str(tarball), "--data", str(data), "--exp", str(exp))
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((exp / "decode_test" / "wer.json").read_text())
    assert report["num_utterances"] == 30
    assert report["words"]["ref_len"] == 240
    assert report["wer"] <= 0.01, (exp / "decode_test" / "wer.txt").read_text()[-3000:]
    assert "%WER" in proc.stdout

    model = exp / "model" / "model.safetensors"
    hyp = exp / "decode_test" / "hyp.jsonl"
    stamps = (model.stat().st_mtime_ns, hyp.stat().st_mtime_ns)
    again = _run(*args, "--stage", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipping training" in again.stderr and "skipping decoding" in again.stderr
    assert (model.stat().st_mtime_ns, hyp.stat().st_mtime_ns) == stamps
