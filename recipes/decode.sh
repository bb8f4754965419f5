#!/usr/bin/env bash
# Decode a manifest into <out-dir>/hyp.jsonl; skipped when newer than the model and the manifest.
. "$(dirname "$0")/env.sh"

decoder=greedy     # registered decoder name (asr decode --decoder)
batch_seconds=300  # padded audio seconds per batch
device=auto        # auto (cuda when available), cpu or cuda
decode_opts=""     # extra "asr decode" options, e.g. "--lm exp/lm --beam-size 32"
help_message="Usage: $0 [--decoder greedy] [--batch-seconds S] [--device auto] [--decode-opts '...'] <model-dir> <manifest> <out-dir>"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
model="$1" manifest="$2" out="$3"
if up_to_date "$out/hyp.jsonl" "$model/model.safetensors" "$manifest"; then
  log "$out/hyp.jsonl exists; skipping decoding"
  exit 0
fi
mkdir -p "$out"
# an older hyp.jsonl (this recipe's, from an older model or manifest) is replaced
# shellcheck disable=SC2086
asr decode --model "$model" --manifest "$manifest" --out "$out/hyp.jsonl" --overwrite \
  --decoder "$decoder" --batch-seconds "$batch_seconds" --device "$device" $decode_opts
