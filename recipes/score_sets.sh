#!/usr/bin/env bash
# Score every <decode-root>/<decoder>/<set>/hyp.jsonl against <manifest-dir>/<set>.jsonl
# (recipes/score.sh) and write the WER table of them all to <results.md> (recipes/wer_table.sh).
. "$(dirname "$0")/env.sh"

decoders="greedy beam beam_lstm"  # decoder folders, in table order
help_message="Usage: $0 [--decoders 'greedy beam_lstm'] <results.md> <manifest-dir> <decode-root> <set>..."
. "$RECIPES_DIR/parse_options.sh"

if [ $# -lt 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
results="$1" manifests="$2" root="$3"
shift 3
dirs=()
for decoder in $decoders; do
  for subset in "$@"; do
    folder="$root/$decoder/$subset"
    "$RECIPES_DIR/score.sh" "$manifests/$subset.jsonl" "$folder/hyp.jsonl" "$folder"
    dirs+=("$folder")
  done
done
"$RECIPES_DIR/wer_table.sh" "$results" "${dirs[@]}"
