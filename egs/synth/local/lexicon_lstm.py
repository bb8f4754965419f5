"""Lexicon constraint on the LSTM beam search (issue 15 item 5), on cached emissions.

Decodes a manifest with the model folder's beam + LSTM settings (its ``decode.yaml``), then with
:class:`asr.lm.lexicon.LexiconLM` over each unigram list at each penalty, and prints WER / CER
(``asr.text.normalize.normalize_text`` on both sides, as ``asr score --normalize``). Numbers:
egs/synth/RESULTS.md ("Word-level path with run 12").

    python egs/synth/local/lexicon_lstm.py --model asr/pretrained/default \
        --manifest /work/real/dev.jsonl --words /work/lmwork/lm/words_10k.txt \
        /work/lmwork/lm/words_30k.txt --penalties 0 -1 -2 -5 -10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from asr.api import load_model
from asr.decode.beam import beam_search
from asr.decode.kenlm_backend import read_unigrams
from asr.decode.spec import load_search_config
from asr.inference.tune import compute_emissions
from asr.lm.io import load_lm
from asr.lm.lexicon import LexiconLM
from asr.scoring.wer import score
from asr.text.normalize import normalize_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="asr/pretrained/default", help="bundled model folder")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--words", nargs="+", required=True, help="unigram lists (a word a line)")
    ap.add_argument("--penalties", nargs="+", type=float, default=[0, -1, -2, -5, -10])
    ap.add_argument("--cache", help="emission cache file (default: none)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = Path(args.model)
    loaded = load_model(model, device="cpu")
    em = compute_emissions(loaded.network, model, args.manifest, cache=args.cache)
    tokenizer = loaded.tokenizer
    lstm, _ = load_lm(model / "lm")
    cfg, _ = load_search_config(model / "decode.yaml")
    lengths = torch.tensor([len(x) for x in em.log_probs])
    log_probs = torch.nn.utils.rnn.pad_sequence(em.log_probs, batch_first=True)
    refs = {str(i): normalize_text(t) for i, t in enumerate(em.texts)}

    def run(lm, label: str) -> None:
        start, hyps = time.time(), []
        for a in range(0, len(lengths), 8):
            out = beam_search(log_probs[a : a + 8], lengths[a : a + 8], cfg, lm, tokenizer)
            hyps += [h[0].text if h else "" for h in out]
        r = score(refs, {str(i): normalize_text(h or "") for i, h in enumerate(hyps)})
        print(f"{label}: WER {100 * r.wer:.2f} CER {100 * r.cer:.2f} ({time.time() - start:.0f} s)")

    run(lstm, "LSTM")
    for path in args.words:
        words = read_unigrams(path)
        for penalty in args.penalties:
            run(LexiconLM(lstm, words, tokenizer, penalty), f"{Path(path).name} {penalty:g}")


if __name__ == "__main__":
    main()
