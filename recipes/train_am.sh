#!/usr/bin/env bash
# Train an acoustic model into <exp-dir> (exported to <exp-dir>/model). Skipped when that model
# is newer than the config and the tokenizer; resumes from <exp-dir>/checkpoints when present.
. "$(dirname "$0")/env.sh"

train=""      # training manifest (overrides data.train_manifest of the config)
valid=""      # validation manifest (overrides data.valid_manifest)
launcher=""   # e.g. "torchrun --nproc_per_node=4" (runs "$launcher -m asr train ...")
help_message="Usage: $0 [--train M] [--valid M] [--launcher CMD] <config.yaml> <tokenizer-dir> <exp-dir> [key=value ...]"
. "$RECIPES_DIR/parse_options.sh"

if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
config="$1" tokenizer="$2" exp="$3"
shift 3
if up_to_date "$exp/model/model.safetensors" "$config" "$tokenizer/tokenizer.yaml" $train $valid; then
  log "$exp/model exists; skipping training"
  exit 0
fi
overrides=()
[ -n "$train" ] && overrides+=("data.train_manifest=$train")
[ -n "$valid" ] && overrides+=("data.valid_manifest=$valid")
# --resume continues the run in $exp (from scratch when it has no checkpoint yet); without it a
# folder holding a run (even one killed before its first checkpoint) is refused
resume=(--resume)
mkdir -p "$exp"
log "training $exp (config $config)"
start=$(date +%s)
if [ -n "$launcher" ]; then
  # shellcheck disable=SC2086
  PYTHONPATH="$ASR_ROOT${PYTHONPATH:+:$PYTHONPATH}" $launcher -m asr train --config "$config" \
    --tokenizer "$tokenizer" --exp "$exp" ${resume[@]+"${resume[@]}"} ${overrides[@]+"${overrides[@]}"} "$@"
else
  asr train --config "$config" --tokenizer "$tokenizer" --exp "$exp" \
    ${resume[@]+"${resume[@]}"} ${overrides[@]+"${overrides[@]}"} "$@"
fi
log "trained $exp/model in $(($(date +%s) - start)) s"
