"""LSTM LM throughput: training tokens/s and batched scoring (hypothesis-steps/s), one thread.

The model is ``conf/lm/small_char.yaml`` (2 x 512 character LSTM) or an exported LM (``--lm``).
Training is a run of the project's LM trainer (:class:`asr.train.lm.LMTrainer` on
:mod:`asr.train.engine`, through bench/engine_run.py) on made-up sentences of 110 characters
(one per line, batched by ``data.max_batch_tokens``): per step the engine reads the batch from its
text stream, runs forward, the cross-entropy, backward and the AdamW update, and logs its tokens
per second; the first step (reading and tokenising the text) is not timed.
Scoring runs what the decoder does per search step: one :meth:`LSTMLM.step` for B hypotheses
followed by :meth:`select_state` (beam reordering). Batch 1 is the unbatched path (one call per
hypothesis, like a per-state ``CTCDecoderLM``), so the speed-up column is what batching buys.
When ``--arpa`` is given, KenLM's per-hypothesis ``BaseScore`` on that n-gram is timed too, as
the n-gram reference. Run from the repository root::

    .venv/bin/python -m bench.lm                       # writes the "lm" section of RESULTS.md
    .venv/bin/python -m bench.lm --arpa /work/lm_exp/ngram/char5.arpa --no-write
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch

from asr import config as config_io
from asr.lm.lstm import LSTMLM, LSTMLMConfig
from asr.lm.text_data import LMDataConfig
from asr.text.tokenizer import CharTokenizer, Tokenizer
from asr.train.config import LMTrainConfig
from bench.engine_run import engine_config, random_letters, run_engine

BATCHES = (1, 16, 64, 256)
SENTENCE_CHARS = 110


def _model(lm_dir: str | None) -> tuple[LSTMLM, Tokenizer]:
    if lm_dir:
        from asr.lm.io import load_lm

        return load_lm(lm_dir)
    cfg = config_io.load(LMTrainConfig, "conf/lm/small_char.yaml")
    return LSTMLM(cfg.model, CharTokenizer().vocab).eval(), CharTokenizer()


def bench_training(
    model_cfg: LSTMLMConfig,
    tokenizer: Tokenizer,
    batch_tokens: int,
    steps: int,
    init_from: str | None = None,
) -> float:
    """Training tokens per second of ``steps`` engine steps (after one untimed step) on
    sentences of SENTENCE_CHARS characters, ``batch_tokens`` padded tokens per batch."""
    from asr.train.lm import LMTrainer

    per_batch = max(1, batch_tokens // (SENTENCE_CHARS + 1))
    rng = random.Random(0)
    data = LMDataConfig(
        valid_per_mille=0,  # no validation: every sentence trains
        max_sentence_tokens=SENTENCE_CHARS,
        max_batch_tokens=max(batch_tokens, SENTENCE_CHARS + 1),
        normalize=False,
        shuffle_files=False,
    )
    engine = engine_config(max_steps=steps + 1, epochs=1_000_000, threads=1)
    cfg = LMTrainConfig(model=model_cfg, data=data, engine=engine, init_from=init_from)
    with tempfile.TemporaryDirectory(prefix="bench-lm-") as tmp:
        text = Path(tmp) / "train.txt"
        lines = (random_letters(SENTENCE_CHARS, rng) for _ in range(per_batch * (steps + 1)))
        text.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        run = run_engine(lambda exp: LMTrainer(cfg, tokenizer, [text], exp), Path(tmp) / "exp")
    return run.rate(skip=1)


@torch.no_grad()
def bench_scoring(model: LSTMLM, batch: int, seconds: float) -> tuple[float, float]:
    """(hypothesis-steps/s, ms per batched step) of step + select_state for ``batch``."""
    gen = torch.Generator().manual_seed(0)
    state = model.initial_state(batch)
    steps, start = 0, time.perf_counter()
    while True:
        tokens = torch.randint(1, model.vocab_size, (batch,), generator=gen)
        _, state = model.step(tokens, state)
        state = model.select_state(state, torch.randint(0, batch, (batch,), generator=gen))
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            return batch * steps / elapsed, 1000 * elapsed / steps


def bench_kenlm(arpa: str, seconds: float) -> float:
    """KenLM hypothesis-steps/s: one BaseScore per hypothesis (character n-gram)."""
    import kenlm

    model = kenlm.Model(arpa)
    symbols = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["|", "'"]
    rng = random.Random(0)
    state, out = kenlm.State(), kenlm.State()
    model.BeginSentenceWrite(state)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            model.BaseScore(state, rng.choice(symbols), out)
            state, out = out, state
        steps += 1000
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    from bench.report import markdown_table, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", default=None, help="exported LM folder (default: random init)")
    parser.add_argument("--arpa", default=None, help="KenLM model timed as the reference")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per batch size")
    parser.add_argument("--train-steps", type=int, default=3, help="training steps timed")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tokenizer = _model(args.lm)
    n_params = sum(p.numel() for p in model.parameters())
    rows = []
    base = None
    for batch in BATCHES:
        rate, ms = bench_scoring(model, batch, args.seconds)
        base = base or rate
        rows.append([f"LSTM step + select_state, batch {batch}", f"{rate:,.0f}", ms, rate / base])
    if args.arpa:
        rate = bench_kenlm(args.arpa, args.seconds)
        rows.append([f"KenLM BaseScore ({args.arpa.rsplit('/', 1)[-1]})", f"{rate:,.0f}", "", ""])
    train_rows = [
        [tokens, f"{bench_training(model.cfg, tokenizer, tokens, args.train_steps, args.lm):,.0f}"]
        for tokens in (2048, 8192)
    ]
    cfg = model.cfg
    body = (
        f"Model: {cfg.num_layers} x {cfg.hidden_size} LSTM, embedding {cfg.embedding_dim}, "
        f"tied={cfg.tie_embeddings}, {model.vocab_size} tokens, {n_params / 1e6:.2f} M parameters"
        f"{' (' + args.lm + ')' if args.lm else ' (random weights)'}; torch threads 1.\n\n"
        "Scoring (what the decoder calls once per search step):\n\n"
        + markdown_table(["path", "hypothesis-steps/s", "ms per call", "x batch 1"], rows)
        + "\n\nTraining (the engine, `asr.train.lm`: batch from the text stream, forward + "
        f"backward + AdamW, sentences of {SENTENCE_CHARS} characters):\n\n"
        + markdown_table(["padded tokens per batch", "tokens/s"], train_rows)
        + "\n\nCommand: `.venv/bin/python -m bench.lm"
        + (f" --arpa {args.arpa}" if args.arpa else "")
        + "`. The machine's 2 cores were shared with other jobs (load average "
        + f"{_load():.1f}), so absolute rates are lower bounds.\n"
    )
    print(body)
    if not args.no_write:
        write_section("lm", "LSTM language model throughput (bench/lm.py)", body)


def _load() -> float:
    try:
        with open("/proc/loadavg", encoding="utf-8") as fh:
            return float(fh.read().split()[0])
    except OSError:
        return float("nan")


if __name__ == "__main__":
    main()
