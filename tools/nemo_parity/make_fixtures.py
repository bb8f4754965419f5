"""Make the NeMo parity fixtures of ``tests/test_nemo_import.py`` (run once, where NeMo is).

Needs ``nemo_toolkit[asr]`` (``nemo.collections.asr``) in a SEPARATE virtual environment, not
the project's: NeMo is never a dependency of ``asr``. For example::

    python3 -m venv /work/nemo_venv
    /work/nemo_venv/bin/pip install torch==2.13.0          # the CPU wheel; install it first
    /work/nemo_venv/bin/pip install -c <(echo torch==2.13.0) "nemo_toolkit[asr]"
    /work/nemo_venv/bin/python tools/nemo_parity/make_fixtures.py \
        --data ../shared/data/ljspeech-sample --out tests/fixtures/nemo

For each of two small QuartzNet/Jasper-style configurations (below) it builds NeMo's own
``EncDecCTCModel`` with random weights (batch-norm statistics measured on the clips, random
batch-norm affines, see ``randomise``), saves it with ``save_to`` as ``<name>.nemo``, and records,
in eval mode with dither 0, for a padded batch of three real LJSpeech clips resampled to 16 kHz:
NeMo's preprocessor features and lengths, the model's log-probabilities and encoded lengths, and
NeMo's greedy CTC transcripts, all as NeMo computes them (float32); plus the features and
log-probabilities of the same NeMo code run in float64 (see ``run_float64``). The clips go to
``clips.safetensors``, so the test needs neither the data folder nor a resampler;
``fixtures.json`` records the versions and transcripts.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
from safetensors.torch import save_file

CLIPS = (("LJ001-0001", 1.0, 3.1), ("LJ001-0002", 0.2, 1.9), ("LJ001-0003", 0.5, 2.6))
SAMPLE_RATE = 16000
LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'"]

PREPROCESSOR = {  # NeMo's QuartzNet 15x5 preprocessor, as in its published config
    "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
    "sample_rate": SAMPLE_RATE,
    "normalize": "per_feature",
    "window_size": 0.02,
    "window_stride": 0.01,
    "window": "hann",
    "features": 64,
    "n_fft": 512,
    "frame_splicing": 1,
    "dither": 1.0e-05,
    "stft_conv": False,
}


def block(filters: int, kernel: int, **options: object) -> dict:
    """A NeMo ``jasper`` list entry with QuartzNet defaults."""
    out = {
        "filters": filters,
        "repeat": 1,
        "kernel": [kernel],
        "stride": [1],
        "dilation": [1],
        "dropout": 0.1,
        "residual": False,
        "separable": True,
    }
    out.update(options)
    return out


QUARTZNET = [  # separable, residual, dilation, SE, kernel_size_factor
    block(64, 33, stride=[2]),
    block(64, 15, repeat=3, residual=True),
    block(96, 11, repeat=2, residual=True, dilation=[2], se=True, se_reduction_ratio=8),
    block(96, 21, repeat=2, residual=True, kernel_size_factor=0.5),
    block(96, 29, dilation=[2]),
    block(128, 1),
]
JASPER = [  # dense convs, dense residual, stride_last + stride_add, hardtanh
    block(48, 11, stride=[2], separable=False),
    block(48, 7, repeat=2, residual=True, residual_dense=True, separable=False),
    block(64, 9, repeat=2, residual=True, residual_dense=True, separable=False),
    block(
        64,
        5,
        repeat=2,
        stride=[2],
        stride_last=True,
        residual=True,
        residual_dense=True,
        residual_mode="stride_add",
        separable=False,
    ),
    block(96, 9, dilation=[2], separable=False),
    block(128, 1, separable=False),
]


def model_config(name: str) -> dict:
    """The NeMo model config (a plain dict) of fixture ``name``."""
    pre = copy.deepcopy(PREPROCESSOR)
    if name == "quartznet":
        jasper, activation = QUARTZNET, "relu"
    else:  # Jasper-like: 80 mels, 25 ms window, clamp log guard, different padding
        jasper, activation = JASPER, "hardtanh"
        pre.update(
            features=80,
            window_size=0.025,
            log_zero_guard_type="clamp",
            log_zero_guard_value=1e-5,
            pad_to=0,
        )
    return {
        "sample_rate": SAMPLE_RATE,
        "labels": LABELS,
        "preprocessor": pre,
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": pre["features"],
            "activation": activation,
            "conv_mask": True,
            "jasper": jasper,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": jasper[-1]["filters"],
            "num_classes": len(LABELS),
            "vocabulary": LABELS,
        },
    }


def randomise(model, waves: torch.Tensor, lengths: torch.Tensor, seed: int) -> None:
    """Realistic random weights: NeMo's init for the convolutions; batch-norm statistics
    measured on the clips (so activations neither vanish nor explode through the blocks, as in a
    trained model) and random batch-norm affines; a sharper head with a random bias."""
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for norm in norms:  # one cumulative pass per layer, in order: stats of the clips
        norm.reset_running_stats()
        norm.momentum = None
        norm.weight.data.copy_(0.5 + torch.rand(norm.num_features, generator=gen))
        norm.bias.data.copy_(0.2 * torch.randn(norm.num_features, generator=gen))
    model.eval()
    for norm in norms:  # batch statistics for this layer only, earlier ones already fixed
        norm.train()
        model.forward(input_signal=waves, input_signal_length=lengths)
        norm.eval()
        norm.momentum = 0.1
    head = model.decoder.decoder_layers[0]
    head.weight.data.mul_(2.0)
    head.bias.data.copy_(0.5 * torch.randn(head.bias.shape, generator=gen))


def load_clips(data: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The clips as a zero-padded batch (3, samples) float32 at 16 kHz, lengths and ids."""
    waves = []
    for utt, start_s, end_s in CLIPS:
        samples, rate = soundfile.read(data / "wavs" / f"{utt}.wav", dtype="float32")
        samples = samples[int(start_s * rate) : int(end_s * rate)]
        waves.append(soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32))
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    return batch, lengths, [c[0] for c in CLIPS]


def run_float64(model, waves: torch.Tensor, lengths: torch.Tensor) -> tuple:
    """NeMo's features and log-probs computed in float64 (the model is converted in place).

    The same NeMo code, with two dtype changes: the STFT window is cast to float64 (NeMo's
    ``stft`` casts it to float32, which ``torch.stft`` refuses with float64 input), and the
    preprocessor is called through ``get_features`` (``forward`` casts the input to float32).
    """
    model.double().eval()
    feat = model.preprocessor.featurizer
    feat.stft = lambda x: torch.stft(
        x,
        n_fft=feat.n_fft,
        hop_length=feat.hop_length,
        win_length=feat.win_length,
        center=not feat.exact_pad,
        window=feat.window.to(dtype=torch.float64, device=x.device),
        return_complex=True,
        pad_mode="constant",
    )
    feats, feat_len = model.preprocessor.get_features(waves.double(), lengths)
    log_probs, _, _ = model.forward(processed_signal=feats, processed_signal_length=feat_len)
    return feats, log_probs


def greedy_texts(model, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """NeMo's own greedy CTC decoding of the log-probabilities."""
    out = model.decoding.ctc_decoder_predictions_tensor(
        log_probs, decoder_lengths=lengths, return_hypotheses=False
    )
    hyps = out[0] if isinstance(out, tuple) else out
    return [h.text if hasattr(h, "text") else str(h) for h in hyps]


def make_fixture(name: str, seed: int, waves, lengths, out: Path) -> dict:
    """Build, save and run one NeMo model; returns its record for fixtures.json."""
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    model = EncDecCTCModel(cfg=OmegaConf.create(model_config(name)))
    model.eval()
    model.preprocessor.featurizer.dither = 0.0
    with torch.no_grad():
        randomise(model, waves, lengths, seed)
    model.save_to(str(out / f"{name}.nemo"))
    model.eval()
    with torch.no_grad():
        feats, feat_len = model.preprocessor(input_signal=waves, length=lengths)
        log_probs, enc_len, _ = model.forward(input_signal=waves, input_signal_length=lengths)
    texts = greedy_texts(model, log_probs, enc_len)
    with torch.no_grad():
        feats64, log_probs64 = run_float64(model, waves, lengths)
    save_file(
        {
            "features": feats.contiguous(),  # (batch, features, frames), NeMo's layout
            "features_float64": feats64.contiguous(),  # the same computed in float64
            "feature_lengths": feat_len.long(),
            "log_probs": log_probs.contiguous(),  # (batch, frames, labels + blank), blank last
            "log_probs_float64": log_probs64.contiguous(),  # the same computed in float64
            "encoded_lengths": enc_len.long(),
        },
        str(out / f"{name}.safetensors"),
    )
    return {"seed": seed, "transcripts": texts, "num_parameters": model.num_weights}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ljspeech-sample"))
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/nemo"))
    args = parser.parse_args()
    import nemo

    args.out.mkdir(parents=True, exist_ok=True)
    waves, lengths, _ = load_clips(args.data)
    save_file({"waveforms": waves, "lengths": lengths}, str(args.out / "clips.safetensors"))
    record = {
        "made_with": {"nemo_toolkit": nemo.__version__, "torch": torch.__version__},
        "reference": "NVIDIA NeMo itself (EncDecCTCModel), not a re-implementation",
        "clips": [{"utt_id": u, "start_s": s, "end_s": e} for u, s, e in CLIPS],
        "sample_rate": SAMPLE_RATE,
        "models": {},
    }
    for seed, name in enumerate(("quartznet", "jasper")):
        record["models"][name] = make_fixture(name, seed, waves, lengths, args.out)
        print(name, record["models"][name])
    (args.out / "fixtures.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
