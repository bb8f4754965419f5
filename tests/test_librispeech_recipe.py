"""egs/librispeech/run.sh end to end on a tiny LibriSpeech-format corpus served over HTTP.

The synthetic builder (espeak-ng voices) renders a few sentences into train-clean-100,
dev-clean and test-clean (dev-other and test-other are copies); they are packed into tarballs
named like openslr's, with a small librispeech-lm-norm.txt.gz, served from 127.0.0.1 and
downloaded by stage 0 through ``--mirror`` with ``--md5-file`` (the published checksums do not
match repacked files). Every stage then runs with tiny configs on the CPU (``--ngpu 0``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from asr.corpora import synth, synth_config, tts
from asr.io.download import DownloadError, read_md5_file
from asr.text.normalize import normalize_text
from tests.local_http_server import ServerState, serve

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ROOT / "egs" / "librispeech" / "run.sh"
VOICES = ("espeak-ng:en-us+m1", "espeak-ng:en-gb+f2")
EVAL_COPIES = {"dev-clean": "dev-other", "test-clean": "test-other"}
WORDS = (
    *("garden", "window", "letter", "morning", "candle", "shadow", "harbour", "meadow"),
    *("village", "silver", "evening", "winter", "lantern", "kitchen", "bridge", "journey"),
)

TINY_MODEL = """\
frontend: {frontend}
encoder:
  blocks:
    - {{filters: 64, repeat: 1, kernel: 11, stride: 2}}
    - {{filters: 64, repeat: 2, kernel: 11, residual: true}}
    - {{filters: 96, repeat: 1, kernel: 1, separable: false}}
"""
TINY_TRAIN = """\
model: model.yaml
data:
  train_manifest: unused.jsonl
  max_batch_seconds: 60.0
  num_buckets: 1
optim:
  lr: 3.0e-3
  warmup_steps: 2
engine:
  epochs: 2
  average_best: 1
  log_every_steps: 1
  device: cpu
"""
TINY_LM = """\
model: {embedding_dim: 16, hidden_size: 32, num_layers: 1, proj_size: 0, dropout: 0.0}
data: {text_format: lines, max_batch_tokens: 2048, max_batch_size: 32, buffer_sentences: 100}
optim: {lr: 3.0e-3, schedule: constant}
engine: {max_steps: 6, checkpoint_every_steps: 3, log_every_steps: 1, threads: 1}
"""
TINY_DECODE = "beam_size: 4\ntoken_top_k: 8\nalpha: 0.3\n"


def test_md5_file_format(tmp_path: Path) -> None:
    good = tmp_path / "md5.txt"
    good.write_text(
        f"# repacked\n{'a' * 32}  dev-clean.tar.gz\n\n{'B' * 32} *lm/librispeech-vocab.txt\n"
    )
    assert read_md5_file(good) == {
        "dev-clean.tar.gz": "a" * 32,
        "librispeech-vocab.txt": "b" * 32,
    }
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{'a' * 32}  x.tar.gz\nnot-a-sum  y.tar.gz\n")
    with pytest.raises(DownloadError, match=r"bad\.txt:2: expected"):
        read_md5_file(bad)


def _novels(folder: Path) -> None:
    """Four short 'novels' of simple sentences (one each for dev and test, two for train)."""
    rng = random.Random(3)
    folder.mkdir()
    for n in range(4):
        lines = []
        for i in range(6):
            a, b, c = rng.sample(WORDS, 3)
            lines.append(f"The {a} and the {b} were near the {c}, said the {WORDS[n + i]}.")
        (folder / f"novel{n}.txt").write_text(" ".join(lines) + "\n", encoding="utf-8")


def _build_corpus(tmp_path: Path) -> Path:
    cfg = synth_config.SynthConfig(
        text_dir=str(tmp_path / "novels"), text_glob="*.txt", hours_train=0.006,
        hours_dev=0.0012, hours_test=0.0012, novels_dev=1, novels_test=1,
        engines=("espeak-ng",), optional_engines=(), voices=VOICES, settings_per_voice=1,
        utts_per_block=2, utts_per_block_eval=2, subset_train="train-clean-100",
        subset_dev="dev-clean", subset_test="test-clean", min_duration_s=1.0,
    )  # fmt: skip
    out = tmp_path / "synth"
    synth.build_corpus(cfg, out, jobs=1)
    libri = out / "LibriSpeech"
    for subset, copy in EVAL_COPIES.items():
        shutil.copytree(libri / subset, libri / copy)
    return libri


def _tarball(libri: Path, subset: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(libri / subset, arcname=f"LibriSpeech/{subset}")
    return buffer.getvalue()


def _lm_files(tmp_path: Path, libri: Path) -> dict[str, bytes]:
    """librispeech-lm-norm.txt.gz (novel sentences + train transcripts) and the vocabulary."""
    sentences = []
    for novel in sorted((tmp_path / "novels").glob("*.txt")):
        for sentence in re.split(r"(?<=\.) ", novel.read_text(encoding="utf-8").strip()):
            sentences.append(normalize_text(sentence))
    for trans in sorted((libri / "train-clean-100").rglob("*.trans.txt")):
        sentences += [line.split(" ", 1)[1] for line in trans.read_text().splitlines()]
    text = "\n".join(sentences) + "\n"
    vocab = "\n".join(sorted({w for s in sentences for w in s.split()})) + "\n"
    return {
        "librispeech-lm-norm.txt.gz": gzip.compress(text.encode(), mtime=0),
        "librispeech-vocab.txt": vocab.encode(),
    }


def _configs(tmp_path: Path) -> dict[str, Path]:
    conf = tmp_path / "conf"
    conf.mkdir()
    frontend = ROOT / "conf" / "frontend" / "nemo_mel64.yaml"
    (conf / "model.yaml").write_text(TINY_MODEL.format(frontend=frontend))
    paths = {"am": conf / "train.yaml", "lm": conf / "lm.yaml", "decode": conf / "decode.yaml"}
    paths["am"].write_text(TINY_TRAIN)
    paths["lm"].write_text(TINY_LM)
    paths["decode"].write_text(TINY_DECODE)
    return paths


def _run(args: list[str], log: Path, script: Path = RUN_SH) -> str:
    """Run a recipe's run.sh (one thread); its output goes to ``log``; returns stdout."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=900
    )
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"run.sh failed:\n{(result.stdout + result.stderr)[-4000:]}"
    return result.stdout


def test_librispeech_recipe_end_to_end(tmp_path: Path) -> None:
    if not [v for v in tts.available_voices(["espeak-ng"]) if v.base_id in VOICES]:
        pytest.skip("espeak-ng voices en-us+m1/en-gb+f2 are not installed")
    _novels(tmp_path / "novels")
    libri = _build_corpus(tmp_path)
    subsets = ["train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"]
    files = {f"{s}.tar.gz": _tarball(libri, s) for s in subsets}
    files.update(_lm_files(tmp_path, libri))
    md5_file = tmp_path / "md5sum.txt"
    md5_file.write_text("".join(f"{hashlib.md5(b).hexdigest()}  {n}\n" for n, b in files.items()))
    conf = _configs(tmp_path)
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = [
        *("--data", str(data), "--exp", str(exp), "--ngpu", "0", "--threads", "1"),
        *("--train-subsets", "train-clean-100", "--md5-file", str(md5_file)),
        *("--am-config", str(conf["am"]), "--lm-config", str(conf["lm"])),
        *("--decode-config", str(conf["decode"]), "--tune-alphas", "0,0.5", "--tune-betas", "0"),
    ]  # fmt: skip
    state = ServerState(files={f"/{name}": blob for name, blob in files.items()})
    with serve(state):
        url = state.base_url + "/"
        stdout = _run([*args, "--mirror", url, "--lm-mirror", url], tmp_path / "run.log")
    fetched = {path for path, _ in state.requests}
    assert fetched == {f"/{name}" for name in files}

    # stage 0-1: extracted subsets and their manifests (+ the combined train/dev ones)
    manifests = data / "manifests"
    for subset in subsets:
        assert (data / "download" / "LibriSpeech" / subset).is_dir()
        assert (manifests / f"{subset}.jsonl").stat().st_size > 0
    dev_lines = (manifests / "dev.jsonl").read_text().splitlines()
    assert len(dev_lines) == 2 * len((manifests / "dev-clean.jsonl").read_text().splitlines())
    # stages 2-6: tokenizer, LM text, LM, acoustic model, tuned decoder config
    assert (data / "lang_char" / "tokenizer.yaml").is_file()
    with gzip.open(data / "lm" / "train.txt.gz", "rt") as fh:
        assert all(line == normalize_text(line) for line in fh.read().splitlines())
    assert (exp / "lm" / "lm" / "model.safetensors").is_file()
    assert (exp / "am" / "model" / "model.safetensors").is_file()
    assert (exp / "tune" / "decode.yaml").is_file()
    # stages 7-8: every set decoded three ways and scored; a %WER line each; the summary table
    for decoder in ("greedy", "beam", "beam_lstm"):
        for subset in subsets[1:]:
            folder = exp / "decode" / decoder / subset
            hyps = [json.loads(line) for line in (folder / "hyp.jsonl").read_text().splitlines()]
            assert hyps and all("pred_text" in h for h in hyps)
            assert json.loads((folder / "wer.json").read_text())["words"]["ref_len"] > 0
    scores = re.findall(r"^%WER \d+\.\d+ \[.*$", stdout, flags=re.M)
    assert len(scores) == 12
    table = (exp / "results.md").read_text().splitlines()
    assert len(table) == 2 + 12 and "| test-other | beam_lstm |" in "\n".join(table)

    # again from the LM stage on: every stage finds its outputs and skips, the scores are kept
    again = _run([*args, "--stage", "4"], tmp_path / "run2.log")
    assert "skipping LM training" in (tmp_path / "run2.log").read_text()
    assert re.findall(r"^%WER \d+\.\d+ \[.*$", again, flags=re.M) == scores
