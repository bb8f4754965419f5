"""The LSTM LM and its scoring API: batched steps vs teacher forcing, state selection, known
perplexities, vocabulary checks, export/load, exact resume of training."""

from __future__ import annotations

import json
import math

import pytest
import torch

from asr.cli import main
from asr.lm import LanguageModel, LMError
from asr.lm.io import load_lm, save_lm
from asr.lm.lstm import LSTMLM, LSTMLMConfig
from asr.lm.perplexity import perplexity
from asr.text.tokenizer import CharTokenizer

TOK = CharTokenizer()


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


TEXTS = ["THE CAT SAT", "A", "", "ON THE MAT'S EDGE", "IT IS"]


def _model(seed=0, **kw) -> LSTMLM:
    torch.manual_seed(seed)
    cfg = LSTMLMConfig(embedding_dim=24, hidden_size=32, num_layers=2, dropout=0.0, **kw)
    return LSTMLM(cfg, TOK.vocab).eval()


def _step_scores(lm: LSTMLM, sentences: list[list[int]]) -> list[float]:
    """Score every sentence alone, one step() at a time (batch of 1)."""
    out = []
    for ids in sentences:
        state = lm.initial_state(1)
        total = 0.0
        for tok in ids:
            total += float(state.log_probs[0, tok])
            _, state = lm.step(torch.tensor([tok]), state)
        out.append(total + float(lm.end_score(state)[0]))
    return out


@pytest.mark.parametrize("kw", [{}, {"proj_size": 16}, {"tie_embeddings": False}])
def test_batched_step_equals_sequential_scoring(kw):
    lm = _model(**kw)
    sentences = [TOK.encode(t) for t in TEXTS]
    teacher = lm.score_sentences(sentences)
    generic = LanguageModel.score_sentences(lm, sentences)  # the generic step loop
    sequential = torch.tensor(_step_scores(lm, sentences), dtype=torch.float64)
    assert torch.allclose(teacher, sequential, atol=1e-4)
    assert torch.allclose(generic, sequential, atol=1e-4)
    probs = lm.initial_state(3).log_probs.exp().sum(-1)
    assert torch.allclose(probs, torch.ones(3), atol=1e-5)


def test_step_follows_weight_changes():
    """The cached first-layer gate table is rebuilt when the weights change in place."""
    lm, other = _model(seed=0), _model(seed=1)
    sentences = [TOK.encode(t) for t in TEXTS]
    before = torch.tensor(_step_scores(lm, sentences), dtype=torch.float64)
    lm.load_state_dict(other.state_dict())  # copies in place: same tensors, new versions
    after = torch.tensor(_step_scores(lm, sentences), dtype=torch.float64)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, other.score_sentences(sentences), atol=1e-4)


@pytest.mark.parametrize("kw", [{}, {"proj_size": 16}, {"tie_embeddings": False}])
def test_int8_steps_score_close_to_float32(kw):
    """``lm.int8``: the recurrent products in int8 change each token's log-prob by rounding
    only, and follow in-place weight changes like the float path."""
    from asr.lm.int8 import int8_available

    if not int8_available():
        pytest.skip("this torch build has no x86/fbgemm quantised engine")
    lm = _model(**kw)
    sentences = [TOK.encode(t) for t in TEXTS]
    exact = torch.tensor(_step_scores(lm, sentences), dtype=torch.float64)
    lm.int8 = True
    approx = torch.tensor(_step_scores(lm, sentences), dtype=torch.float64)
    tokens = torch.tensor([len(s) + 1 for s in sentences], dtype=torch.float64)
    assert not torch.equal(approx, exact)
    assert ((approx - exact).abs() / tokens).max() < 0.01
    other = _model(seed=1, **kw)
    lm.load_state_dict(other.state_dict())
    moved = torch.tensor(_step_scores(lm, sentences), dtype=torch.float64)
    assert ((moved - other.score_sentences(sentences)).abs() / tokens).max() < 0.01


def test_select_and_concat_states():
    lm = _model()
    state = lm.initial_state(3)
    log_probs, state = lm.step(torch.tensor([3, 5, 7]), state)
    assert log_probs.shape == (3, TOK.vocab_size) and state.log_probs is log_probs
    picked = lm.select_state(state, torch.tensor([2, 0, 0]))
    lp_picked, _ = lm.step(torch.tensor([9, 9, 4]), picked)
    for row, (src, tok) in enumerate([(2, 9), (0, 9), (0, 4)]):
        alone = lm.select_state(state, torch.tensor([src]))
        lp_alone, _ = lm.step(torch.tensor([tok]), alone)
        assert torch.allclose(lp_picked[row], lp_alone[0], atol=1e-5)
    both = lm.concat_states([picked, lm.initial_state(2)])
    assert both.batch_size == 5
    assert torch.equal(both.log_probs[3], lm.initial_state(1).log_probs[0])
    assert torch.equal(lm.end_score(both), both.log_probs[:, 0])


def _known_model(bias: torch.Tensor) -> LSTMLM:
    """An LSTM LM whose output ignores the input: softmax(bias) at every step."""
    lm = _model()
    with torch.no_grad():
        lm.embedding.weight.zero_()
        lm.output_bias.copy_(bias)
    return lm


def test_perplexity_matches_hand_computation(tmp_path):
    lm_dir = save_lm(_known_model(torch.zeros(TOK.vocab_size)), TOK, tmp_path / "uniform")
    text = tmp_path / "text.txt"
    text.write_text("A B\nCAT\n", encoding="utf-8")
    result = perplexity(lm_dir, ["A B", "CAT"], progress=False)
    # 3 + 3 characters and two </s>: ln P = -8 ln 29; words: 2 + 1 plus two </s> = 5
    assert result.log_prob == pytest.approx(-8 * math.log(29))
    assert result.ppl_token == pytest.approx(29.0)
    assert result.ppl_word == pytest.approx(29.0 ** (8 / 5))
    # P(</s>) = 1/2 and the other 28 symbols share the rest
    bias = torch.full((TOK.vocab_size,), math.log(0.5 / 28))
    bias[0] = math.log(0.5)
    result = perplexity(save_lm(_known_model(bias), TOK, tmp_path / "skewed"), ["AB"], False)
    assert result.log_prob == pytest.approx(2 * math.log(0.5 / 28) + math.log(0.5), rel=1e-6)
    assert main(["lm-ppl", "--lm", str(lm_dir), str(text)]) == 0


def test_vocabulary_mismatch_is_a_clear_error(tmp_path):
    lm = _model()
    lm.check_compatible(CharTokenizer())
    other = CharTokenizer(["<blank>", " ", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    with pytest.raises(LMError, match=r"sizes 29 \(LM\) vs 28.*only in LM: \[\"'\"\]"):
        lm.check_compatible(other)
    swapped = CharTokenizer(["<blank>", "A", " ", *"BCDEFGHIJKLMNOPQRSTUVWXYZ'"])
    with pytest.raises(LMError, match=r"first difference at id 1: ' ' \(LM\) vs 'A'"):
        lm.check_compatible(swapped)
    with pytest.raises(LMError, match="vocabularies differ"):
        save_lm(lm, other, tmp_path / "bad")


def test_export_round_trip_and_load_errors(tmp_path):
    lm = _model(proj_size=8)
    out = save_lm(lm, TOK, tmp_path / "lm")
    loaded, tokenizer = load_lm(out)
    sentences = [TOK.encode(t) for t in TEXTS]
    assert tokenizer.vocab == TOK.vocab
    assert torch.equal(loaded.score_sentences(sentences), lm.score_sentences(sentences))
    assert sorted(p.name for p in out.iterdir()) == [
        "lm.yaml",
        "model.safetensors",
        "tokenizer.yaml",
    ]
    with pytest.raises(LMError, match="not found"):
        load_lm(tmp_path / "nope")
    (out / "lm.yaml").write_text(
        (out / "lm.yaml").read_text().replace("vocab_size: 29", "vocab_size: 30")
    )
    with pytest.raises(LMError, match="vocab_size 30 but the tokenizer"):
        load_lm(out)


def test_float16_export_halves_the_file_and_scores_close(tmp_path, capsys):
    from safetensors.torch import load_file

    lm = _model(proj_size=8)
    full = save_lm(lm, TOK, tmp_path / "fp32")
    assert main(["export", str(full), str(tmp_path / "fp16"), "--dtype", "float16"]) == 0
    assert "LSTM LM" in capsys.readouterr().out
    half = tmp_path / "fp16"
    stored = load_file(str(half / "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in stored.values())
    size = (half / "model.safetensors").stat().st_size
    assert size < 0.55 * (full / "model.safetensors").stat().st_size
    loaded, _ = load_lm(half)
    assert next(loaded.parameters()).dtype == torch.float32  # computes in float32
    sentences = [TOK.encode(t) for t in TEXTS]
    got, want = loaded.score_sentences(sentences), lm.score_sentences(sentences)
    assert not torch.equal(got, want)  # weights really were rounded
    torch.testing.assert_close(got, want, atol=0.05, rtol=1e-3)
    assert main(["export", str(half), str(half)]) == 2  # refuses to overwrite its source
    assert "must differ" in capsys.readouterr().err
    with pytest.raises(LMError, match="export dtype"):
        save_lm(lm, TOK, tmp_path / "x", dtype="int8")


def _train(tmp_path, exp, extra=(), resume=False):
    text = tmp_path / "train.txt"
    if not text.exists():
        base = ["THE CAT SAT ON THE MAT", "A DOG", "IT IS SO"]
        lines = [" ".join(base[i % 3].split()[: 2 + i % 4]) for i in range(300)]
        text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["train-lm", "--config", "conf/lm/small_char.yaml", "--tokenizer", "char",
            "--text", str(text), "--exp", str(tmp_path / exp)]  # fmt: skip
    overrides = ["model.embedding_dim=16", "model.hidden_size=24", "model.dropout=0.2",
                 "data.text_format=lines", "data.buffer_sentences=64", "data.max_batch_tokens=256",
                 "data.max_sentence_tokens=100",
                 "data.valid_per_mille=100", "engine.max_steps=10",
                 "engine.checkpoint_every_steps=4", "engine.log_every_steps=1",
                 "optim.warmup_steps=2", "engine.threads=0", *extra]  # fmt: skip
    return main(args + (["--resume"] if resume else []) + overrides)


def _losses(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


def test_training_resumes_exactly(tmp_path, monkeypatch):
    assert _train(tmp_path, "full") == 0
    full = _losses(tmp_path / "full" / "log.jsonl")
    assert sorted(full) == list(range(1, 11))
    from asr.train.lm import LMTrainer

    original = LMTrainer.loss

    def dies_at_step_7(self, forward, batch):
        if self.engine.step == 6:
            raise KeyboardInterrupt  # killed after the checkpoint at step 4
        return original(self, forward, batch)

    monkeypatch.setattr(LMTrainer, "loss", dies_at_step_7)
    assert _train(tmp_path, "killed") == 130
    monkeypatch.setattr(LMTrainer, "loss", original)
    assert _train(tmp_path, "killed", resume=True) == 0
    resumed = _losses(tmp_path / "killed" / "log.jsonl")
    assert sorted(resumed) == list(range(1, 11))
    assert resumed == full  # bitwise
    loaded, _ = load_lm(tmp_path / "killed" / "lm")
    assert loaded.cfg.hidden_size == 24


def test_init_from_continues_an_exported_lm(tmp_path, capsys):
    """init_from starts from the exported LM's weights: at a vanishing learning rate the
    continued run exports the same weights and starts at a far lower loss than a fresh run; a
    different architecture is a one-line error naming the field."""
    first = ["engine.max_steps=40", "engine.epochs=5", "optim.lr=0.01"]
    assert _train(tmp_path, "first", first) == 0
    fresh = _losses(tmp_path / "first" / "log.jsonl")[1]
    lm_dir = tmp_path / "first" / "lm"
    more = [f"init_from={lm_dir}", "engine.max_steps=4", "optim.lr=1e-9", "optim.min_lr=0"]
    assert _train(tmp_path, "second", more) == 0
    assert _losses(tmp_path / "second" / "log.jsonl")[1] < fresh - 0.5
    want = load_lm(lm_dir)[0].state_dict()
    got = load_lm(tmp_path / "second" / "lm")[0].state_dict()
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=0)
    capsys.readouterr()
    bad = [f"init_from={lm_dir}", "model.hidden_size=32"]
    assert _train(tmp_path, "third", bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "init_from" in err[-1] and "hidden_size" in err[-1]
