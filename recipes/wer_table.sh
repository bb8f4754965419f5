#!/usr/bin/env bash
# Markdown table of the WERs scored by score.sh: one row per <decode-dir> (its wer.json), named
# after the folder and its parent (".../<decoder>/<set>"). Printed and written to <out.md>.
. "$(dirname "$0")/env.sh"

help_message="Usage: $0 <out.md> <decode-dir>..."
. "$RECIPES_DIR/parse_options.sh"

if [ $# -lt 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
out="$1"
shift
mkdir -p "$(dirname "$out")"
python3 - "$out" "$@" << 'PY'
import json, os, sys

rows = ["| set | decoder | WER % | CER % | words | ins | del | sub |", "|---|---|---|---|---|---|---|---|"]
for folder in sys.argv[2:]:
    path = os.path.join(folder, "wer.json")
    if not os.path.isfile(path):
        continue
    report = json.load(open(path))
    w, c = report["words"], report.get("chars", {})
    parent, subset = os.path.split(os.path.normpath(folder))
    decoder = os.path.basename(parent)
    wer = 100.0 * w["errors"] / max(w["ref_len"], 1)
    cer = 100.0 * c["errors"] / max(c["ref_len"], 1) if c else float("nan")
    rows.append(f"| {subset} | {decoder} | {wer:.2f} | {cer:.2f} | {w['ref_len']} | "
                f"{w['insertions']} | {w['deletions']} | {w['substitutions']} |")
text = "\n".join(rows) + "\n"
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as fh:
    fh.write(text)
os.replace(tmp, sys.argv[1])
print(text, end="")
PY
