#!/usr/bin/env bash
# Real-speech recipe: an acoustic model trained from scratch on ~11 h of openly licensed real
# English (LibriSpeech subsets, speechocean762, LJSpeech, VCTK, Common Voice; sources and licences
# in egs/real/README.md), decoded with the bundled character LSTM LM.
#
#   bash egs/real/run.sh --real /work/real-speech                 # every stage
#   bash egs/real/run.sh --real /work/real-speech --stage 1 --stop-stage 1
#
# --real is a folder holding one sub-folder per set, each with transcripts.tsv
# (id TAB text TAB speaker [TAB split]) and audio/<id>.<ext> (egs/real/README.md says how to
# bring them in); --samples is ../shared/data/librispeech-samples (251 train-clean-100 files).
# Speakers go to dev or train by the committed list egs/real/local/split.tsv, so dev (which
# holds every LibriSpeech dev-clean speaker) never shares a speaker with training.
#
# Stages (each skips work already done):
#   0  manifests $data/*.jsonl; audio that is not 16 kHz mono FLAC/WAV is converted once into
#      $data/audio; train.jsonl = LibriSpeech x --ls-repeat + the other train sets
#   1  acoustic model $am_config -> $exp/am (resumes; checkpoints every 200 updates)
#   2  tune alpha/beta of beam + LSTM (the bundled LM) on real_dev -> $exp/tune/decode.yaml
#   3  decode the dev sets (and the LJSpeech sample): greedy and beam + LSTM
#   4  score -> $exp/results.md
#   5  bundle -> $exp/default (float16 model + the bundled LM + the tuned decode.yaml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."   # the repository root

stage=0
stop_stage=100
real=""                                     # the real-speech sets (required for stage 0)
samples=../shared/data/librispeech-samples  # 251 train-clean-100 utterances
ljspeech=../shared/data/ljspeech-sample     # evaluation only ("": none)
data=data/real
exp=exp/real
split=egs/real/local/split.tsv
ls_repeat=2                                 # times the LibriSpeech train utterances repeat
am_config=egs/real/conf/train.yaml
am_overrides=""                             # e.g. "engine.epochs=2 data.max_batch_seconds=60"
lang=asr/pretrained/default                 # the bundled 29-symbol tokenizer (the LM's too)
lm=asr/pretrained/default/lm                # the bundled character LSTM LM (novels only)
decode_config=conf/decode/beam.yaml
tune_alphas="0.5,0.75,1.0,1.25"
tune_betas="0,0.5,1,2"
tune_method=coordinate
asr="${ASR:-asr}"
help_message="usage: $0 --real DIR [--samples DIR] [--ljspeech DIR] [--stage N] [--stop-stage N]
       [--data DIR] [--exp DIR] [--split TSV] [--ls-repeat N] [--am-config Y]
       [--am-overrides 'k=v ...'] [--lang DIR] [--lm DIR]"
. recipes/parse_options.sh
command -v "$asr" >/dev/null || asr=".venv/bin/asr"
train_sets=(speechocean762 ljspeech-prerna vctk-p239 commonvoice-en-rigved commonvoice-en-samples
    commonvoice-kaggle-valid-test51)
dev_sets=(librispeech-devclean2-spkanon librispeech-devclean-mozai)

# prep NAME ROOT TSV SUBSET [prepare options]: one manifest $data/NAME.jsonl of SUBSET's speakers
prep() {
    local name=$1 root=$2 tsv=$3 subset=$4
    shift 4
    "$asr" prepare transcribed --root "$root" --transcripts "$tsv" --split "$split" \
        --subset "$subset" --audio-out "$data/audio" --out "$data/$name.jsonl" "$@"
}

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
    echo "stage 0: manifests -> $data"
    if [[ -z $real || ! -d $real ]]; then
        echo "$0: --real DIR (the real-speech sets) is required for stage 0" >&2
        exit 1
    fi
    ls_csu=$real/librispeech-csukuangfj-subset
    prep ls_samples_train "$samples/librispeech_train-clean-100" \
        "$samples/train-clean-100.transcripts.tsv" train
    prep ls_samples_dev "$samples/librispeech_train-clean-100" \
        "$samples/train-clean-100.transcripts.tsv" dev
    # the samples repeat one utterance of some csukuangfj speakers: those train once
    prep ls_subset_train "$ls_csu/audio" "$ls_csu/transcripts.tsv" train \
        --exclude "$data/ls_samples_train.jsonl"
    prep dev_clean "$ls_csu/audio" "$ls_csu/transcripts.tsv" dev
    for set in "${dev_sets[@]}"; do
        prep "$set" "$real/$set/audio" "$real/$set/transcripts.tsv" dev
    done
    for set in "${train_sets[@]}"; do
        # LJ001-0001..0032 are the LJSpeech sample scored below: never trained on
        prep "$set" "$real/$set/audio" "$real/$set/transcripts.tsv" train \
            --exclude egs/real/local/eval_ids.txt
    done
    inputs=("$data/ls_samples_dev.jsonl" "$data/dev_clean.jsonl")
    for set in "${dev_sets[@]}"; do inputs+=("$data/$set.jsonl"); done
    "$asr" prepare mix "${inputs[@]}" --out "$data/real_dev.jsonl"
    inputs=("$data/ls_samples_train.jsonl:$ls_repeat" "$data/ls_subset_train.jsonl:$ls_repeat")
    for set in "${train_sets[@]}"; do inputs+=("$data/$set.jsonl"); done
    "$asr" prepare mix "${inputs[@]}" --out "$data/train.jsonl"
    if [[ -n $ljspeech && -f $ljspeech/metadata.csv ]]; then
        "$asr" prepare ljspeech --root "$ljspeech" --out "$data/ljspeech.jsonl"
    fi
fi

eval_sets=(real_dev dev_clean ls_samples_dev)
[[ -f $data/ljspeech.jsonl ]] && eval_sets+=(ljspeech)

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
    echo "stage 1: acoustic model -> $exp/am ($am_config)"
    # shellcheck disable=SC2086
    recipes/train_am.sh --train "$data/train.jsonl" --valid "$data/real_dev.jsonl" \
        "$am_config" "$lang" "$exp/am" \
        "data.augment.noise_manifest=$data/train.jsonl" $am_overrides
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
    echo "stage 2: tune alpha/beta on real_dev -> $exp/tune"
    recipes/tune_decoder.sh --decode-config "$decode_config" --alphas "$tune_alphas" \
        --betas "$tune_betas" --method "$tune_method" "$exp/am/model" "$lm" \
        "$data/real_dev.jsonl" "$exp/tune"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
    for subset in "${eval_sets[@]}"; do
        echo "stage 3: decode $subset (greedy, beam + LSTM)"
        recipes/decode.sh --decoder greedy --decode-opts "--no-progress" \
            "$exp/am/model" "$data/$subset.jsonl" "$exp/decode/greedy/$subset"
        out="$exp/decode/beam_lstm/$subset"
        if [[ $exp/tune/decode.yaml -nt $out/hyp.jsonl ]]; then rm -f "$out/hyp.jsonl"; fi
        recipes/decode.sh --decoder beam \
            --decode-opts "--lm $lm --decode-config $exp/tune/decode.yaml --no-progress" \
            "$exp/am/model" "$data/$subset.jsonl" "$out"
    done
fi

if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
    echo "stage 4: score -> $exp/results.md"
    recipes/score_sets.sh --decoders "greedy beam_lstm" "$exp/results.md" "$data" "$exp/decode" \
        "${eval_sets[@]}"
fi

if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
    echo "stage 5: bundle -> $exp/default (copy it to asr/pretrained/default to ship it)"
    recipes/bundle.sh "$exp/am/model" "$lm" "$exp/tune/decode.yaml" "$exp/default"
fi
