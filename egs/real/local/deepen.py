"""Deepen a trained model folder (asr.models.grow.deepen) and write the grown model folder.

usage: python egs/real/local/deepen.py SRC_MODEL OUT_MODEL --extra N --calib MANIFEST
           [--utts 64] [--batch 8] [--overwrite]

The calibration utterances (the first --utts of MANIFEST, a training manifest: never a dev or
test set) set the inserted batch norms' statistics. The grown model is checked to give the same
output probabilities as the source on them before it is written (float32).
"""

from __future__ import annotations

import argparse
import sys

import torch

from asr.data.inputs import manifest_items
from asr.errors import AsrError
from asr.inference.forward import pad_waves, read_item
from asr.io.folders import check_model_out
from asr.models.grow import deepen
from asr.models.io import export_model, load_model


def batches(
    manifest: str, utts: int, batch: int, rate: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``utts`` utterances of ``manifest`` as padded (waveforms, lengths) batches."""
    waves = [read_item(item, rate) for item in manifest_items(manifest)[:utts]]
    return [pad_waves(waves[start : start + batch]) for start in range(0, len(waves), batch)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--extra", type=int, required=True, help="sub-blocks added per block")
    parser.add_argument("--calib", required=True, help="training manifest for the statistics")
    parser.add_argument("--utts", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="replace a model folder at OUT")
    args = parser.parse_args()
    try:
        check_model_out(args.out, "acoustic model", args.overwrite, sources=(args.src,))
        model, tokenizer = load_model(args.src)
        calib = batches(args.calib, args.utts, args.batch, model.cfg.frontend.sample_rate_hz)
        torch.manual_seed(0)
        grown = deepen(model, args.extra, calib)
        worst = 0.0
        for waveforms, lengths in calib[:2]:
            with torch.no_grad():  # the same dither noise for both
                torch.manual_seed(1)
                a, _ = model(waveforms, lengths)
                torch.manual_seed(1)
                b, _ = grown(waveforms, lengths)
            worst = max(worst, float((a.exp() - b.exp()).abs().max()))
        if worst > 1e-4:
            raise AsrError(f"{args.out}: the grown model differs from {args.src} by {worst:.3g}")
        export_model(grown, tokenizer, args.out)
    except (AsrError, ValueError, OSError) as err:
        print(f"deepen.py: {err}", file=sys.stderr)
        return 1
    before, after = model.num_parameters(), grown.num_parameters()
    print(
        f"wrote {args.out}: {before:,} -> {after:,} parameters; max |probability difference| "
        f"{worst:.2e} on {min(2, len(calib))} calibration batches"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
