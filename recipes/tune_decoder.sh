#!/usr/bin/env bash
# Tune the LM weight (alpha) and length bonus (beta) of beam search + LM on a dev manifest:
# <out-dir>/{tune.md,tune.json,decode.yaml}. Skipped when decode.yaml is newer than the model,
# the LM, the manifest and the base config.
. "$(dirname "$0")/env.sh"

decode_config=""           # base beam search YAML (default: built-in defaults)
alphas="0,0.25,0.5,0.75,1.0,1.5"  # LM weights tried
betas="0,0.5,1,2"          # length bonuses tried
method=grid                # grid or coordinate
beam_size=0                # override the config's beam size (0: keep)
device=auto                # auto (cuda when available), cpu or cuda
batch_seconds=300          # padded audio seconds per acoustic model batch
help_message="Usage: $0 [--decode-config Y] [--alphas A,B] [--betas A,B] [--method grid|coordinate] [--beam-size N] [--device auto] <model-dir> <lm> <dev-manifest> <out-dir>"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
model="$1" lm="$2" manifest="$3" out="$4"
lm_file="$lm"
[ -d "$lm" ] && lm_file="$lm/model.safetensors"
if up_to_date "$out/decode.yaml" "$model/model.safetensors" "$lm_file" "$manifest" $decode_config; then
  log "$out/decode.yaml exists; skipping tuning"
  exit 0
fi
# --overwrite: an older tuning in $out (this recipe's, from an older model, LM or manifest)
args=(--model "$model" --lm "$lm" --manifest "$manifest" --out "$out" --overwrite
  --alphas "$alphas" --betas "$betas" --method "$method" --device "$device"
  --batch-seconds "$batch_seconds")
[ -n "$decode_config" ] && args+=(--decode-config "$decode_config")
[ "$beam_size" -gt 0 ] && args+=(--beam-size "$beam_size")
mkdir -p "$out"
asr tune-decoder "${args[@]}"
