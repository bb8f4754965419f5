"""asr decode: batched decoding equals one-at-a-time decoding, manifest order, per-file errors,
decoder registry, and the prediction JSONL that asr score reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import asr.inference.decoding as registry
from asr.api import load_model
from asr.decode.base import DecodeError, Decoder
from asr.decode.spec import DecodeSpec
from asr.inference.decoding import decoder_names, make_decoder, register_decoder
from asr.inference.manifest import DecodeSummary, decode_manifest, read_decode_manifest
from tests.tone_corpus import TINY_MODEL, make_corpus

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny model (its argmax paths are varied, not all blank)."""
    from asr import config as config_io
    from asr.models.ctc import CTCModel, ModelConfig
    from asr.models.io import export_model
    from asr.text.tokenizer import CharTokenizer

    torch.manual_seed(0)
    model = CTCModel(config_io.from_dict(ModelConfig, TINY_MODEL, where="test"), 29)
    return export_model(model.eval(), CharTokenizer(), tmp_path_factory.mktemp("m") / "model")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("audio"), 7, seed=3, name="test")


def _decode(
    model_dir: Path, manifest: Path, out: Path, spec: DecodeSpec | None = None, **kwargs
) -> DecodeSummary:
    """What asr decode does: read the manifest, load the model once, build the decoder."""
    items = read_decode_manifest(manifest)
    model = load_model(model_dir, device="cpu")
    decoder = make_decoder(spec or DecodeSpec(), model.tokenizer)
    return decode_manifest(model.network, model.tokenizer, decoder, items, out, **kwargs)


def _reference(model_dir: Path, manifest: Path) -> list[tuple[str, list[int]]]:
    """Each utterance decoded alone: (text, token frames)."""
    from asr.data.manifest import read_manifest
    from asr.decode.greedy import greedy_decode
    from asr.io.audio import load_audio
    from asr.models.io import load_model

    model, tokenizer = load_model(model_dir)
    out = []
    for utt in read_manifest(manifest):
        samples, _ = load_audio(utt.audio_filepath, 16000)
        wave = torch.from_numpy(samples)[None]
        with torch.no_grad():
            log_probs, lengths = model(wave, torch.tensor([wave.shape[1]]))
        hyp = greedy_decode(log_probs, lengths, tokenizer)[0]
        out.append((hyp.text, list(hyp.frames)))
    return out


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("batch_seconds", [1.0, 4.0, 100.0])
def test_batched_equals_one_at_a_time(model_dir, corpus, tmp_path, batch_seconds):
    out = tmp_path / "hyp.jsonl"
    summary = _decode(model_dir, corpus, out, batch_seconds=batch_seconds)
    assert summary.errors == () and summary.num_utterances == 7
    records = _read(out)
    manifest = _read(corpus)
    assert [r["utt_id"] for r in records] == [m["utt_id"] for m in manifest]  # manifest order
    assert [r["text"] for r in records] == [m["text"] for m in manifest]
    reference = _reference(model_dir, corpus)
    assert [r["pred_text"] for r in records] == [text for text, _ in reference]
    assert any(r["pred_text"] for r in records)  # not trivially empty
    shift = 0.02  # 10 ms features x stride 2
    for record, (_, frames) in zip(records, reference):
        assert len(record["tokens"]) == len(frames)
        assert record["token_times_s"] == pytest.approx([f * shift for f in frames])


def test_bad_audio_is_reported_not_fatal(model_dir, corpus, tmp_path, capsys):
    lines = corpus.read_text().splitlines()
    bad = json.loads(lines[2])
    bad["audio_filepath"] = str(tmp_path / "missing.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    worse = json.loads(lines[4])
    worse["audio_filepath"] = str(broken)
    lines[2], lines[4] = json.dumps(bad), json.dumps(worse)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "hyp.jsonl"
    from asr.cli import main

    args = ["decode", "--model", str(model_dir), "--manifest", str(manifest), "--out", str(out)]
    assert main([*args, "--batch-seconds", "3"]) == 1
    stderr = capsys.readouterr().err
    assert "missing.wav" in stderr and "broken.wav" in stderr
    records = _read(out)
    assert len(records) == 7
    assert records[2]["pred_text"] == "" and "missing.wav" in records[2]["error"]
    assert "broken.wav" in records[4]["error"]
    good = [r for i, r in enumerate(records) if i not in (2, 4)]
    assert all("error" not in r for r in good)
    reference = _reference(model_dir, corpus)
    expected = [text for i, (text, _) in enumerate(reference) if i not in (2, 4)]
    assert [r["pred_text"] for r in good] == expected


def test_score_reads_the_predictions(model_dir, corpus, tmp_path):
    """asr score (manifest, hyp.jsonl) equals jiwer on the same pairs."""
    jiwer = pytest.importorskip("jiwer")
    out = tmp_path / "hyp.jsonl"
    _decode(model_dir, corpus, out)
    proc = subprocess.run(
        [sys.executable, "-m", "asr", "score", str(corpus), str(out), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    records = _read(out)
    refs = [r["text"] for r in records]
    hyps = [r["pred_text"] for r in records]
    expected = jiwer.process_words(refs, [h if h.strip() else "" for h in hyps])
    errors = expected.substitutions + expected.deletions + expected.insertions
    assert report["words"]["errors"] == errors
    assert report["num_utterances"] == 7


def test_decoder_registry(model_dir, corpus, tmp_path, monkeypatch):
    assert {"greedy", "beam", "kenlm"} <= set(decoder_names())
    with pytest.raises(DecodeError, match="unknown decoder 'nope'"):
        make_decoder(DecodeSpec("nope"), None)  # type: ignore[arg-type]

    class Constant(Decoder):
        def __init__(self, word: str) -> None:
            self.word = word

        def decode(self, log_probs, lengths):
            from asr.decode.greedy import GreedyHypothesis

            return [GreedyHypothesis((), None, self.word, 0.0) for _ in range(len(lengths))]

    monkeypatch.setattr(registry, "DECODERS", dict(registry.DECODERS))
    register_decoder("test-constant", lambda spec, tokenizer: Constant("B"))
    out = tmp_path / "hyp.jsonl"
    _decode(model_dir, corpus, out, DecodeSpec("test-constant"))
    records = _read(out)
    assert {r["pred_text"] for r in records} == {"B"}
    assert all("token_times_s" not in r for r in records)


def test_errors_before_decoding(model_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DecodeError, match="no utterances"):
        read_decode_manifest(empty)
    assert not (tmp_path / "h.jsonl").exists()


def test_one_cli_convention_for_decoding_commands():
    """decode, transcribe and tune-decoder share option names and defaults (issue 16, part 3)."""
    from asr.cli import build_parser

    parser = build_parser()
    decode = parser.parse_args(["decode", "--manifest", "m.jsonl", "--out", "h.jsonl"])
    transcribe = parser.parse_args(["transcribe", "a.flac"])
    tune = parser.parse_args(["tune-decoder", "--model", "m", "--lm", "l", "--manifest", "d",
                              "--out", "o"])  # fmt: skip
    for args in (decode, transcribe, tune):
        assert args.device == "auto" and args.batch_seconds > 0
    assert decode.model is None and transcribe.model is None  # the bundled model
    assert decode.decoder is None and transcribe.decoder is None  # the model folder's decoding
    assert not hasattr(transcribe, "batch_size")


def test_existing_output_needs_overwrite(model_dir, corpus, tmp_path, capsys, monkeypatch):
    """An existing --out (maybe the only copy of a long decode) is a one-line error before the
    model loads, and stays as it was; --overwrite replaces it; the manifest never."""
    import asr.api
    from asr.cli import main

    out = tmp_path / "hyp.jsonl"
    out.write_text("my only copy\n")
    args = ["decode", "--model", str(model_dir), "--manifest", str(corpus), "--out", str(out)]

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(asr.api, "load_model", refuse)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out}: exists; pass --overwrite to replace it"
    assert out.read_text() == "my only copy\n"
    manifest = corpus.read_bytes()
    assert main([*args[:-1], str(corpus), "--overwrite"]) == 2
    assert "the output is also an input" in capsys.readouterr().err
    assert corpus.read_bytes() == manifest
    monkeypatch.undo()
    assert main([*args, "--overwrite", "--no-progress"]) == 0
    assert [r["pred_text"] for r in _read(out)] == [t for t, _ in _reference(model_dir, corpus)]


def test_decode_package_is_algorithms_only():
    """asr.decode holds algorithms over log-probs: importing all of it loads no acoustic model,
    no LM file loading, no onnx and no model registry; files are opened by
    asr.inference.decoding."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import asr.decode as d\n"
        "for m in pkgutil.iter_modules(d.__path__):\n"
        "    importlib.import_module(f'asr.decode.{m.name}')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('asr.'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = proc.stdout.split()
    assert "asr.decode.greedy" in loaded and "asr.decode.kenlm_backend" in loaded
    above = (
        "asr.models",
        "asr.lm",
        "asr.onnx",
        "asr.pretrained",
        "asr.inference.forward",
        "asr.api",
    )
    assert [m for m in loaded if m.startswith(above)] == []


def test_decoding_spec_uses_the_model_folders_decoding_unless_told(tmp_path):
    from asr.decode.spec import DecodeSpecError
    from asr.inference.decoding import decoding_spec
    from asr.pretrained import DEFAULT_MODEL_DIR

    bundled = decoding_spec(DEFAULT_MODEL_DIR)
    assert bundled.decoder == "beam" and bundled.lm == str(DEFAULT_MODEL_DIR / "lm")
    assert decoding_spec(DEFAULT_MODEL_DIR, decoder="greedy") == DecodeSpec("greedy")
    assert decoding_spec(tmp_path) == DecodeSpec("greedy")  # a folder without decode.yaml
    assert decoding_spec(tmp_path, beam_size=4).search.beam_size == 4
    with pytest.raises(DecodeSpecError, match="unknown decoding option 'bundled'"):
        decoding_spec(tmp_path, bundled=(None, None))
