"""KenLM word decoding with a (soft or hard) lexicon: unigram lists x out-of-list penalties.

pyctcdecode scores a word outside its unigram list with the n-gram's ``<unk>`` probability plus
``unk_score_offset`` (log10; ``asr decode`` fixes it at -10). A very negative offset turns the
list into a hard lexicon: the search can only finish words of the list. This script decodes the
acoustic model's cached emissions (``asr tune-decoder``'s ``emissions.safetensors``) with
:class:`asr.decode.kenlm_backend.KenLMDecoder` for every unigram list x offset x alpha x beta and
prints WER/CER (``asr.scoring.wer.score``, both sides through ``normalize_text``) as Markdown::

    python egs/synth/local/kenlm_lexicon.py --model asr/pretrained/default \\
        --manifest dev.jsonl --emissions tune/emissions.safetensors --lm words3.arpa \\
        --unigrams words_10k.txt words_30k.txt --unk-offsets -10,-1000 --alphas 0.5 --betas 0,1
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.api import load_model
from asr.decode.beam import BeamSearchConfig
from asr.decode.kenlm_backend import KenLMDecoder, KenLMOptions
from asr.inference.tune import compute_emissions
from asr.scoring.wer import score
from asr.text.normalize import normalize_text


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def decode_all(decoder: KenLMDecoder, log_probs: Sequence[torch.Tensor]) -> list[str]:
    """Best hypothesis text of every utterance, one at a time."""
    out = []
    for lp in log_probs:
        hyp = decoder.decode(lp.unsqueeze(0), torch.tensor([len(lp)]))[0]
        out.append(hyp.text or "")
    return out


def sweep(args: argparse.Namespace) -> list[list[object]]:
    """One table row per unigram list x offset x alpha x beta."""
    model = load_model(args.model, device="cpu")
    em = compute_emissions(model.network, model.path, args.manifest, args.emissions)
    tokenizer = model.tokenizer
    refs = [normalize_text(t) for t in em.texts]
    cfg = BeamSearchConfig(beam_size=args.beam_size)
    rows: list[list[object]] = []
    for unigrams in args.unigrams:
        uni = None if unigrams == "arpa" else unigrams
        decoder = KenLMDecoder(tokenizer, args.lm, cfg, KenLMOptions(unigrams=uni))
        for unk, a, b in itertools.product(args.unk_offsets, args.alphas, args.betas):
            decoder.cfg = dataclasses.replace(cfg, alpha=a, beta=b)
            decoder.decoder.reset_params(alpha=a, beta=b, unk_score_offset=unk)
            t0 = time.perf_counter()
            hyps = [normalize_text(h) for h in decode_all(decoder, em.log_probs)]
            report = score(refs, hyps)
            rows.append(
                [Path(unigrams).name, unk, a, b, 100 * report.words.rate, 100 * report.chars.rate,
                 round(time.perf_counter() - t0, 1)]
            )  # fmt: skip
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="acoustic model folder")
    p.add_argument("--manifest", required=True, help="dev manifest (JSONL)")
    p.add_argument("--emissions", required=True, help="emission cache (made when missing)")
    p.add_argument("--lm", required=True, help="word ARPA/binary KenLM file")
    p.add_argument("--unigrams", nargs="+", default=["arpa"], help="lists ('arpa': its words)")
    p.add_argument("--unk-offsets", type=_floats, default=[-10.0], help="log10 penalties")
    p.add_argument("--alphas", type=_floats, default=[0.5], help="LM weights")
    p.add_argument("--betas", type=_floats, default=[0.0], help="word bonuses")
    p.add_argument("--beam-size", type=int, default=16, help="beams (default 16)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = sweep(args)
    print("| unigrams | unk offset | alpha | beta | WER % | CER % | wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
