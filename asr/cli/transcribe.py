"""``asr transcribe``: transcribe audio files, folders or manifests, of any length.

Long recordings are cut at pauses (voice-activity detection) into chunks of at most
--max-chunk-s seconds, decoded in batches and joined with global word timings. Any format
libsndfile reads, any sample rate and channel count. Without --model the bundled default model
is used. A model folder holding decode.yaml (and lm/, an LSTM LM), as the bundled one does, is
decoded with those settings unless decoder options are given (--decoder greedy: no LM).
Without --out the result goes to standard output.

Examples::

    asr transcribe talk.flac                                   # plain text on stdout
    asr transcribe talk.flac --format srt --out talk.srt       # subtitles
    asr transcribe recordings/ --format json --out out/        # one JSON per file, word timings
    asr transcribe talk.flac --format all --out out/           # txt, tsv, json, srt and vtt
    asr transcribe data/test.jsonl --format manifest --out hyp.jsonl --model exp/model \\
        --decoder beam --lm exp/lm --decode-config conf/decode/beam.yaml
    asr score data/test.jsonl hyp.jsonl

A file that cannot be read is reported (with its path) and the others go on; the exit status
is 1 when any input failed. Existing output files (in a folder: any file this run would write)
are replaced only with --overwrite, checked before the model loads; an input never. An output
file that cannot be written (a full disk) stops the run with one line naming it: the files
written before are kept and its text goes to standard output instead.

Names: each input is named by its manifest utt_id or its file name without suffix (in a
folder: <name>.<ext>; in a manifest or '<id> <text>' lines: its id). Inputs sharing a file name
are told apart by their folders, whatever their order: a/x.flac and b/x.flac are a/x and b/x
(files a_x.json and b_x.json), a/x-2.flac stays x-2. Two inputs that cannot be told apart
(the same file twice, a manifest id given twice) are refused before the model loads.
"""

from __future__ import annotations

import argparse
import sys
import time

from asr.cli._options import add_decoding_arguments, add_model_arguments

# asr.inference.writers.FORMATS and "all" (spelled out: that module imports torch).
FORMAT_CHOICES = ("txt", "tsv", "json", "srt", "vtt", "manifest", "all")
# A single input longer than this gets a progress bar, seconds.
_LONG_INPUT_S = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``transcribe`` subcommand."""
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files (any length) to text, JSON, subtitles or a manifest",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file, folder or manifest")
    add_model_arguments(p)
    add_decoding_arguments(p, decoders=("greedy", "beam", "kenlm"))
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=240.0,
        help="padded audio seconds per batch (default 240: 8 chunks of 30 s)",
    )
    p.add_argument(
        "--max-chunk-s", type=float, default=30.0, help="longest chunk, seconds (default 30)"
    )
    p.add_argument(
        "--vad",
        choices=("auto", "energy", "webrtc"),
        default="auto",
        help="pause detector (default auto: webrtc when installed, else energy)",
    )
    p.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default="txt",
        help="output format (default txt). txt: one input gives its text, a line per segment "
        "(cut at pauses); several inputs in one stream give one '<id> <text>' line each (Kaldi "
        "style, what asr score reads; the id is the manifest's utt_id or the file name). tsv: "
        "start<TAB>end<TAB>text in milliseconds. srt, vtt, tsv: one input per file (several "
        "need a folder). all: txt, tsv, json, srt and vtt for each input, into the --out folder",
    )
    p.add_argument("--out", help="output file, or folder (existing, or ending in /)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output file(s) (a folder's other files are never touched)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):
    from asr.inference.transcribe import TranscribeConfig, TranscribeError
    from asr.inference.vad import VadConfig

    try:
        return TranscribeConfig(args.max_chunk_s, args.batch_seconds, VadConfig(backend=args.vad))
    except ValueError as err:
        raise TranscribeError(f"bad option: {err}") from None


def audio_length(seconds: float) -> str:
    """A length of audio for the summary: ``5.6 s`` below a minute, else ``4.1 min``."""
    return f"{seconds:.1f} s" if seconds < 59.95 else f"{seconds / 60:.1f} min"


def _want_progress(args: argparse.Namespace, items) -> bool:
    from asr.errors import AsrError
    from asr.inference.transcribe import item_duration

    if args.no_progress or not sys.stderr.isatty():
        return False
    if len(items) > 1:
        return True
    try:
        return bool(items) and item_duration(items[0]) > _LONG_INPUT_S
    except AsrError:
        return False


def run(args: argparse.Namespace) -> int:
    """Transcribe; 0 when every input succeeded, 1 when some failed."""
    from asr.cli._options import decoding_options, load_for_decoding
    from asr.data.inputs import collect_inputs, distinct_names
    from asr.inference.malloc import bound_malloc_heap
    from asr.inference.transcribe import TranscribeError, transcribe_items
    from asr.inference.writers import OutputWriter
    from asr.io.outputs import check_output_files

    bound_malloc_heap()
    cfg = _config(args)
    items, failures = collect_inputs(args.inputs)
    if not items and not failures:  # an empty manifest: nothing to do is not a success
        raise TranscribeError(f"{', '.join(args.inputs)}: no audio to transcribe")
    names = distinct_names(items)  # a/x, b/x; an id given twice is refused
    writer = OutputWriter(args.format, args.out, names, overwrite=args.overwrite)  # checks first
    sources = [i.path for i in items] + args.inputs  # never an output, even with --overwrite
    check_output_files(writer.files(), args.overwrite, inputs=sources)
    # a named model: downloaded once; the decoding options are checked before the model loads
    model, _, decoder = load_for_decoding(args, decoding_options(args), not args.no_progress)
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    start, seconds, failed = time.perf_counter(), 0.0, 0
    progress = _want_progress(args, items)
    network, tokenizer = model.network, model.tokenizer
    for t in transcribe_items(network, tokenizer, decoder, items, cfg, progress):
        if t.error is not None:
            failed += 1
            message = t.error if t.item.path in t.error else f"{t.item.path}: {t.error}"
            print(f"error: {message}", file=sys.stderr)
        else:
            seconds += t.duration_s  # audio transcribed (the RTF's denominator)
        writer.add(t)
    written = writer.close()
    wall = time.perf_counter() - start
    where = f" -> {written[0] if len(written) == 1 else f'{len(written)} files'}" if written else ""
    if args.out and not written and writer.file is not None:
        where = f" ({args.out} not written: nothing transcribed)"
    rtf = f" (RTF {wall / seconds:.3f})" if seconds > 0 else ""  # nothing read: no rate
    print(
        f"transcribed {len(items) - failed}/{len(items)} input(s), "
        f"{audio_length(seconds)} of audio in {wall:.1f} s{rtf}{where}",
        file=sys.stderr,
    )
    failed += len(failures)
    if failed:
        print(f"error: {failed} input(s) failed", file=sys.stderr)
    return 1 if failed else 0
