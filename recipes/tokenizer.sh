#!/usr/bin/env bash
# Build a tokenizer from manifests (*.jsonl) and/or text files; kept when it already exists.
. "$(dirname "$0")/env.sh"

kind=char        # char, bpe or unigram
vocab_size=0     # bpe/unigram: symbols including <blank> and <unk>
from_text=false  # char: take the character set of the text instead of the 29 defaults
help_message="Usage: $0 [--kind char|bpe|unigram] [--vocab-size N] [--from-text true] <out-dir> [<manifest.jsonl|text-file>...]"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -lt 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
out="$1"
shift
args=(--kind "$kind" --out "$out")
manifests=()
texts=()
for f in "$@"; do
  case "$f" in
    *.jsonl) manifests+=("$f") ;;
    *) texts+=("$f") ;;
  esac
done
[ ${#manifests[@]} -gt 0 ] && args+=(--manifest "${manifests[@]}")
[ ${#texts[@]} -gt 0 ] && args+=(--text "${texts[@]}")
[ "$vocab_size" -gt 0 ] && args+=(--vocab-size "$vocab_size")
[ "$from_text" = true ] && args+=(--from-text)
asr tokenizer "${args[@]}"
