#!/usr/bin/env bash
# Score <hyp.jsonl> against <manifest>: <out-dir>/wer.txt (report), wer.json, and a Kaldi-style
# "%WER" line on stdout. Skipped (the line is printed again) when newer than both inputs.
. "$(dirname "$0")/env.sh"

score_opts=""  # extra "asr score" options, e.g. "--normalize"
help_message="Usage: $0 [--score-opts '...'] <ref-manifest> <hyp.jsonl> <out-dir>"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
ref="$1" hyp="$2" out="$3"
mkdir -p "$out"
if ! up_to_date "$out/wer.json" "$ref" "$hyp"; then
  # shellcheck disable=SC2086
  asr score "$ref" "$hyp" --alignments errors $score_opts > "$out/wer.txt.tmp"
  mv "$out/wer.txt.tmp" "$out/wer.txt"
  # shellcheck disable=SC2086
  asr score "$ref" "$hyp" --json $score_opts > "$out/wer.json.tmp"
  mv "$out/wer.json.tmp" "$out/wer.json"
fi
python3 - "$out/wer.json" "$hyp" << 'PY'
import json, sys
w = json.load(open(sys.argv[1]))["words"]
rate = 100.0 * w["errors"] / max(w["ref_len"], 1)
print(f"%WER {rate:.2f} [ {w['errors']} / {w['ref_len']}, {w['insertions']} ins, "
      f"{w['deletions']} del, {w['substitutions']} sub ] {sys.argv[2]}")
PY
