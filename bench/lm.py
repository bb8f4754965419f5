"""LSTM LM throughput: training tokens/s and batched scoring (hypothesis-steps/s), one thread.

The model is ``conf/lm/small_char.yaml`` (2 x 512 character LSTM) or an exported LM (``--lm``).
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
import time

import torch

from asr import config as config_io
from asr.lm.lstm import LSTMLM
from asr.text.tokenizer import CharTokenizer
from asr.train.config import LMTrainConfig

BATCHES = (1, 16, 64, 256)


def _model(lm_dir: str | None) -> LSTMLM:
    if lm_dir:
        from asr.lm.io import load_lm

        return load_lm(lm_dir)[0]
    cfg = config_io.load(LMTrainConfig, "conf/lm/small_char.yaml")
    return LSTMLM(cfg.model, CharTokenizer().vocab).eval()


def bench_training(model: LSTMLM, batch_tokens: int, steps: int) -> float:
    """Training tokens per second (forward, backward, AdamW step) at sentence length 110."""
    length = 110
    batch = max(1, batch_tokens // (length + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    inputs = torch.randint(1, model.vocab_size, (batch, length + 1))

    def one() -> None:
        logits, _ = model(inputs[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), inputs[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    one()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        one()
    seconds = time.perf_counter() - start
    model.eval()
    return batch * length * steps / seconds


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
    model = _model(args.lm)
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
        [tokens, f"{bench_training(model, tokens, args.train_steps):,.0f}"]
        for tokens in (2048, 8192)
    ]
    cfg = model.cfg
    body = (
        f"Model: {cfg.num_layers} x {cfg.hidden_size} LSTM, embedding {cfg.embedding_dim}, "
        f"tied={cfg.tie_embeddings}, {model.vocab_size} tokens, {n_params / 1e6:.2f} M parameters"
        f"{' (' + args.lm + ')' if args.lm else ' (random weights)'}; torch threads 1.\n\n"
        "Scoring (what the decoder calls once per search step):\n\n"
        + markdown_table(["path", "hypothesis-steps/s", "ms per call", "x batch 1"], rows)
        + "\n\nTraining (forward + backward + AdamW, sentences of 110 tokens):\n\n"
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
