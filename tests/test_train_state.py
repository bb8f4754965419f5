"""Training state and checkpoints: no pickle, atomic, pruned, averaged."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from asr.train.checkpoint import CheckpointManager, average_model_states, load_checkpoint
from asr.train.state import StateError, flatten_state, load_state, save_state, unflatten_state


def _full_state() -> dict:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "sampler": {"epoch": 3, "batches_done": 17},
        "none": None,
    }


def _assert_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b) and a.dtype == b.dtype
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b) and a.dtype == b.dtype
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    else:
        assert a == b


def test_flatten_round_trip_keeps_types():
    state = _full_state()
    skeleton, tensors = flatten_state(state)
    json.dumps(skeleton)  # must be JSON-able
    _assert_equal(state, unflatten_state(json.loads(json.dumps(skeleton)), tensors))


def test_restored_states_reproduce_random_streams_and_optimizer(tmp_path):
    state = _full_state()
    save_state(state, tmp_path / "s")
    back = load_state(tmp_path / "s")
    torch.set_rng_state(back["torch_rng"])
    np.random.set_state(back["numpy_rng"])
    random.setstate(back["python_rng"])
    a = (torch.rand(3), np.random.rand(3), random.random())
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    opt = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    opt.load_state_dict(back["optimizer"])  # loads without complaint


def test_missing_state_is_clear_error(tmp_path):
    with pytest.raises(StateError, match="missing"):
        load_state(tmp_path / "nothing")


def _model_state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 2), float(value)), "n": torch.tensor(int(value))}


def test_manager_keeps_last_and_best(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2, keep_best=2)
    wers = [0.5, 0.2, 0.4, 0.1, 0.3, 0.6]
    for step, wer in enumerate(wers, start=1):
        mgr.save(
            step * 10,
            epoch=step,
            model_state=_model_state(step),
            train_state={"s": step},
            metrics={"wer": wer},
        )
    kept = sorted(i.step for i in mgr.list())
    assert kept == [20, 40, 50, 60]  # best two (0.1, 0.2) + last two
    assert [i.step for i in mgr.best()] == [40, 20]
    assert mgr.latest().name == "step-00000060"
    model, train, info = load_checkpoint(mgr.latest())
    assert torch.equal(model["w"], torch.full((2, 2), 6.0)) and train == {"s": 6}
    assert info.metrics == {"wer": 0.6}


def test_manager_ranks_by_the_chosen_metric(tmp_path):
    # WER and CER disagree: at WER near 1 the CER tells the checkpoints apart
    wers = [0.95, 0.97, 0.96, 0.99]
    cers = [0.60, 0.45, 0.50, 0.55]
    rankings = {}
    for metric in ("wer", "cer"):
        mgr = CheckpointManager(tmp_path / metric, keep_last=1, keep_best=2, metric=metric)
        for step, (wer, cer) in enumerate(zip(wers, cers), start=1):
            mgr.save(step, 1, _model_state(step), {"s": step}, metrics={"wer": wer, "cer": cer})
        rankings[metric] = [i.step for i in mgr.best()]
        assert sorted(i.step for i in mgr.list()) == sorted({4, *rankings[metric]})
    assert rankings == {"wer": [1, 3], "cer": [2, 3]}


def test_interrupted_write_leaves_latest_intact(tmp_path):
    mgr = CheckpointManager(tmp_path)
    mgr.save(1, 0, _model_state(1), {"s": 1})
    (mgr.dir / ".step-00000002.tmp-999").mkdir()  # a write killed half-way
    (mgr.dir / ".step-00000002.tmp-999" / "model.safetensors").write_bytes(b"junk")
    assert mgr.latest().name == "step-00000001"
    assert [i.step for i in mgr.list()] == [1]


def test_average(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=5)
    for step in (1, 2, 3):
        mgr.save(step, 0, _model_state(step), {})
    avg = average_model_states([i.path for i in mgr.list()])
    assert torch.allclose(avg["w"], torch.full((2, 2), 2.0))
    assert avg["n"].item() == 3 and avg["n"].dtype == torch.int64
