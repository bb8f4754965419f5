#!/usr/bin/env bash
# Train a token-level LSTM LM into <exp-dir> (exported to <exp-dir>/lm). Skipped when that LM is
# newer than the config, the tokenizer and the text; resumes from <exp-dir>/checkpoints.
. "$(dirname "$0")/env.sh"

valid_text=""  # validation text file (default: a hashed share of the training sentences)
launcher=""    # e.g. "torchrun --nproc_per_node=4" (runs "$launcher -m asr train-lm ...")
help_message="Usage: $0 [--valid-text F] [--launcher CMD] <config.yaml> <tokenizer-dir|char> <text> <exp-dir> [key=value ...]"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -lt 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
config="$1" tokenizer="$2" text="$3" exp="$4"
shift 4
if up_to_date "$exp/lm/model.safetensors" "$config" "$tokenizer/tokenizer.yaml" "$text" $valid_text; then
  log "$exp/lm exists; skipping LM training"
  exit 0
fi
args=(--config "$config" --tokenizer "$tokenizer")
[ -n "$valid_text" ] && args+=(--valid-text "$valid_text")
args+=(--text "$text" --exp "$exp")  # an option after the nargs="+" ones: key=value stay apart
args+=(--resume)  # continues the run in $exp; from scratch when it has no checkpoint yet
mkdir -p "$exp"
log "training LM $exp (config $config, text $text)"
start=$(date +%s)
if [ -n "$launcher" ]; then
  # shellcheck disable=SC2086
  PYTHONPATH="$ASR_ROOT${PYTHONPATH:+:$PYTHONPATH}" $launcher -m asr train-lm "${args[@]}" "$@"
else
  asr train-lm "${args[@]}" "$@"
fi
log "trained $exp/lm in $(($(date +%s) - start)) s"
