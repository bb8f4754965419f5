#!/usr/bin/env bash
# Ablation of the real-speech fine-tune (issue 15): which part of run 10's recipe moves the real
# dev set? Every row starts from run 9 (the synthetic-only model, commit 6db4ec6) and makes the same
# number of updates with egs/synth/conf/train_real.yaml; only the training data or the waveform
# augmentation changes:
#
#   neural     the neural-voice corpus alone (hibari + piper, 217 speakers, 11.5 h), augmented
#   real       the real train split x6 alone (196 LibriSpeech speakers, 0.68 h), augmented
#   mix_noaug  neural + real x6, no speed/reverb/babble (SpecAugment stays)
#   mix        neural + real x6, augmented (run 10's recipe)
#
# Each row is then decoded greedily on the real dev set and the synthetic test set and scored.
# Numbers: egs/synth/RESULTS.md ("Ablation"). Run from the repository root; finished rows are
# skipped (their score files exist).
#
#   egs/synth/local/ablate.sh [--data /work/neural] [--out /work/ablate] [--steps 2400]
#                             [--synth-test /work/synth10/manifests/test.jsonl] [--rows "neural real ..."]
set -euo pipefail

data=/work/neural
out=/work/ablate
steps=2400
synth_test=/work/synth10/manifests/test.jsonl
rows="neural real mix_noaug mix"
while [[ $# -gt 0 ]]; do
    case $1 in
        --data) data=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --synth-test) synth_test=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
done
asr=".venv/bin/asr"
m=$data/manifests
mkdir -p "$out"

# run 9, the starting point of every row, from git history
run9=$out/run9
if [[ ! -f $run9/model.safetensors ]]; then
    mkdir -p "$run9.tmp"
    for f in config.yaml model.safetensors tokenizer.yaml; do
        git show "6db4ec6:asr/pretrained/default/$f" > "$run9.tmp/$f"
    done
    mv "$run9.tmp" "$run9"
fi
[[ -f $m/real_train_x6.jsonl ]] || $asr prepare mix "$m/real_train.jsonl:6" --out "$m/real_train_x6.jsonl"

noaug="data.augment.speed_factors=[1.0] data.augment.reverb_prob=0.0 data.augment.noise_prob=0.0"
for row in $rows; do
    case $row in
        neural) train=$m/train.jsonl; extra="" ;;
        real) train=$m/real_train_x6.jsonl; extra="" ;;
        mix_noaug) train=$m/train_mix.jsonl; extra=$noaug ;;
        mix) train=$m/train_mix.jsonl; extra="" ;;
        *) echo "$0: unknown row $row" >&2; exit 1 ;;
    esac
    exp=$out/$row
    if [[ ! -f $exp/model/model.safetensors ]]; then
        # shellcheck disable=SC2086
        $asr train --config egs/synth/conf/train_real.yaml --tokenizer "$run9" --exp "$exp" --resume \
            init_from="$run9" data.train_manifest="$train" data.valid_manifest="$m/real_dev.jsonl" \
            data.augment.noise_manifest="$m/train.jsonl" engine.epochs=100 \
            engine.max_steps="$steps" engine.checkpoint_every_steps=$((steps / 4)) $extra \
            > "$exp.log" 2>&1
    fi
    for set in real_dev:$m/real_dev.jsonl synth_test:$synth_test; do
        name=${set%%:*}; manifest=${set#*:}
        [[ -f $exp/$name.score ]] && continue
        rm -f "$exp/$name.jsonl"  # a decode killed before its score (this script wrote it)
        $asr decode --model "$exp/model" --manifest "$manifest" --out "$exp/$name.jsonl" \
            --threads 1 --no-progress --decoder greedy --device cpu
        $asr score --normalize --alignments none "$manifest" "$exp/$name.jsonl" \
            | grep '^%[WC]ER' > "$exp/$name.score.tmp"
        mv "$exp/$name.score.tmp" "$exp/$name.score"
    done
    echo "$row: real dev $(paste -sd' ' "$exp/real_dev.score"); synthetic test $(paste -sd' ' "$exp/synth_test.score")"
done
