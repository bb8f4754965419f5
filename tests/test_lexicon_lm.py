"""asr.lm.lexicon: a word lexicon over a character LM, checked against counting by hand."""

from __future__ import annotations

import pytest
import torch

from asr.decode.beam import BeamSearchConfig, beam_search
from asr.lm import LMError
from asr.lm.lexicon import LexiconLM, lexicon_tables
from asr.lm.lstm import LSTMLM, LSTMLMConfig
from asr.text.tokenizer import CharTokenizer

TOK = CharTokenizer()
WORDS = ["THE", "THEN", "CAT", "SAT", "ON", "MAT'S", "A"]
TEXTS = ["THE CAT SAT", "THEN", "TH", "THEY SAT ON A MAT'S", "", "CATS CAT", "XQ A ZZ"]


def _lstm(seed: int = 0) -> LSTMLM:
    torch.manual_seed(seed)
    cfg = LSTMLMConfig(embedding_dim=16, hidden_size=24, num_layers=1, dropout=0.0)
    return LSTMLM(cfg, TOK.vocab).eval()


def _oov_words(text: str) -> int:
    return sum(word not in WORDS for word in text.split())


@pytest.mark.parametrize("penalty", [0.0, -2.5, -40.0])
def test_each_word_outside_the_lexicon_pays_the_penalty_once(penalty):
    """Sentence scores = the LSTM's + penalty x (words outside the lexicon), also in a batch
    stepped token by token (score_sentences runs step())."""
    lstm = _lstm()
    lex = LexiconLM(lstm, WORDS, TOK, penalty)
    sentences = [TOK.encode(t) for t in TEXTS]
    base = lstm.score_sentences(sentences)
    want = base + penalty * torch.tensor([_oov_words(t) for t in TEXTS], dtype=torch.float64)
    torch.testing.assert_close(lex.score_sentences(sentences), want, atol=1e-4, rtol=0)
    assert [_oov_words(t) for t in TEXTS] == [0, 0, 1, 1, 0, 1, 2]


def test_states_select_and_concat_like_the_lm():
    """Batched states select/concat like the LM's; after the prefix "TH" the boundary and a
    letter no word continues with cost the penalty, a continuing letter costs nothing."""
    lstm = _lstm()
    lex = LexiconLM(lstm, WORDS, TOK, -3.0)
    state, base = lex.initial_state(3), lstm.initial_state(3)
    for ch in "TH":
        _, state = lex.step(torch.tensor(TOK.encode(ch) * 3), state)
        _, base = lstm.step(torch.tensor(TOK.encode(ch) * 3), base)
    picked = lex.select_state(lex.concat_states([state, state]), torch.tensor([4, 0]))
    assert picked.batch_size == 2
    torch.testing.assert_close(picked.log_probs, state.log_probs[:2])
    extra = (state.log_probs - base.log_probs)[0]
    space, z, e = (TOK.encode(c)[0] for c in " ZE")
    assert float(extra[space]) == pytest.approx(-3.0, abs=1e-5)  # "TH" is not a word
    assert float(extra[0]) == pytest.approx(-3.0, abs=1e-5)  # nor at </s>
    assert float(extra[z]) == pytest.approx(-3.0, abs=1e-5)  # no word starts "THZ"
    assert float(extra[e]) == pytest.approx(0.0, abs=1e-6)  # THE, THEN


def test_a_hard_lexicon_steers_the_beam_to_words():
    """Emissions that spell "CAX" (X a little likelier than T) decode as the lexicon word CAT
    once words outside the lexicon cost enough, and as CAX without the lexicon."""
    ids = TOK.encode("CAX")
    t_id = TOK.encode("T")[0]
    frames = torch.full((len(ids) * 2, TOK.vocab_size), -12.0)
    for i, tok in enumerate(ids):
        frames[2 * i, tok] = -0.05
        frames[2 * i + 1, 0] = -0.05
    frames[4, t_id] = -0.8  # T close behind X
    frames[4, ids[2]] = -0.6
    log_probs = frames.log_softmax(-1)[None]
    lengths = torch.tensor([frames.shape[0]])
    cfg = BeamSearchConfig(beam_size=8, alpha=1.0)
    flat = LexiconLM(_lstm(), WORDS, TOK, 0.0)
    hard = LexiconLM(_lstm(), WORDS, TOK, -30.0)
    assert beam_search(log_probs, lengths, cfg, flat, TOK)[0][0].text == "CAX"
    assert beam_search(log_probs, lengths, cfg, hard, TOK)[0][0].text == "CAT"


def test_bad_lexicons_are_one_line_errors():
    with pytest.raises(LMError, match="no lexicon word"):
        lexicon_tables(["hello", "??"], TOK.vocab)
    with pytest.raises(LMError, match="separator"):
        lexicon_tables(["A"], ["<blank>", "A", "B"])
    with pytest.raises(LMError, match="<= 0"):
        LexiconLM(_lstm(), WORDS, TOK, 1.0)
