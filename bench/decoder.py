"""CTC decoders side by side on the same emissions: real-time factor (one CPU thread) and WER.

The acoustic model runs once over the manifest (emissions cached as safetensors, see
:mod:`asr.inference.tune`); every decoder then decodes the same log-probabilities:

- greedy (``asr.decode.greedy``);
- ours (``asr.decode.beam``), no LM and fused with the LSTM LM, at beams 8/16/32/64, batched over
  utterances (``--batch`` at a time);
- pyctcdecode without LM and with a KenLM word 4-gram (estimated with ``asr.lm.ngram`` on the
  training novels of the synthetic corpus unless ``--arpa`` is given);
- torchaudio's flashlight-text ``ctc_decoder`` (lexicon-free) without LM and with the same LSTM
  wrapped as a ``CTCDecoderLM`` (one Python call and one unbatched LSTM step per new state; it is
  slow, so it runs on the first ``--ctcdecoder-lm-utts`` utterances only).

Real-time factor = decoding CPU seconds (``time.process_time``, the emissions excluded) / audio
seconds; wall-clock RTF is also shown because this machine is shared. Run from the repo root::

    .venv/bin/python -m bench.decoder --model M --manifest test.jsonl --lstm LM_DIR|random
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from asr.decode.beam import BeamSearchConfig, beam_search
from asr.decode.greedy import greedy_decode
from asr.inference.tune import Emissions, compute_emissions
from asr.scoring.wer import score

BEAMS = (8, 16, 32, 64)


@dataclasses.dataclass(frozen=True)
class Row:
    decoder: str
    lm: str
    beam: int | str
    cpu_s: float
    wall_s: float
    audio_s: float
    wer: float
    cer: float
    note: str = ""


def _batches(
    em: Emissions, index: Sequence[int], size: int
) -> list[tuple[list[int], Tensor, Tensor]]:
    order = sorted(index, key=lambda i: -len(em.log_probs[i]))
    out = []
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        rows = [em.log_probs[i] for i in idx]
        lengths = torch.tensor([len(r) for r in rows])
        out.append((idx, torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), lengths))
    return out


def measure(
    name: str,
    lm: str,
    beam: int | str,
    em: Emissions,
    index: Sequence[int],
    decode: Callable[[Tensor, Tensor], list[str]],
    batch: int,
    note: str = "",
) -> Row:
    """Decode utterances ``index`` batch by batch with ``decode`` and score them."""
    batches = _batches(em, index, batch)
    texts: dict[int, str] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for idx, lp, lengths in batches:
        for i, text in zip(idx, decode(lp, lengths)):
            texts[i] = text
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    refs = [em.texts[i] for i in index]
    report = score(refs, [texts[i] for i in index])
    audio = sum(em.durations[i] for i in index)
    row = Row(name, lm, beam, cpu, wall, audio, report.wer, report.cer, note)
    print(
        f"{name:28s} {lm:10s} {beam!s:>4}  RTF {cpu / audio:.4f} (wall {wall / audio:.4f})  "
        f"WER {100 * report.wer:.2f}  CER {100 * report.cer:.2f} {note}",
        flush=True,
    )
    return row


def ours(cfg: BeamSearchConfig, lm=None, tokenizer=None) -> Callable[[Tensor, Tensor], list[str]]:
    def decode(lp: Tensor, lengths: Tensor) -> list[str]:
        return [u[0].text if u else "" for u in beam_search(lp, lengths, cfg, lm, tokenizer)]

    return decode


def greedy(tokenizer) -> Callable[[Tensor, Tensor], list[str]]:
    def decode(lp: Tensor, lengths: Tensor) -> list[str]:
        return [h.text or "" for h in greedy_decode(lp, lengths, tokenizer)]

    return decode


def pyctc(tokenizer, arpa: str | None, beam: int, alpha: float, beta: float):
    from asr.decode.kenlm_backend import KenLMDecoder

    cfg = BeamSearchConfig(
        beam_size=beam, alpha=alpha, beta=beta, token_min_logp=-5.0, beam_threshold=10.0
    )  # fmt: skip  (pyctcdecode's defaults)
    dec = KenLMDecoder(tokenizer, arpa, cfg)

    def decode(lp: Tensor, lengths: Tensor) -> list[str]:
        return [h.text or "" for h in dec.decode(lp, lengths)]

    return decode


def build_arpa(out: Path, novels: Path, split: Path, max_novels: int, order: int = 4) -> Path:
    """Word n-gram on the training novels of the synthetic corpus (asr.lm.ngram)."""
    from asr.lm.ngram import estimate_arpa
    from asr.text.normalize import iter_novel_sentences, normalize_text

    if out.is_file():
        return out
    train = [
        line.split("\t")[0]
        for line in split.read_text().splitlines()[1:]
        if line.split("\t")[2] == "train"
    ][:max_novels]

    def sentences():
        for name in train:
            for sentence in iter_novel_sentences(novels / f"{name}.txt.gz"):
                words = normalize_text(sentence).split()
                if words:
                    yield words

    stats = estimate_arpa(sentences(), order, out, discount_fallback=True)
    print(f"{out}: {order}-gram from {len(train)} novels, {stats.tokens} words", flush=True)
    return out


def flashlight(tokenizer, beam: int, lm=None, lm_weight: float = 0.5, word_score: float = 0.0):
    """torchaudio's lexicon-free ``ctc_decoder``, optionally with ``lm`` as a CTCDecoderLM."""
    from torchaudio.models.decoder import ctc_decoder

    tokens = ["-" if i == 0 else ("|" if t == " " else t) for i, t in enumerate(tokenizer.vocab)]
    wrapped = LSTMDecoderLM(lm) if lm is not None else None
    dec = ctc_decoder(
        lexicon=None,
        tokens=tokens,
        lm=wrapped,
        beam_size=beam,
        beam_threshold=25.0,
        lm_weight=lm_weight if lm is not None else 0.0,
        word_score=word_score,
        sil_score=0.0,
        blank_token="-",
        sil_token="|",
    )

    def decode(lp: Tensor, lengths: Tensor) -> list[str]:
        if wrapped is not None:
            wrapped.states.clear()
        out = []
        for hyps in dec(lp.float().contiguous(), lengths.int()):
            ids = [int(i) for i in hyps[0].tokens if int(i) != 0]
            out.append(" ".join(tokenizer.decode(ids).split()))
        return out

    return decode


def _lstm_decoder_lm_class():
    from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState

    class _LSTMDecoderLM(CTCDecoderLM):
        """Our LanguageModel behind flashlight's per-state Python callback interface."""

        def __init__(self, lm) -> None:
            CTCDecoderLM.__init__(self)
            self.lm = lm
            self.states: dict = {}

        def start(self, start_with_nothing: bool):
            state = CTCDecoderLMState()
            self.states[state] = self.lm.initial_state(1)
            return state

        def score(self, state, usr_token_idx: int):
            child = state.child(usr_token_idx)
            parent = self.states[state]
            if child not in self.states:
                _, self.states[child] = self.lm.step(torch.tensor([usr_token_idx]), parent)
            return child, float(parent.log_probs[0, usr_token_idx])

        def finish(self, state):
            return state, float(self.lm.end_score(self.states[state])[0])

    return _LSTMDecoderLM


def LSTMDecoderLM(lm):  # noqa: N802  (a class built lazily: torchaudio is optional)
    return _lstm_decoder_lm_class()(lm)


def load_lstm(spec: str, tokenizer, int8: bool = False):
    """An exported LSTM LM folder, or ``random``: an untrained 2x512 char LSTM (speed only);
    ``int8``: loaded with int8 recurrent products (:func:`asr.lm.io.load_lm`)."""
    from asr.lm.lstm import LSTMLM, LSTMLMConfig

    if spec == "random":
        torch.manual_seed(0)
        lm = LSTMLM(LSTMLMConfig(512, 512, 2, dropout=0.0), tokenizer.vocab).eval()
        lm.int8 = int8  # as asr.lm.io.load_lm(..., int8=True) loads it
        return lm, "random 2x512"
    from asr.lm.io import load_lm

    lm, _ = load_lm(spec, int8=int8)
    lm.check_compatible(tokenizer)
    return lm, f"LSTM {lm.cfg.num_layers}x{lm.cfg.hidden_size}"


def synthetic_emissions(
    manifest: str, tokenizer, seed: int = 0, confusion: float = 0.3
) -> Emissions:
    """CTC-like emissions of real sentences: 20 ms frames, 1-3 frames per character after 0-3
    blank frames, a competing letter almost as likely on ``confusion`` of the characters (so
    acoustics alone are ambiguous and an LM can help)."""
    from asr.data.manifest import read_manifest

    g = torch.Generator().manual_seed(seed)
    letters = [i for i, t in enumerate(tokenizer.vocab) if t.isalpha()]
    rows, texts, durations = [], [], []
    for utt in read_manifest(manifest):
        frames: list[tuple[int, int | None]] = []
        for tid in tokenizer.encode(utt.text):
            frames += [(0, None)] * int(torch.randint(0, 4, (1,), generator=g))
            rival = None
            if tokenizer.vocab[tid].isalpha() and float(torch.rand(1, generator=g)) < confusion:
                rival = letters[int(torch.randint(0, len(letters), (1,), generator=g))]
            frames += [(tid, rival)] * int(torch.randint(1, 4, (1,), generator=g))
        frames += [(0, None)] * 3
        logits = torch.randn(len(frames), tokenizer.vocab_size, generator=g)
        for t, (tid, rival) in enumerate(frames):
            logits[t, tid] += 9.0
            if rival is not None and rival != tid:
                logits[t, rival] += 8.5
        rows.append(torch.log_softmax(logits, -1))
        texts.append(utt.text)
        durations.append(0.02 * len(frames))
    return Emissions(rows, texts, durations, f"synthetic:{manifest}:{seed}")


def run(args: argparse.Namespace, em: Emissions, tok, lstm_spec: str, arpa: str) -> list[Row]:
    """Every decoder on ``em``."""
    index = list(range(len(em.log_probs)))[: args.max_utts or None]
    lstm, lstm_name = load_lstm(lstm_spec, tok)
    rows = [measure("greedy", "-", "-", em, index, greedy(tok), args.batch)]
    base = BeamSearchConfig(  # the token and beam pruning of pyctcdecode's defaults
        blank_skip_threshold=args.blank_skip, token_min_logp=-5.0, beam_threshold=10.0
    )
    for beam in args.beams:
        cfg = dataclasses.replace(base, beam_size=beam, alpha=0.0, beta=0.0)
        rows.append(measure("ours", "-", beam, em, index, ours(cfg, None, tok), args.batch))
    for beam in args.beams:
        cfg = dataclasses.replace(base, beam_size=beam, alpha=args.alpha, beta=args.beta)
        rows.append(measure("ours", lstm_name, beam, em, index, ours(cfg, lstm, tok), args.batch))
    lstm8 = load_lstm(lstm_spec, tok, int8=True)[0] if args.int8_beams else None
    for beam in args.int8_beams:  # the same search with the LSTM loaded with int8 steps
        cfg = dataclasses.replace(base, beam_size=beam, alpha=args.alpha, beta=args.beta)
        name = f"{lstm_name}, int8"
        rows.append(measure("ours", name, beam, em, index, ours(cfg, lstm8, tok), args.batch))
    rows.append(measure("pyctcdecode", "-", 16, em, index, pyctc(tok, None, 16, 0, 0), 1))
    fused = pyctc(tok, str(arpa), 16, args.kenlm_alpha, args.kenlm_beta)
    rows.append(measure("pyctcdecode", "KenLM 4-gram", 16, em, index, fused, 1))
    rows.append(measure("torchaudio ctc_decoder", "-", 16, em, index, flashlight(tok, 16), 1))
    few = index[: args.ctcdecoder_lm_utts]
    if few:  # --ctcdecoder-lm-utts 0 leaves out the slow path
        slow = flashlight(tok, 16, lstm, args.alpha, args.beta)
        note = f"first {len(few)} utterances only"
        rows.append(measure("torchaudio ctc_decoder", lstm_name, 16, em, few, slow, 1, note))
    return rows


def table(rows: list[Row]) -> str:
    from bench.report import markdown_table

    header = ["decoder", "LM", "beam", "RTF (CPU)", "RTF (wall)", "WER %", "CER %", "note"]
    body = [
        [r.decoder, r.lm, r.beam, r.cpu_s / r.audio_s, r.wall_s / r.audio_s,
         f"{100 * r.wer:.2f}", f"{100 * r.cer:.2f}", r.note]
        for r in rows
    ]  # fmt: skip
    return markdown_table(header, body)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="exported acoustic model (real emissions)")
    p.add_argument("--manifest", help="test manifest for --model")
    p.add_argument("--lstm", default="random", help="LSTM LM folder for --model, or 'random'")
    p.add_argument("--arpa", help="KenLM word model for --model")
    p.add_argument("--synthetic", help="manifest whose texts become synthetic 29-char emissions")
    p.add_argument("--synthetic-lstm", default="random", help="LSTM LM for --synthetic")
    p.add_argument("--synthetic-arpa", help="KenLM model for --synthetic (default: estimate)")
    p.add_argument("--work", default="/tmp/bench_decoder", help="cache folder")
    p.add_argument("--novels", default="../shared/data/text/eltec-eng")
    p.add_argument("--split", default="egs/synth/local/novel_split.tsv")
    p.add_argument("--ngram-novels", type=int, default=8, help="training novels for the 4-gram")
    p.add_argument("--beams", type=lambda s: [int(x) for x in s.split(",")], default=list(BEAMS))
    p.add_argument(
        "--int8-beams",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[16],
        help="beams decoded again with the LSTM loaded with int8 steps (empty: none)",
    )
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--kenlm-alpha", type=float, default=0.5)
    p.add_argument("--kenlm-beta", type=float, default=1.0)
    p.add_argument("--blank-skip", type=float, default=-0.0001)
    p.add_argument("--batch", type=int, default=32, help="utterances per batch (ours, greedy)")
    p.add_argument("--max-utts", type=int, default=0)
    p.add_argument("--ctcdecoder-lm-utts", type=int, default=2)
    p.add_argument("--notes", default="", help="text added under the tables")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    parts = []
    if args.model:
        from asr.api import load_model

        model = load_model(args.model, device="cpu")
        cache = work / "emissions.safetensors"
        em = compute_emissions(model.network, model.path, args.manifest, cache)
        tok = model.tokenizer
        rows = run(args, em, tok, args.lstm, args.arpa)
        parts.append(
            f"### Real emissions: `{args.model}` on `{args.manifest}`\n\n"
            f"{len(em.texts)} utterances, {sum(em.durations):.0f} s; LSTM `{args.lstm}`, "
            f"KenLM `{args.arpa}`.\n\n{table(rows)}"
        )
    if args.synthetic:
        from asr.text.tokenizer import CharTokenizer

        tok = CharTokenizer()
        em = synthetic_emissions(args.synthetic, tok)
        arpa = args.synthetic_arpa or build_arpa(
            work / "words4.arpa", Path(args.novels), Path(args.split), args.ngram_novels
        )
        rows = run(args, em, tok, args.synthetic_lstm, str(arpa))
        parts.append(
            f"### Synthetic emissions over 29 characters (texts of `{args.synthetic}`)\n\n"
            f"{len(em.texts)} utterances, {sum(em.durations):.0f} s; LSTM "
            f"`{args.synthetic_lstm}`, KenLM `{arpa}`.\n\n{table(rows)}"
        )
    body = (
        "One CPU thread; RTF = decoding CPU seconds / audio seconds (emissions precomputed; wall "
        "clock also shown, the machine is shared). Ours and greedy decode "
        f"{args.batch} utterances per batch; the others one at a time. "
        f"LM weight alpha={args.alpha}, beta={args.beta} (ours, ctc_decoder); KenLM alpha="
        f"{args.kenlm_alpha}, beta={args.kenlm_beta}.\n\n"
        + "\n\n".join(parts)
        + f"\n\n{args.notes}"
    )
    print(body)
    if not args.no_write:
        from bench.report import write_section

        write_section("decoder", "CTC decoders (bench/decoder.py)", body)


if __name__ == "__main__":
    main()
