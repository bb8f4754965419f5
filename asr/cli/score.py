"""``asr score REF HYP``: WER/CER, per-utterance alignments, confusions, sclite-like summary.

REF and HYP are JSONL manifests (``text``; ``pred_text`` preferred in HYP when present; matched
by ``utt_id`` when both files have one on every line, else by ``audio_filepath``), Kaldi
``utt-id text`` files, sclite ``.trn`` files or plain aligned text (one utterance a line, matched
by line number). The format is picked by suffix and content of both files together: first words
that look like ids (each has a digit, - or _, or lower case before upper-case text) are utterance
ids, and two utterances with different ids are never paired. Where the first words could be ids
either way, a note on stderr says which pairing was used, or, when pairing by id and by line
number would differ, an error asks for --format. ``--format`` (both files) or
``--ref-format``/``--hyp-format`` override it. One utterance with an id against one line without
(``asr transcribe file.flac`` prints the text alone) is paired, with a note.

Text conventions: when REF and HYP differ in case, punctuation or digits (raw LJSpeech text
against our upper-case output), both are normalised to the LibriSpeech convention
(asr.text.normalize.normalize_text: upper case, numbers spelt out, no punctuation) and a note on
stderr says so; --exact scores them as given (with a warning), --normalize always normalises. Text
that is not Latin script is never normalised by default.

``--baseline HYP0`` (another system's hypotheses for the same REF) adds the difference of the
error rates, HYP minus HYP0, with its interval from a paired bootstrap over the utterances
(``--resamples``, ``--confidence``, ``--seed``): when the interval excludes 0 the difference is not
an accident of which utterances the test set holds.

Examples::

    asr score data/test.jsonl exp/hyp.jsonl
    asr score ref.txt hyp.txt --format plain --json > scores.json
    asr score text hyp_text --cer --alignments errors
    asr score data/dev.jsonl exp/new/hyp.jsonl --baseline exp/old/hyp.jsonl --alignments none
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.scoring.wer import ScoreReport

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
        "--match",
        choices=("auto", "utt_id", "audio_filepath"),
        default="auto",
        help="JSONL key that pairs utterances; auto: utt_id when every line of both JSONL files "
        "has one, else audio_filepath",
    )
    norm = parser.add_mutually_exclusive_group()
    norm.add_argument(
        "--normalize",
        action="store_true",
        help="always apply normalize_text (LibriSpeech convention) to both sides "
        "(default: only when their case, punctuation or digits differ)",
    )
    norm.add_argument(
        "--exact",
        action="store_true",
        help="score the text as given, even when the conventions differ",
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
    parser.add_argument(
        "--baseline",
        metavar="HYP0",
        help="another system's hypotheses of the same REF: report WER/CER(HYP) - WER/CER(HYP0) "
        "with a paired bootstrap interval",
    )
    parser.add_argument(
        "--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)"
    )
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="interval coverage (default 0.95)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(func=run)


def _id_key(args: argparse.Namespace, ref_fmt: str, hyp_fmt: str, hyp: str) -> str | None:
    """The JSONL id key: as asked, or utt_id if both JSONL files have it on every line."""
    from asr.scoring.transcripts import jsonl_all_have

    if args.match != "auto":
        return args.match
    if ref_fmt == hyp_fmt == "jsonl":
        both = jsonl_all_have(args.ref, "utt_id") and jsonl_all_have(hyp, "utt_id")
        return "utt_id" if both else "audio_filepath"
    return None


def _read_pair(args: argparse.Namespace, hyp_path: str) -> tuple[dict | list, dict | list]:
    """REF and one hypothesis file, read and paired as the options say (notes on stderr)."""
    import sys

    from asr.scoring.transcripts import detect_pair_formats, pair_single, read_transcripts
    from asr.scoring.wer import ScoreError

    pairing = detect_pair_formats(
        args.ref, hyp_path, args.ref_format or args.format, args.hyp_format or args.format
    )
    if pairing.note:
        print(f"note: {pairing.note}", file=sys.stderr)
    ref_fmt, hyp_fmt = pairing.ref_format, pairing.hyp_format
    id_key = _id_key(args, ref_fmt, hyp_fmt, hyp_path)
    refs = read_transcripts(args.ref, ref_fmt, text_key=args.ref_key or "text", id_key=id_key)
    hyps = read_transcripts(hyp_path, hyp_fmt, text_key=args.hyp_key, id_key=id_key)
    if len(refs) == 0:
        raise ScoreError(f"{args.ref}: no utterances")
    plain = hyp_path if isinstance(hyps, list) else args.ref
    refs, hyps, single = pair_single(refs, hyps)
    if single is not None:
        print(f"note: {plain} is one line without an utterance id: paired with the one "
              f"utterance '{single}' of the other file", file=sys.stderr)  # fmt: skip
    return refs, hyps


def run(args: argparse.Namespace) -> int:
    """Read the files, score them and print the report; returns 0."""
    import json
    import sys

    from asr.scoring.convention import decide_normalization, normalize_transcripts
    from asr.scoring.wer import ScoreError, format_report, score

    if args.baseline and (args.resamples < 1 or not 0 < args.confidence < 1):
        raise ScoreError(f"--resamples must be >= 1 and --confidence in (0, 1), got "
                         f"{args.resamples} and {args.confidence}")  # fmt: skip
    refs, hyps = _read_pair(args, args.hyp)
    sides = [(refs, hyps)] + ([_read_pair(args, args.baseline)] if args.baseline else [])
    mode = "always" if args.normalize else "never" if args.exact else "auto"
    decisions = [decide_normalization(r, h, mode) for r, h in sides]
    for message in dict.fromkeys(d.message for d in decisions if d.message):
        print(message, file=sys.stderr)
    normalize = any(d.apply for d in decisions)  # one decision for both systems, or their
    if normalize:  # rates would not compare
        sides = [(normalize_transcripts(r), normalize_transcripts(h)) for r, h in sides]
    unit = "char" if args.cer else "word"
    report, *base = [
        score(r, h, unit=unit, ref_name=args.ref, hyp_name=path)
        for (r, h), path in zip(sides, (args.hyp, args.baseline))
    ]
    diffs = _differences(args, base[0], report) if base else []
    if args.json:
        data = {"normalized": normalize, **report.to_dict()}
        if diffs:
            data["baseline"] = {"hyp": args.baseline, **{d.unit: d.to_dict() for d in diffs}}
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        title = f"{args.hyp} (normalised)" if normalize else args.hyp
        print(format_report(report, title=title, alignments=args.alignments, top=args.top))
        for diff in diffs:
            print(diff.describe())
    return 0


def _differences(args: argparse.Namespace, base: ScoreReport, report: ScoreReport) -> list:
    """The paired bootstrap of WER and CER, HYP minus the baseline."""
    from asr.scoring.significance import compare

    names = (args.baseline, args.hyp)
    options = {"resamples": args.resamples, "confidence": args.confidence, "seed": args.seed}
    return [compare(base, report, unit, names=names, **options) for unit in ("word", "char")]
