"""Grow a trained model folder deeper and/or wider (asr.models.grow) and write the new folder.

usage: python egs/real/local/grow.py SRC_MODEL OUT_MODEL [--extra N --calib MANIFEST]
           [--width W] [--seed 0] [--utts 64] [--batch 8] [--overwrite]

--extra N gives every growable residual block N more sub-blocks that start as the identity
(`deepen`); the calibration utterances (the first --utts of --calib, a training manifest: never a
dev or test set) set their batch norms' statistics. --width W gives every block as wide as the
first one W filters, new channels copying old ones (`widen`, Net2WiderNet). Both: deeper first.
The grown model is checked to give the same output probabilities as the source on the
calibration audio (or, without --calib, on a few seconds of seeded noise) before it is written
(float32).
"""

from __future__ import annotations

import argparse
import sys

import torch

from asr.data.inputs import manifest_items
from asr.errors import AsrError
from asr.inference.forward import pad_waves, read_item
from asr.io.folders import check_model_out
from asr.models.ctc import CTCModel
from asr.models.grow import deepen, widen
from asr.models.io import export_model, load_model

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def batches(manifest: str, utts: int, batch: int, rate: int) -> Batches:
    """The first ``utts`` utterances of ``manifest`` as padded (waveforms, lengths) batches."""
    waves = [read_item(item, rate) for item in manifest_items(manifest)[:utts]]
    return [pad_waves(waves[start : start + batch]) for start in range(0, len(waves), batch)]


def largest_difference(a: CTCModel, b: CTCModel, data: Batches) -> float:
    """Max |probability difference| of two models on up to two batches (same dither noise)."""
    worst = 0.0
    for waveforms, lengths in data[:2]:
        with torch.no_grad():
            torch.manual_seed(1)
            pa, _ = a(waveforms, lengths)
            torch.manual_seed(1)
            pb, _ = b(waveforms, lengths)
        worst = max(worst, float((pa.exp() - pb.exp()).abs().max()))
    return worst


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--extra", type=int, default=0, help="sub-blocks added per block")
    parser.add_argument("--calib", help="training manifest for the statistics (with --extra)")
    parser.add_argument("--width", type=int, default=0, help="new filters of the main blocks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the widening")
    parser.add_argument("--utts", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="replace a model folder at OUT")
    args = parser.parse_args()
    if not args.extra and not args.width:
        parser.error("nothing to do: give --extra N and/or --width W")
    if args.extra and not args.calib:
        parser.error("--extra needs --calib MANIFEST (audio for the new batch norms)")
    return args


def main() -> int:
    args = parse_args()
    try:
        check_model_out(args.out, "acoustic model", args.overwrite, sources=(args.src,))
        model, tokenizer = load_model(args.src)
        if args.calib:
            data = batches(args.calib, args.utts, args.batch, model.cfg.frontend.sample_rate_hz)
        else:
            gen = torch.Generator().manual_seed(0)
            data = [(torch.randn(2, 48000, generator=gen) * 0.1, torch.tensor([48000, 30000]))]
        torch.manual_seed(0)
        grown = deepen(model, args.extra, data) if args.extra else model
        grown = widen(grown, args.width, seed=args.seed) if args.width else grown
        worst = largest_difference(model, grown, data)
        if worst > 1e-4:
            raise AsrError(f"{args.out}: the grown model differs from {args.src} by {worst:.3g}")
        export_model(grown, tokenizer, args.out)
    except (AsrError, ValueError, OSError) as err:
        print(f"grow.py: {err}", file=sys.stderr)
        return 1
    before, after = model.num_parameters(), grown.num_parameters()
    print(
        f"wrote {args.out}: {before:,} -> {after:,} parameters; max |probability difference| "
        f"{worst:.2e} on {min(2, len(data))} batches"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
