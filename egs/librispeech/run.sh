#!/usr/bin/env bash
# LibriSpeech 960 h (openslr 12) + its LM corpus (openslr 11): QuartzNet 15x5 (conf/train.yaml,
# the published recipe: 8 GPUs x 32 utterances, NovoGrad, 400 epochs) with a character LSTM LM
# (conf/lm/librispeech.yaml) fused into CTC prefix beam search. RESULTS.md: expected numbers.
#
# Stages (each skips work already done; --stage/--stop-stage pick a range):
#   0 download the audio subsets and the LM corpus   5 acoustic model (torchrun on $ngpu GPUs)
#   1 manifests (+ train.jsonl, dev.jsonl)           6 tune alpha/beta on dev-clean + dev-other
#   2 character tokenizer (29 symbols)               7 decode dev/test: greedy, beam, beam + LSTM
#   3 LM text (normalised, + dev text for validation) 8 score + $exp/results.md table
#   4 LSTM LM (torchrun on $ngpu GPUs)
#
#   egs/librispeech/run.sh --ngpu 8                              # the full recipe
#   egs/librispeech/run.sh --source /mnt/openslr                 # tarballs already on disk
#   egs/librispeech/run.sh --mirror https://us.openslr.org/resources/12 \
#       --lm-mirror https://us.openslr.org/resources/11
#   egs/librispeech/run.sh --train-subsets train-clean-100 --ngpu 1  # a 100 h system
# ngpu=0 trains on the CPU with plain "asr train" (tests/test_librispeech_recipe.py runs the
# whole recipe that way on a tiny synthetic corpus, with tiny configs).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../../recipes/env.sh"

stage=0
stop_stage=100
data="$here/data"      # downloads (data/download), manifests, tokenizer, LM text
exp="$here/exp"        # LM, acoustic model, tuning, decodings, scores
mirror=""              # base URL of the audio tarballs (default openslr.org/resources/12)
lm_mirror=""           # base URL of the LM files (default openslr.org/resources/11)
source=""              # or a local folder holding the tarballs and the LM files
md5_file=""            # md5sum-style file overriding the published checksums (repacked mirrors)
train_subsets="train-clean-100 train-clean-360 train-other-500"
dev_subsets="dev-clean dev-other"     # decoded and scored; all of them tune the decoder
test_subsets="test-clean test-other"  # decoded and scored
ngpu=8                 # GPUs for torchrun (1: plain "asr train" on cuda; 0: CPU)
am_config="$here/conf/train.yaml"
am_overrides=""        # extra key=value overrides, e.g. "engine.epochs=2 optim.lr=0.005"
lm_config="$ASR_ROOT/conf/lm/librispeech.yaml"
lm_overrides=""        # e.g. "engine.max_steps=100000"
decode_config="$here/conf/decode.yaml"
tune_alphas="0,0.25,0.5,0.75,1.0"
tune_betas="0,0.5,1,2"
tune_method=grid       # or coordinate (fewer decodings)
decode_device=""       # cpu, cuda or auto ("": cuda when ngpu > 0, else cpu)
batch_seconds=300      # padded audio seconds per decoding batch
threads=0              # torch CPU threads (OMP_NUM_THREADS) when > 0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp DIR] [--ngpu N]
       [--mirror URL --lm-mirror URL | --source DIR] [--md5-file F] [--train-subsets '...']
       [--am-config Y] [--am-overrides 'k=v ...'] [--lm-config Y] [--lm-overrides 'k=v ...']"
. "$RECIPES_DIR/parse_options.sh"
[ "$threads" -gt 0 ] && export OMP_NUM_THREADS="$threads"

manifests="$data/manifests"
lang="$data/lang_char"
device_overrides=()
[ "$ngpu" -eq 0 ] && device_overrides=(engine.device=cpu engine.amp=none)
launcher=""
torchrun="$(command -v torchrun || echo "$ASR_ROOT/.venv/bin/torchrun")"
[ "$ngpu" -gt 1 ] && launcher="$torchrun --standalone --nproc_per_node=$ngpu"
[ -z "$decode_device" ] && decode_device=$([ "$ngpu" -gt 0 ] && echo cuda || echo cpu)
# shellcheck disable=SC2206
am_extra=(${device_overrides[@]+"${device_overrides[@]}"} $am_overrides)
# Stage 3 writes normalised text, one sentence per line.
# shellcheck disable=SC2206
lm_extra=(data.text_format=lines data.normalize=false ${device_overrides[@]+"${device_overrides[@]}"}
  $lm_overrides)
# shellcheck disable=SC2086
eval_subsets=($dev_subsets $test_subsets)

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "stage 0: download $train_subsets ${eval_subsets[*]} + LM corpus -> $data/download"
  where=()
  [ -n "$source" ] && where=(--source "$source")
  [ -n "$mirror" ] && where=(--mirror "$mirror")
  [ -n "$lm_mirror" ] && where+=(--lm-mirror "$lm_mirror")
  [ -n "$md5_file" ] && where+=(--md5-file "$md5_file")
  # shellcheck disable=SC2086
  asr download librispeech --subsets $train_subsets "${eval_subsets[@]}" --lm \
    --dest "$data/download" --no-progress ${where[@]+"${where[@]}"}
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: manifests -> $manifests"
  # shellcheck disable=SC2086
  asr prepare librispeech --root "$data/download" --subsets $train_subsets "${eval_subsets[@]}" \
    --out "$manifests" --no-progress
  # One training and one tuning manifest (same folder: relative audio paths stay valid).
  for pair in "train:$train_subsets" "dev:$dev_subsets"; do
    name="${pair%%:*}" parts=()
    for subset in ${pair#*:}; do parts+=("$manifests/$subset.jsonl"); done
    if ! up_to_date "$manifests/$name.jsonl" "${parts[@]}"; then
      cat "${parts[@]}" > "$manifests/.$name.jsonl.tmp"
      mv "$manifests/.$name.jsonl.tmp" "$manifests/$name.jsonl"
    fi
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: tokenizer $lang (blank, space, A-Z, apostrophe)"
  "$RECIPES_DIR/tokenizer.sh" --kind char "$lang"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: LM text $data/lm/{train.txt.gz,valid.txt}"
  "$RECIPES_DIR/lm_text.sh" "$data/lm/train.txt.gz" "$data/download/lm/librispeech-lm-norm.txt.gz"
  dev_manifests=()
  for subset in $dev_subsets; do dev_manifests+=("$manifests/$subset.jsonl"); done
  "$RECIPES_DIR/lm_text.sh" "$data/lm/valid.txt" "${dev_manifests[@]}"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: LSTM LM $exp/lm ($lm_config)"
  "$RECIPES_DIR/train_lm.sh" --valid-text "$data/lm/valid.txt" --launcher "$launcher" \
    "$lm_config" "$lang" "$data/lm/train.txt.gz" "$exp/lm" ${lm_extra[@]+"${lm_extra[@]}"}
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: acoustic model $exp/am ($am_config, ngpu=$ngpu)"
  first_dev="${dev_subsets%% *}"
  "$RECIPES_DIR/train_am.sh" --train "$manifests/train.jsonl" \
    --valid "$manifests/$first_dev.jsonl" --launcher "$launcher" \
    "$am_config" "$lang" "$exp/am" ${am_extra[@]+"${am_extra[@]}"}
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: tune alpha/beta on $manifests/dev.jsonl ($dev_subsets)"
  "$RECIPES_DIR/tune_decoder.sh" --decode-config "$decode_config" --alphas "$tune_alphas" \
    --betas "$tune_betas" --method "$tune_method" --device "$decode_device" \
    --batch-seconds "$batch_seconds" "$exp/am/model" "$exp/lm/lm" "$manifests/dev.jsonl" \
    "$exp/tune"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  for subset in "${eval_subsets[@]}"; do
    log "stage 7: decode $subset (greedy, beam, beam + LSTM)"
    common=(--batch-seconds "$batch_seconds" --device "$decode_device")
    "$RECIPES_DIR/decode.sh" "${common[@]}" --decoder greedy --decode-opts "--no-progress" \
      "$exp/am/model" "$manifests/$subset.jsonl" "$exp/decode/greedy/$subset"
    "$RECIPES_DIR/decode.sh" "${common[@]}" --decoder beam \
      --decode-opts "--decode-config $decode_config --no-progress" \
      "$exp/am/model" "$manifests/$subset.jsonl" "$exp/decode/beam/$subset"
    out="$exp/decode/beam_lstm/$subset"  # decode.sh checks the model and manifest only
    up_to_date "$out/hyp.jsonl" "$exp/tune/decode.yaml" "$exp/lm/lm/model.safetensors" ||
      rm -f "$out/hyp.jsonl"
    "$RECIPES_DIR/decode.sh" "${common[@]}" --decoder beam \
      --decode-opts "--lm $exp/lm/lm --decode-config $exp/tune/decode.yaml --no-progress" \
      "$exp/am/model" "$manifests/$subset.jsonl" "$out"
  done
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  log "stage 8: score -> $exp/results.md"
  dirs=()
  for decoder in greedy beam beam_lstm; do
    for subset in "${eval_subsets[@]}"; do
      "$RECIPES_DIR/score.sh" "$manifests/$subset.jsonl" "$exp/decode/$decoder/$subset/hyp.jsonl" \
        "$exp/decode/$decoder/$subset"
      dirs+=("$exp/decode/$decoder/$subset")
    done
  done
  "$RECIPES_DIR/wer_table.sh" "$exp/results.md" "${dirs[@]}"
fi
