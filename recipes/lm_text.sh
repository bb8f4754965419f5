#!/usr/bin/env bash
# LM training text: one normalised sentence per line in <out> (.txt or .txt.gz). Text files go
# through "asr lm-text" (normalised like the transcripts); the "text" of *.jsonl manifests is
# added as it is (already normalised). Skipped when <out> is newer than every input.
. "$(dirname "$0")/env.sh"

format=lines           # lines (one sentence a line) or novel (hard-wrapped running text)
max_sentences_per_file=0  # keep only the first N sentences of each text file (0: all)
help_message="Usage: $0 [--format lines|novel] [--max-sentences-per-file N] <out.txt.gz> <text-file|manifest.jsonl>..."
. "$RECIPES_DIR/parse_options.sh"

if [ $# -lt 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
out="$1"
shift
if up_to_date "$out" "$@"; then
  log "$out exists; skipping LM text"
  exit 0
fi
texts=()
manifests=()
for f in "$@"; do
  case "$f" in
    *.jsonl) manifests+=("$f") ;;
    *) texts+=("$f") ;;
  esac
done
mkdir -p "$(dirname "$out")"
tmp="$(dirname "$out")/.tmp.$(basename "$out")"
rm -rf "$tmp" && mkdir -p "$tmp"
parts=()
if [ ${#texts[@]} -gt 0 ]; then
  opts=(--format "$format" --out "$tmp/text.txt")
  [ "$max_sentences_per_file" -gt 0 ] && opts+=(--max-sentences-per-file "$max_sentences_per_file")
  asr lm-text "${opts[@]}" "${texts[@]}"
  parts+=("$tmp/text.txt")
fi
if [ ${#manifests[@]} -gt 0 ]; then
  python3 - "$tmp/manifests.txt" "${manifests[@]}" << 'PY'
import json, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    text = json.loads(line).get("text", "").strip()
                    if text:
                        out.write(text + "\n")
PY
  parts+=("$tmp/manifests.txt")
fi
case "$out" in
  *.gz) cat "${parts[@]}" | gzip -c > "$tmp/out" ;;
  *) cat "${parts[@]}" > "$tmp/out" ;;
esac
mv "$tmp/out" "$out"
rm -rf "$tmp"
log "wrote $out ($( (case "$out" in *.gz) gzip -dc "$out" ;; *) cat "$out" ;; esac) | wc -l) sentences)"
