"""Acoustic-model forward on one CPU thread: torch eager vs onnxruntime float32 vs int8.

For each model (the bundled default, and NVIDIA's QuartzNet 5x5 architecture from
``conf/model/quartznet_5x5.yaml`` with random weights: speed does not depend on them), the
same waveforms go through the torch model and through its ONNX exports (``asr.onnx.export``:
front-end in the graph) run by onnxruntime, one utterance at a time, as ``asr transcribe``
runs them on a single thread. Speed = audio seconds / best-of-``--repeats`` wall seconds.
Accuracy (default model only, it is trained): WER of greedy decoding and of beam search fused
with its LSTM LM (``decode.yaml``, the decoder is the same for every backend) on the shipped
samples and on ``--manifest``. Run from the repo root::

    .venv/bin/python -m bench.onnx --manifest /work/synth10/manifests/test.jsonl
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from asr.data.inputs import AudioItem, manifest_items
from asr.decode.spec import DecodeSpec, load_search_config
from asr.inference.decoding import make_decoder
from asr.inference.forward import pad_waves, read_item
from asr.models.io import export_model, load_model
from asr.onnx.export import export_onnx
from asr.onnx.runtime import load_onnx_model
from asr.pretrained import DEFAULT_MODEL_DIR
from asr.scoring.wer import score
from bench.report import markdown_table, write_section

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "asr" / "pretrained" / "samples"
Forward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def samples_set() -> tuple[list[np.ndarray], list[str]]:
    """The shipped samples and their reference texts (``samples/text``)."""
    refs = dict(line.split(" ", 1) for line in (SAMPLES / "text").read_text().splitlines())
    names = sorted(refs)
    waves = [read_item(AudioItem(str(SAMPLES / f"{n}.flac")), 16000) for n in names]
    return waves, [refs[n].strip() for n in names]


def run_all(forward: Forward, waves: list[np.ndarray]) -> list:
    """Per-utterance (log_probs, length), one utterance per forward."""
    return [forward(*pad_waves([wave])) for wave in waves]


def best_times(forwards: dict[str, Forward], waves: list[np.ndarray], repeats: int) -> dict:
    """Best wall seconds of a pass over ``waves`` per backend; the backends take turns in
    every repeat, so that the load of this shared machine falls on all of them alike."""
    best = dict.fromkeys(forwards, float("inf"))
    for _ in range(repeats):
        for name, forward in forwards.items():
            start = time.perf_counter()
            run_all(forward, waves)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def wers(outputs: list, refs: list[str], decoders: dict) -> dict[str, float]:
    """WER (%) of each decoder over per-utterance outputs."""
    out = {}
    for name, decoder in decoders.items():
        hyps = [decoder.decode(lp, n)[0].text or "" for lp, n in outputs]
        out[name] = 100.0 * score(refs, hyps).wer
    return out


def backends(model_dir: Path, tmp: Path) -> dict[str, Forward]:
    """torch eager, onnxruntime float32 and int8 forwards of the model folder."""
    model, _ = load_model(model_dir)
    export_onnx(model_dir, tmp / "f32")
    export_onnx(model_dir, tmp / "int8", quantize="int8")

    @torch.inference_mode()
    def eager(batch: torch.Tensor, lengths: torch.Tensor):
        return model(batch, lengths)

    return {
        "torch eager": eager,
        "onnxruntime float32": load_onnx_model(tmp / "f32", threads=1)[0],
        "onnxruntime int8": load_onnx_model(tmp / "int8", threads=1)[0],
    }


def quartznet5x5(tmp: Path) -> Path:
    """A QuartzNet 5x5 model folder (random weights, eval-mode batch norm as initialised)."""
    from asr.models.ctc import CTCModel
    from asr.text.tokenizer import CharTokenizer

    tokenizer = CharTokenizer()
    model = CTCModel.from_yaml(ROOT / "conf/model/quartznet_5x5.yaml", tokenizer.vocab_size)
    return export_model(model.eval(), tokenizer, tmp / "qn5x5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", help="test manifest for WER and speed (default: samples)")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances (0: all)")
    parser.add_argument("--speed-utts", type=int, default=40, help="utterances timed (default 40)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes, best kept")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sample_waves, sample_refs = samples_set()
    waves, refs = sample_waves, sample_refs
    if args.manifest:
        items = manifest_items(args.manifest)[: args.limit or None]
        waves, refs = [read_item(i, 16000) for i in items], [i.text or "" for i in items]
    search, _ = load_search_config(DEFAULT_MODEL_DIR / "decode.yaml")
    default_net, tokenizer = load_model(DEFAULT_MODEL_DIR)
    decoders = {
        "greedy": make_decoder(DecodeSpec("greedy"), tokenizer),
        "beam+LSTM": make_decoder(
            DecodeSpec("beam", search, str(DEFAULT_MODEL_DIR / "lm")), tokenizer
        ),
    }
    speed_waves = waves[: args.speed_utts]
    audio_s = sum(len(w) for w in speed_waves) / 16000
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        default_m = default_net.num_parameters() / 1e6
        models = {f"default ({default_m:.2f} M)": DEFAULT_MODEL_DIR, "QuartzNet 5x5 (6.7 M)": None}
        for label, model_dir in models.items():
            sub = tmp / label.split()[0]
            sub.mkdir()
            model_dir = model_dir or quartznet5x5(sub)
            forwards = backends(model_dir, sub)
            seconds = best_times(forwards, speed_waves, args.repeats)
            for name, forward in forwards.items():
                row = [label, name, audio_s / seconds[name]]
                if model_dir == DEFAULT_MODEL_DIR:
                    sample_wer = wers(run_all(forward, sample_waves), sample_refs, decoders)
                    test_wer = wers(run_all(forward, waves), refs, decoders)
                    row += [sample_wer[k] for k in decoders] + [test_wer[k] for k in decoders]
                else:
                    row += ["-"] * 4
                rows.append(row)
                print(row, flush=True)
    for row in rows:
        base = next(r for r in rows if r[0] == row[0])[2]
        row.insert(3, f"{row[2] / base:.2f}x")
    what = f"`{args.manifest}`" + (f" (first {args.limit})" if args.limit else "")
    header = ["model", "backend", "audio-s / s", "vs torch"]
    header += [f"samples WER {k} %" for k in decoders] + [f"test WER {k} %" for k in decoders]
    body = (
        f"One thread, one utterance per forward, the first {len(speed_waves)} utterances of "
        f"{what if args.manifest else 'the samples'} ({audio_s:.0f} s of audio), best of "
        f"{args.repeats} passes (the backends take turns). WER: the shipped samples "
        f"(2 utterances) and {what} "
        f"({len(waves)} utterances); beam+LSTM = the bundled `decode.yaml` with its LSTM LM. "
        "Command: `.venv/bin/python -m bench.onnx"
        + (f" --manifest {args.manifest}" if args.manifest else "")
        + (f" --limit {args.limit}" if args.limit else "")
        + "`.\n\n"
        + markdown_table(header, rows)
    )
    print(body)
    if not args.no_write:
        write_section("onnx", "ONNX export: torch eager vs onnxruntime (bench/onnx.py)", body)


if __name__ == "__main__":
    main()
