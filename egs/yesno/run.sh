#!/usr/bin/env bash
# yesno (openslr 1): 60 files of one speaker saying 8 Hebrew yes/no words; 30 train, 30 test.
# Stages: 0 prepare manifests, 1 tokenizer, 2 train, 3 decode test, 4 score. Every stage skips
# work already done; --stage/--stop-stage pick a range. CPU only, about 40 CPU-seconds of training.
#
#   egs/yesno/run.sh                                    # everything, in egs/yesno/{data,exp}
#   egs/yesno/run.sh --stage 3 --exp /tmp/yesno/exp     # decode + score an existing model
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../../recipes/env.sh"

stage=0
stop_stage=100
data="$here/data"   # manifests, extracted audio, tokenizer
exp="$here/exp"     # model, decoding, scores
tarball="$ASR_ROOT/../shared/data/yesno/waves_yesno.tar.gz"  # local copy of waves_yesno.tar.gz
mirror=""           # or download it from this base URL (default: openslr.org/resources/1)
split=icefall       # icefall (alternate files; its 0.42% WER) or kaldi (first/last 30 sorted)
config="$here/conf/train.yaml"
threads=1           # torch CPU threads for training and decoding
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp DIR] [--tarball F | --mirror URL] [--split icefall|kaldi]"
. "$RECIPES_DIR/parse_options.sh"
export OMP_NUM_THREADS="$threads"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "stage 0: prepare $data/{train,test}.jsonl ($split split)"
  if [ -n "$mirror" ] || [ ! -f "$tarball" ]; then
    asr download yesno --dest "$data" ${mirror:+--mirror "$mirror"} --no-progress
    asr prepare yesno --root "$data" --out "$data" --split "$split"
  else
    asr prepare yesno --tarball "$tarball" --out "$data" --split "$split"
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  # Characters of the training text (blank, space, E N O S Y). Whole-word pieces (bpe, 14
  # symbols) learn as fast but greedy decoding then merges repeated words ("YES YES") whenever
  # the model puts no blank between them; with characters, spaces separate every word.
  log "stage 1: tokenizer $data/lang_char"
  "$RECIPES_DIR/tokenizer.sh" --kind char --from-text true "$data/lang_char" "$data/train.jsonl"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: train $exp"
  "$RECIPES_DIR/train_am.sh" --train "$data/train.jsonl" "$config" "$data/lang_char" "$exp"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: decode $data/test.jsonl"
  "$RECIPES_DIR/decode.sh" "$exp/model" "$data/test.jsonl" "$exp/decode_test"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: score"
  "$RECIPES_DIR/score.sh" "$data/test.jsonl" "$exp/decode_test/hyp.jsonl" "$exp/decode_test"
fi
