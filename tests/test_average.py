"""Weight averaging (``asr average``, :mod:`asr.models.average`): the result against a mean
computed here tensor by tensor, integer buffers, mismatched inputs, OUT refusals, the CLI."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import asr
from asr.io.folders import ModelFileError
from asr.models.average import StateMismatchError, average_model_dirs, average_states
from asr.models.ctc import CTCModel, ModelConfig
from asr.models.io import export_model, load_model
from asr.text.tokenizer import CharTokenizer
from tests.test_hostile_outputs import _refused, snapshot
from tests.test_model_io import _audio, _model

ROOT = Path(__file__).resolve().parents[1]


def _hand_mean(models: list[CTCModel]) -> dict[str, torch.Tensor]:
    """Floating tensors: sum in float64 one by one, divide, back to float32; others: the last's."""
    states = [m.state_dict() for m in models]
    mean = {}
    for key, last in states[-1].items():
        if not last.is_floating_point():
            mean[key] = last
            continue
        total = torch.zeros(last.shape, dtype=torch.float64)
        for state in states:
            total += state[key].double()
        mean[key] = (total / len(states)).float()
    return mean


def _three(tmp_path: Path) -> tuple[list[CTCModel], list[Path]]:
    """Three random models of one architecture, exported; batch-norm counts 7, 8, 9."""
    models, dirs = [], []
    for seed in range(3):
        model = _model(seed=seed)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.num_batches_tracked.fill_(7 + seed)
        models.append(model)
        dirs.append(export_model(model, CharTokenizer(), tmp_path / f"m{seed}"))
    return models, dirs


def test_average_states_is_the_float64_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    states = [
        {
            "w": torch.randn(3, 4, generator=gen),
            "h": torch.randn(5, generator=gen).half(),
            "n": torch.tensor(i + 1),
        }
        for i in range(3)
    ]
    avg = average_states(iter(states))  # a one-pass iterable is enough
    w = (states[0]["w"].double() + states[1]["w"].double() + states[2]["w"].double()) / 3
    assert torch.equal(avg["w"], w.float()) and avg["w"].dtype == torch.float32
    h = sum(s["h"].double() for s in states) / 3
    assert torch.equal(avg["h"], h.half()) and avg["h"].dtype == torch.float16
    assert avg["n"].item() == 3 and avg["n"].dtype == torch.int64  # from the last
    assert list(avg) == ["w", "h", "n"]
    # float64 accumulation: summing these in float32 would give 33333332 (1e8 + 3 + 3 rounds
    # to 1e8 in float32), the float64 mean 33333335.33 is stored as 33333336
    big = [{"x": torch.tensor([1.0e8])}, {"x": torch.tensor([3.0])}, {"x": torch.tensor([3.0])}]
    float32_sum = (big[0]["x"] + big[1]["x"] + big[2]["x"]) / 3
    assert average_states(big)["x"].item() == 33333336.0 != float32_sum.item()


@pytest.mark.parametrize(
    ("second", "index_message"),
    [
        ({"w": torch.zeros(2)}, "missing ['n']"),
        ({"w": torch.zeros(2), "n": torch.tensor(1), "x": torch.zeros(1)}, "unexpected ['x']"),
        ({"w": torch.zeros(3), "n": torch.tensor(1)}, "w has shape (3,), the first (2,)"),
        ({"w": torch.zeros(2), "n": torch.tensor(1.0)}, "n is torch.float32"),
    ],
)
def test_average_states_refuses_mismatched_states(second, index_message) -> None:
    first = {"w": torch.ones(2), "n": torch.tensor(1)}
    with pytest.raises(StateMismatchError, match=re.escape(index_message)) as err:
        average_states([first, first, second])
    assert err.value.index == 2
    with pytest.raises(ValueError, match="no states"):
        average_states([])


def test_average_model_dirs_equals_the_hand_mean_and_decodes(tmp_path) -> None:
    models, dirs = _three(tmp_path)
    out = average_model_dirs(dirs, tmp_path / "soup")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "model.safetensors",
        "tokenizer.yaml",
    ]
    expected = _hand_mean(models)
    stored = load_file(str(out / "model.safetensors"))
    assert stored.keys() == expected.keys()
    for key, tensor in expected.items():
        assert torch.equal(stored[key], tensor), key
    assert stored["encoder.blocks.0.mconv.2.num_batches_tracked"].item() == 9  # the last's
    assert not torch.equal(stored["head.conv.weight"], models[0].state_dict()["head.conv.weight"])

    # the soup loads and decodes like a model holding the hand-computed mean
    reference = CTCModel(models[0].cfg, models[0].vocab_size)
    reference.load_state_dict(expected)
    loaded, tokenizer = load_model(out)
    assert loaded.cfg == models[0].cfg and tokenizer.vocab == CharTokenizer().vocab
    waves, lengths = _audio()
    with torch.no_grad():
        a, _ = reference.eval()(waves, lengths)
        b, _ = loaded(waves, lengths)
    assert torch.equal(a, b)
    api_model = asr.load_model(out, device="cpu")
    greedy = "".join(tokenizer.decode(a[0].argmax(-1).unique_consecutive().tolist()))
    result = api_model.transcribe(waves[0].numpy(), sample_rate=16000, decoder="greedy")
    assert result.text == greedy.strip()


def test_float16_inputs_and_output(tmp_path) -> None:
    models = [_model(seed=0), _model(seed=1)]
    half = [
        export_model(m, CharTokenizer(), tmp_path / f"h{i}", dtype="float16")
        for i, m in enumerate(models)
    ]
    out = average_model_dirs(half, tmp_path / "soup16", dtype="float16")
    assert yaml.safe_load((out / "config.yaml").read_text())["dtype"] == "float16"
    stored = load_file(str(out / "model.safetensors"))
    # the mean of the float16-rounded weights, computed in float64, stored in float16
    rounded = [m.state_dict()["head.conv.weight"].half().double() for m in models]
    assert torch.equal(stored["head.conv.weight"], ((rounded[0] + rounded[1]) / 2).half())
    assert stored["encoder.blocks.0.mconv.2.running_var"].dtype == torch.float32


def test_mismatched_architecture_or_vocabulary_is_refused(tmp_path) -> None:
    _, dirs = _three(tmp_path)
    wide = _model(seed=5)
    blocks = list(wide.cfg.encoder.blocks)
    blocks[1] = dataclasses.replace(blocks[1], filters=64)
    other = CTCModel(
        ModelConfig(dataclasses.replace(wide.cfg.encoder, blocks=tuple(blocks)), wide.cfg.frontend),
        29,
    )
    export_model(other, CharTokenizer(), tmp_path / "wide")
    with pytest.raises(ModelFileError) as err:
        average_model_dirs([dirs[0], dirs[1], tmp_path / "wide", dirs[2]], tmp_path / "soup")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'wide'}: architecture differs from {dirs[0]}")
    assert "model.encoder.blocks[1].filters: 48 vs 64" in message and "\n" not in message

    export_model(
        _model(vocab_size=30), CharTokenizer([*CharTokenizer().vocab, "#"]), tmp_path / "v30"
    )
    with pytest.raises(ModelFileError, match=r"v30: architecture differs .*vocab_size: 29 vs 30"):
        average_model_dirs([dirs[0], tmp_path / "v30"], tmp_path / "soup")

    swapped = CharTokenizer().vocab
    swapped[1], swapped[2] = swapped[2], swapped[1]
    export_model(_model(seed=6), CharTokenizer(swapped), tmp_path / "swapped")
    with pytest.raises(ModelFileError, match=r"swapped: tokenizer vocabulary differs .* at id 1"):
        average_model_dirs([dirs[0], tmp_path / "swapped"], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_inputs_are_checked(tmp_path) -> None:
    _, dirs = _three(tmp_path)
    with pytest.raises(ModelFileError, match="at least 2 model folders, got 1"):
        average_model_dirs(dirs[:1], tmp_path / "soup")
    with pytest.raises(ModelFileError, match="nothing: not an exported model"):
        average_model_dirs([dirs[0], tmp_path / "nothing"], tmp_path / "soup")
    from asr.lm.io import save_lm
    from asr.lm.lstm import LSTMLM, LSTMLMConfig

    tok = CharTokenizer()
    save_lm(LSTMLM(LSTMLMConfig(8, 8, 1), tok.vocab), tok, tmp_path / "lm")
    with pytest.raises(ModelFileError, match="lm: is an LSTM LM folder"):
        average_model_dirs([dirs[0], tmp_path / "lm"], tmp_path / "soup")


@pytest.mark.parametrize(
    ("out", "argv_tail", "culprit"),
    [
        ("m1", [], "m1"),  # one of the inputs, even with --overwrite below
        ("m1", ["--overwrite"], "m1"),
        ("done", [], "done"),  # an existing model: needs --overwrite
        ("exp", ["--overwrite"], "exp"),  # a folder holding other files: never replaced
        ("m0/sub", [], "m0/sub"),  # inside an input folder
    ],
)
def test_out_refusals_leave_everything_as_it_was(
    tmp_path, monkeypatch, capsys, out, argv_tail, culprit
) -> None:
    _three(tmp_path)
    export_model(_model(seed=4), CharTokenizer(), tmp_path / "done")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "train.log").write_text("mine\n")
    # OUT is checked before any weights are read: broken weights are never reached
    (tmp_path / "m2" / "model.safetensors").write_bytes(b"not safetensors")
    monkeypatch.chdir(tmp_path)
    _refused(tmp_path, ["average", out, "m0", "m1", "m2", *argv_tail], culprit, capsys)


def test_cli_end_to_end(tmp_path) -> None:
    models, dirs = _three(tmp_path)
    out = tmp_path / "soup"
    run = [sys.executable, "-m", "asr", "average", str(out), *map(str, dirs[:2])]
    result = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote acoustic model {out} (average of 2, float32,")
    stored = load_file(str(out / "model.safetensors"))
    expected = _hand_mean(models[:2])
    assert all(torch.equal(stored[k], v) for k, v in expected.items())

    # a rerun without --overwrite is refused in one line; with it, the folder is replaced
    before = snapshot(out)
    again = subprocess.run([*run, "--dtype", "float16"], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 2 and snapshot(out) == before
    assert again.stderr.strip().count("\n") == 0 and "--overwrite" in again.stderr
    replaced = subprocess.run(
        [*run, "--dtype", "float16", "--overwrite"], capture_output=True, text=True, cwd=ROOT
    )
    assert replaced.returncode == 0, replaced.stderr
    assert yaml.safe_load((out / "config.yaml").read_text())["dtype"] == "float16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0", "m1", "m2", "soup"]  # no temp

    one = subprocess.run([*run[:-1], "--overwrite"], capture_output=True, text=True, cwd=ROOT)
    assert one.returncode == 2 and one.stderr.startswith("error: ")
    assert "at least 2 model folders, got 1" in one.stderr
