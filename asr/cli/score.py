"""``asr score REF HYP``: WER/CER, per-utterance alignments, confusions, sclite-like summary.

REF and HYP are JSONL manifests (``text``; ``pred_text`` preferred in HYP when present; matched
by ``utt_id``, else by ``audio_filepath``), Kaldi ``utt-id text`` files, sclite ``.trn`` files or
plain aligned text (one utterance a line, matched by line number). The format is picked by suffix
and content; ``--format`` (both files) or ``--ref-format``/``--hyp-format`` override it.

Examples::

    asr score data/test.jsonl exp/hyp.jsonl
    asr score ref.txt hyp.txt --format plain --json > scores.json
    asr score text hyp_text --cer --alignments errors
"""

from __future__ import annotations

import argparse

FORMAT_CHOICES = ("auto", "jsonl", "kaldi", "trn", "plain")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    parser = subparsers.add_parser(
        "score",
        help="word/character error rates of hypotheses against references",
        description=__doc__.split("\n\n", 1)[1].split("Examples")[0].strip(),
    )
    parser.add_argument("ref", help="reference transcripts (JSONL, Kaldi text, trn or plain)")
    parser.add_argument("hyp", help="hypotheses, same kind of ids as REF")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--cer",
        action="store_true",
        help="align and list confusions by character (for text without word spaces); "
        "WER and CER are always both reported",
    )
    parser.add_argument(
        "--format", choices=FORMAT_CHOICES, default="auto", help="format of both files"
    )
    parser.add_argument("--ref-format", choices=FORMAT_CHOICES, help="format of REF")
    parser.add_argument("--hyp-format", choices=FORMAT_CHOICES, help="format of HYP")
    parser.add_argument("--ref-key", help="JSONL key of the reference text (default: text)")
    parser.add_argument(
        "--hyp-key", help="JSONL key of the hypothesis text (default: pred_text if present, text)"
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="apply asr.text.normalize_text (LibriSpeech convention) to both sides first",
    )
    parser.add_argument(
        "--alignments",
        choices=("all", "errors", "none"),
        default="all",
        help="which per-utterance alignments to print (default: all)",
    )
    parser.add_argument(
        "--top", type=int, default=10, help="most frequent confusions to list (default 10)"
    )
    parser.set_defaults(func=run)


def _normalizer():
    """asr.text.normalize_text, or a ScoreError when that module is not available."""
    from asr.scoring import ScoreError

    try:
        from asr.text import normalize_text
    except ImportError as err:
        raise ScoreError(f"--normalize needs asr.text.normalize_text ({err})") from None
    return normalize_text


def run(args: argparse.Namespace) -> int:
    """Read both files, score them and print the report; returns 0."""
    import json

    from asr.scoring import ScoreError, format_report, score
    from asr.transcripts import read_transcripts

    ref_fmt = args.ref_format or args.format
    hyp_fmt = args.hyp_format or args.format
    refs = read_transcripts(args.ref, ref_fmt, text_key=args.ref_key or "text")
    hyps = read_transcripts(args.hyp, hyp_fmt, text_key=args.hyp_key)
    if len(refs) == 0:
        raise ScoreError(f"{args.ref}: no utterances")
    if args.normalize:
        normalize = _normalizer()
        if isinstance(refs, dict):
            refs = {k: normalize(v) for k, v in refs.items()}
        else:
            refs = [normalize(v) for v in refs]
        if isinstance(hyps, dict):
            hyps = {k: normalize(v) for k, v in hyps.items()}
        else:
            hyps = [normalize(v) for v in hyps]
    report = score(
        refs, hyps, unit="char" if args.cer else "word", ref_name=args.ref, hyp_name=args.hyp
    )
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(format_report(report, title=args.hyp, alignments=args.alignments, top=args.top))
    return 0
