"""QuartzNet-family CTC model: published parameter counts, padding invariance, CTC loss against
brute-force enumeration, overfitting one batch, strict configs."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
import torch

from asr.config import ConfigError
from asr.frontend import FrontendConfig
from asr.models.ctc import CTCModel, ModelConfig, ctc_loss, load_model_config
from asr.models.tcn import BlockConfig, Encoder, EncoderConfig

ROOT = Path(__file__).resolve().parents[1]
MODEL_CONF = ROOT / "conf" / "model"


# Published sizes with a 29-symbol vocabulary (blank + space + a-z + apostrophe). The exact
# counts are those of NVIDIA's released NeMo checkpoints as re-implemented in pytorchcv/imgclsmob
# (quartznet5x5_en_ls: 6,713,181; quartznet15x5_en: 18,924,381); the QuartzNet paper (Kriman et
# al. 2019, Table 5) rounds them to 6.7 M and 18.9 M.
@pytest.mark.parametrize(
    ("name", "exact", "published_m"),
    [("quartznet_5x5", 6_713_181, 6.7), ("quartznet_15x5", 18_924_381, 18.9)],
)
def test_published_parameter_counts(name, exact, published_m):
    model = CTCModel(load_model_config(MODEL_CONF / f"{name}.yaml"), vocab_size=29)
    count = model.num_parameters()
    assert abs(count / 1e6 - published_m) / published_m < 0.01
    assert count == exact
    assert model.encoder.cfg.subsampling == 2 and model.frame_shift_s == pytest.approx(0.02)


def test_small_config_is_small_and_uses_nemo_frontend():
    cfg = load_model_config(MODEL_CONF / "small.yaml")
    model = CTCModel(cfg, vocab_size=29)
    assert 1_000_000 <= model.num_parameters() <= 3_000_000
    assert cfg.frontend.num_mel_bins == 64 and model.frontend.num_features == 64


def _randomize_batch_norm(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters, so that padded frames become
    non-zero after every batch norm and any leak into valid frames shows."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen))


B = BlockConfig
ENCODERS = {
    "separable": (B(32, 1, 11, stride=2), B(32, 3, 7, residual=True), B(48, 1, 1, separable=False)),
    "dense": (B(32, 1, 5, stride=2, separable=False), B(32, 2, 5, residual=True, separable=False)),
    "dilated": (B(24, 1, 5), B(24, 2, 7, dilation=3, residual=True), B(24, 1, 9, dilation=2)),
    "strided": (
        B(16, 1, 5, stride=2),
        B(24, 2, 5, stride=2, residual=True, residual_mode="stride_add", stride_last=True),
        B(24, 1, 3, stride=3),
    ),
    "se": (B(32, 1, 5, stride=2), B(32, 2, 5, residual=True, se=True, se_reduction_ratio=4)),
    "dense_residual": (
        B(16, 1, 3),
        B(16, 2, 5, residual=True, residual_dense=True),
        B(24, 2, 5, residual=True, residual_dense=True),
        B(24, 1, 1),
    ),
}


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_encoder_padding_invariance(kind):
    """An utterance encoded alone equals its slice of a padded batch (eval mode), and padding
    values (here large random numbers) never matter."""
    torch.manual_seed(0)
    cfg = EncoderConfig(ENCODERS[kind], activation="relu")
    encoder = Encoder(cfg, in_features=10).eval()
    _randomize_batch_norm(encoder)
    lengths = torch.tensor([37, 64, 21])
    batch = torch.randn(3, 10, 70) * 100.0  # padding filled with large junk
    for b, n in enumerate(lengths.tolist()):
        batch[b, :, :n] = torch.randn(10, n)
    with torch.no_grad():
        out, out_lengths = encoder(batch, lengths)
        for b, n in enumerate(lengths.tolist()):
            alone, alone_len = encoder(batch[b : b + 1, :, :n], lengths[b : b + 1])
            assert int(alone_len) == int(out_lengths[b]) == alone.shape[-1]
            torch.testing.assert_close(out[b, :, : alone.shape[-1]], alone[0], atol=1e-5, rtol=0)
    assert torch.equal(out_lengths, encoder.output_lengths(lengths))


@pytest.mark.parametrize("init", ["kaiming_uniform", "xavier_uniform"])
def test_initialisation_follows_he_and_glorot(init):
    """Every conv weight is uniform on +-sqrt(6 / fan_in) (He et al. 2015, ReLU gain) or
    +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010), with fan = channels x taps; kaiming
    is the default. For a depthwise kernel (192, 1, 33) xavier's bound is ~14x smaller."""
    torch.manual_seed(0)
    blocks = (B(192, 1, 33, stride=2), B(192, 2, 33, residual=True), B(96, 1, 1, separable=False))
    kwargs = {} if init == "kaiming_uniform" else {"init": init}
    encoder = Encoder(EncoderConfig(blocks, **kwargs), in_features=64)
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 8  # 2 (separable) + 2 x 2 (repeats) + residual 1x1 + 1x1 block
    for conv in convs:
        out_ch, in_ch, taps = conv.weight.shape
        fan_in, fan_out = in_ch * taps, out_ch * taps
        if init == "kaiming_uniform":
            bound = math.sqrt(6.0 / fan_in)
        else:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = conv.weight.detach()
        assert float(w.abs().max()) <= bound
        # uniform on [-b, b]: standard deviation b / sqrt(3); >= 2,112 samples per tensor
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3.0), rel=0.05)
    assert convs[0].weight.shape == (64, 1, 33)  # the depthwise kernel comes first


def test_stride_lengths_follow_conv_arithmetic():
    """Output lengths match what nn.Conv1d produces on an unpadded input of each length."""
    cfg = EncoderConfig((B(8, 1, 33, stride=2), B(8, 2, 5, stride=2), B(8, 1, 11, stride=3)))
    encoder = Encoder(cfg, 4).eval()
    for n in [1, 2, 3, 15, 16, 17, 100]:
        out, out_len = encoder(torch.randn(1, 4, n), torch.tensor([n]))
        assert out.shape[-1] == int(out_len[0])
    assert cfg.subsampling == 2 * 4 * 3


def _waveform_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    waves = torch.zeros(len(lengths), max(lengths) + 800)
    for b, n in enumerate(lengths):
        t = torch.arange(n) / 16000.0
        tone = torch.sin(2 * math.pi * (200 + 150 * b) * t)
        waves[b, :n] = 0.3 * tone + 0.05 * torch.randn(n, generator=gen)
    return waves, torch.tensor(lengths)


def test_model_padding_invariance_from_waveforms():
    """Front-end + small QuartzNet: log-probs alone and inside a padded batch agree to 1e-5 of
    their largest magnitude (an untrained kaiming-initialised model in eval mode reaches
    hundreds; float32 rounding scales with it)."""
    torch.manual_seed(0)
    model = CTCModel(load_model_config(MODEL_CONF / "small.yaml"), vocab_size=29).eval()
    _randomize_batch_norm(model)
    waves, lengths = _waveform_batch([8000, 12345, 4001])
    with torch.no_grad():
        log_probs, out_lengths = model(waves, lengths)
        assert torch.equal(out_lengths, model.output_lengths(lengths))
        for b, n in enumerate(lengths.tolist()):
            alone, alone_len = model(waves[b : b + 1, :n], lengths[b : b + 1])
            assert alone.shape[1] == int(alone_len[0]) == int(out_lengths[b])
            tol = 1e-5 * max(1.0, float(alone.abs().max()))
            torch.testing.assert_close(log_probs[b, : alone.shape[1]], alone[0], atol=tol, rtol=0)
    assert log_probs.dtype == torch.float32
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))


def _brute_force_ctc(log_probs: torch.Tensor, target: list[int]) -> float:
    """-log sum over every frame path that collapses to ``target`` (blank 0)."""
    frames, vocab = log_probs.shape
    total = -math.inf
    for path in itertools.product(range(vocab), repeat=frames):
        collapsed = [s for i, s in enumerate(path) if s != 0 and (i == 0 or path[i - 1] != s)]
        if collapsed == target:
            score = sum(float(log_probs[t, s]) for t, s in enumerate(path))
            total = max(total, score) + math.log1p(math.exp(-abs(total - score)))
    return -total


def test_ctc_loss_matches_brute_force_and_normalises_by_target_length():
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 2, 2], [2, 0, 0]])
    target_lengths, out_lengths = torch.tensor([3, 1]), torch.tensor([6, 4])
    loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
    ref0 = _brute_force_ctc(log_probs[0, :6], [1, 2, 2]) / 3
    ref1 = _brute_force_ctc(log_probs[1, :4], [2]) / 1
    assert float(loss) == pytest.approx((ref0 + ref1) / 2, rel=1e-4)
    # "1 2 2" needs 4 frames (a blank between the 2s): with 3 frames it is impossible -> 0.
    impossible = ctc_loss(log_probs[:1], torch.tensor([3]), targets[:1], torch.tensor([3]))
    assert float(impossible) == 0.0


def _tiny_config() -> ModelConfig:
    frontend = dataclasses.replace(
        load_model_config(MODEL_CONF / "small.yaml").frontend, num_mel_bins=32, dither=0.0
    )
    encoder = EncoderConfig(
        (B(64, 1, 11, stride=2), B(64, 2, 7, residual=True), B(96, 1, 1, separable=False))
    )
    return ModelConfig(encoder=encoder, frontend=frontend)


def test_overfits_one_batch():
    """A tiny model drives the CTC loss of one fixed batch near zero and then decodes it."""
    from asr.decode.greedy import greedy_decode

    torch.manual_seed(0)
    model = CTCModel(_tiny_config(), vocab_size=6)
    waves, lengths = _waveform_batch([4800, 4000, 3200, 4400], seed=1)
    targets = torch.tensor([[1, 2, 3, 4], [5, 4, 4, 0], [2, 2, 0, 0], [3, 1, 5, 2]])
    target_lengths = torch.tensor([4, 3, 2, 4])
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = ctc_loss(*model(waves, lengths), targets, target_lengths)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    model.eval()
    with torch.no_grad():
        hyps = greedy_decode(*model(waves, lengths))
    assert [list(h.token_ids) for h in hyps] == [
        t[:n].tolist() for t, n in zip(targets, target_lengths)
    ]


def test_spec_augment_runs_in_training_only():
    calls = []

    class Recorder(torch.nn.Module):
        def forward(self, features, lengths):
            calls.append(features.shape)
            return torch.zeros_like(features)

    model = CTCModel(_tiny_config(), vocab_size=5, spec_augment=Recorder())
    waves, lengths = _waveform_batch([3200, 1600])
    with torch.no_grad():
        train_out = model.train()(waves, lengths)[0]
        eval_out = model.eval()(waves, lengths)[0]
    assert len(calls) == 1 and calls[0][-1] == 32
    assert not torch.allclose(train_out, eval_out)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("encoder: {blocks: [{filters: 8, kernal: 3}]}", "encoder.blocks[0]: unknown key 'kernal'"),
        ("encoder: {blocks: [{filters: 8}, {filters: x}]}", "encoder.blocks[1].filters: expected"),
        ("encoder: {blocks: [{filters: 8, kernel: 4}]}", "kernel must be odd"),
        ("encoder: {blocks: [{filters: 8, stride: 2, dilation: 2}]}", "stride and dilation"),
        ("encoder: {blocks: [{filters: 8, separable: 1}]}", "separable: expected true or false"),
        ("encoder: {activation: mish, blocks: [{filters: 8}]}", "encoder.activation: expected one"),
        ("encoder: {blocks: []}", "blocks must not be empty"),
        ("frontend: {num_mel_bin: 64}\nencoder: {blocks: [{filters: 8}]}", "unknown key"),
        ("decoder: {}\nencoder: {blocks: [{filters: 8}]}", "unknown key 'decoder'"),
    ],
)
def test_bad_config_names_the_field(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"model\.yaml") as err:
        load_model_config(path)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_frontend_preset_path_and_overrides(tmp_path):
    preset = tmp_path / "presets" / "fe.yaml"
    preset.parent.mkdir()
    preset.write_text("num_mel_bins: 40\nlow_freq_hz: 0.0\n")
    path = _write(tmp_path, "frontend: presets/fe.yaml\nencoder: {blocks: [{filters: 8}]}\n")
    cfg = load_model_config(path, ["frontend.num_mel_bins=24", "encoder.activation=swish"])
    assert cfg.frontend == FrontendConfig(num_mel_bins=24, low_freq_hz=0.0)
    assert cfg.encoder.activation == "swish"
    missing = _write(tmp_path, "frontend: nope.yaml\nencoder: {blocks: [{filters: 8}]}\n")
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_model_config(missing)


def test_parameter_layout_matches_nemo():
    """Keys and shapes follow NeMo's ConvASREncoder/JasperBlock/ConvASRDecoder, with prefixes
    ``encoder.encoder.`` -> ``encoder.blocks.`` and ``decoder.decoder_layers.0.`` -> ``head.conv.``,
    so NeMo checkpoints import by renaming alone. Expected keys written out from NeMo's jasper.py:
    [depthwise, pointwise, BN, act, dropout] per repeat, SE last, res.0 = [1x1 conv, BN]."""
    encoder = EncoderConfig(
        (
            B(16, 1, 33, stride=2),
            B(24, 2, 5, residual=True, se=True, se_reduction_ratio=8),
            B(32, 1, 1, separable=False),
        )
    )
    model = CTCModel(ModelConfig(encoder=encoder, frontend=_tiny_config().frontend), 29)
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    expected = {
        "encoder.blocks.0.mconv.0.conv.weight": (32, 1, 33),  # depthwise over 32 mel bins
        "encoder.blocks.0.mconv.1.conv.weight": (16, 32, 1),
        **{f"encoder.blocks.0.mconv.2.{k}": (16,) for k in bn},
        "encoder.blocks.1.mconv.0.conv.weight": (16, 1, 5),
        "encoder.blocks.1.mconv.1.conv.weight": (24, 16, 1),
        **{f"encoder.blocks.1.mconv.2.{k}": (24,) for k in bn},
        "encoder.blocks.1.mconv.5.conv.weight": (24, 1, 5),  # 3: ReLU, 4: Dropout
        "encoder.blocks.1.mconv.6.conv.weight": (24, 24, 1),
        **{f"encoder.blocks.1.mconv.7.{k}": (24,) for k in bn},
        "encoder.blocks.1.mconv.8.fc.0.weight": (3, 24),
        "encoder.blocks.1.mconv.8.fc.2.weight": (24, 3),
        "encoder.blocks.1.res.0.0.conv.weight": (24, 16, 1),
        **{f"encoder.blocks.1.res.0.1.{k}": (24,) for k in bn},
        "encoder.blocks.2.mconv.0.conv.weight": (32, 24, 1),
        **{f"encoder.blocks.2.mconv.1.{k}": (32,) for k in bn},
        "head.conv.weight": (29, 32, 1),
        "head.conv.bias": (29,),
    }
    state = {
        k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("frontend.")
    }
    expected = {k: (() if k.endswith("num_batches_tracked") else v) for k, v in expected.items()}
    assert state == expected
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            assert m.eps == 1e-3 and m.momentum == 0.1


def test_bf16_autocast_forward_close_to_float32():
    model = CTCModel(_tiny_config(), vocab_size=6).eval()
    waves, lengths = _waveform_batch([3200, 2400])
    with torch.no_grad():
        ref, _ = model(waves, lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, low_lengths = model(waves, lengths)
    assert low.dtype == torch.float32 and torch.equal(low_lengths, model.output_lengths(lengths))
    torch.testing.assert_close(low, ref, atol=0.1, rtol=0)
