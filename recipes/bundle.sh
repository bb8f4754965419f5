#!/usr/bin/env bash
# Bundle an acoustic model, an LSTM LM and a tuned decode.yaml into <out-dir> in the layout of
# asr/pretrained/default (float16 model + lm/ + decode.yaml): what `asr transcribe` uses without
# --model once copied there. <out-dir> is rebuilt (it is this script's own output).
. "$(dirname "$0")/env.sh"

help_message="Usage: $0 <model-dir> <lm-dir> <decode.yaml> <out-dir>"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
model="$1" lm="$2" decode="$3" out="$4"
rm -rf "$out"
asr export "$model" "$out" --dtype float16
asr export "$lm" "$out/lm" --dtype float16
cp "$decode" "$out/decode.yaml"
du -sh "$out"
