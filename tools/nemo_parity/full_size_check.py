"""Check ``asr import-nemo`` on a full-size QuartzNet 15x5 built by NeMo (not committed: 76 MB).

Two steps, each in its own environment::

    # 1. with NeMo (see make_fixtures.py): NeMo's published QuartzNet 15x5 config, random weights
    #    (batch norm measured on the clips), saved as .nemo with NeMo's float32 outputs
    /work/nemo_venv/bin/python tools/nemo_parity/full_size_check.py make --out /tmp/qn15x5
    # 2. with asr: import it and compare
    .venv/bin/python tools/nemo_parity/full_size_check.py check --out /tmp/qn15x5

The configuration is NeMo's ``examples/asr/conf/quartznet/quartznet_15x5.yaml`` (model section,
without the data sets and optimiser), i.e. the architecture of ``QuartzNet15x5Base-En``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # make_fixtures.py beside this file
KERNELS = [33, 33, 33, 39, 39, 39, 51, 51, 51, 63, 63, 63, 75, 75, 75]


def quartznet_15x5_config() -> dict:
    """The model section of NeMo's quartznet_15x5.yaml (no data sets, no optimiser)."""
    from make_fixtures import LABELS, PREPROCESSOR

    def blk(filters: int, kernel: int, repeat: int, residual: bool, **extra: object) -> dict:
        out = {"dilation": [1], "dropout": 0.0, "filters": filters, "kernel": [kernel]}
        out.update(repeat=repeat, residual=residual, separable=True, stride=[1])
        out.update(extra)
        return out

    jasper = [blk(256, 33, 1, False, stride=[2])]
    jasper += [blk(256 if i < 6 else 512, k, 5, True) for i, k in enumerate(KERNELS)]
    jasper += [blk(512, 87, 1, False, dilation=[2]), blk(1024, 1, 1, False)]
    del jasper[-1]["separable"]
    return {
        "sample_rate": 16000,
        "labels": LABELS,
        "preprocessor": {k: v for k, v in PREPROCESSOR.items() if k != "stft_conv"},
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "rect_freq": 50,
            "rect_masks": 5,
            "rect_time": 120,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": 64,
            "activation": "relu",
            "conv_mask": True,
            "jasper": jasper,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": 1024,
            "num_classes": 28,
            "vocabulary": LABELS,
        },
    }


def make(out: Path, data: Path) -> None:
    """Build (or restore), save and run the NeMo model in float32 and float64 (needs NeMo)."""
    from make_fixtures import greedy_texts, load_clips, randomise, run_float64
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    out.mkdir(parents=True, exist_ok=True)
    waves, lengths, _ = load_clips(data)
    path = out / "quartznet15x5.nemo"
    if path.exists():  # the slow part (batch-norm calibration, one pass per layer) is done
        model = EncDecCTCModel.restore_from(str(path), map_location="cpu").eval()
    else:
        torch.manual_seed(0)
        model = EncDecCTCModel(cfg=OmegaConf.create(quartznet_15x5_config())).eval()
    model.preprocessor.featurizer.dither = 0.0
    with torch.no_grad():
        if not path.exists():
            randomise(model, waves, lengths, seed=0)
            model.save_to(str(path))
        log_probs, enc_len, _ = model.forward(input_signal=waves, input_signal_length=lengths)
        texts = greedy_texts(model, log_probs, enc_len)
        _, log_probs64 = run_float64(model, waves, lengths)
    tensors = {"waveforms": waves, "lengths": lengths, "log_probs": log_probs}
    tensors.update(encoded_lengths=enc_len, log_probs_float64=log_probs64)
    save_file(tensors, str(out / "nemo_outputs.safetensors"))
    record = {"transcripts": texts, "params": model.num_weights}
    (out / "nemo_outputs.json").write_text(json.dumps(record, indent=1))


def _max_diff(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor) -> float:
    return max(float((a[i, :n] - b[i, :n]).abs().max()) for i, n in enumerate(lengths.tolist()))


def check(out: Path) -> None:
    """Import with asr and compare with NeMo's outputs (needs asr)."""
    from asr.decode.greedy import greedy_decode
    from asr.models.nemo_import import build_model, import_nemo, load_nemo

    model, tokenizer = import_nemo(out / "quartznet15x5.nemo", out / "model", case="keep")
    ref = load_file(str(out / "nemo_outputs.safetensors"))
    record = json.loads((out / "nemo_outputs.json").read_text())
    nemo = load_nemo(out / "quartznet15x5.nemo")
    model64 = build_model(nemo, case="keep")[0].double()
    model64.frontend.window = nemo.state["preprocessor.featurizer.window"].double()
    with torch.inference_mode():
        log_probs, lengths = model(ref["waveforms"], ref["lengths"])
        log_probs64, _ = model64(ref["waveforms"].double(), ref["lengths"])
    vocab = log_probs.shape[-1]
    order = [vocab - 1, *range(vocab - 1)]
    theirs, theirs64 = ref["log_probs"][..., order], ref["log_probs_float64"][..., order]
    texts = [h.text for h in greedy_decode(log_probs, lengths, tokenizer)]
    texts64 = [h.text for h in greedy_decode(log_probs64, lengths, tokenizer)]
    print(f"parameters: ours {model.num_parameters()}, NeMo {record['params']}")
    print(f"encoded lengths equal: {lengths.tolist() == ref['encoded_lengths'].tolist()}")
    rows = [
        ("float64, ours vs NeMo", log_probs64, theirs64),
        ("float32, ours vs NeMo", log_probs.double(), theirs.double()),
        ("NeMo float32 vs NeMo float64", theirs.double(), theirs64),
        ("ours float32 vs ours float64", log_probs.double(), log_probs64),
    ]
    for name, a, b in rows:
        print(f"max |log-prob difference|, {name}: {_max_diff(a, b, lengths):.2e}")
    print(f"greedy transcripts identical, float32: {texts == record['transcripts']}")
    texts_nemo64 = [h.text for h in greedy_decode(theirs64, lengths, tokenizer)]
    print(f"greedy transcripts identical, float64: {texts64 == texts_nemo64}")
    same = texts_nemo64 == record["transcripts"]
    print(f"  NeMo's own float32 and float64 transcripts identical: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("make", "check"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/qn15x5"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ljspeech-sample"))
    args = parser.parse_args()
    make(args.out, args.data) if args.step == "make" else check(args.out)


if __name__ == "__main__":
    main()
