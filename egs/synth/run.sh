#!/usr/bin/env bash
# Synthetic-speech recipe: ELTeC novels read by system TTS voices (LibriSpeech format).
#
#   bash egs/synth/run.sh                          # every stage
#   bash egs/synth/run.sh --stage 1 --stop-stage 1 # one stage
#   bash egs/synth/run.sh --hours-train 2 --jobs 2 --data /work/synth_corpus
#
# Stages (each skips work already done):
#   0  render the corpus into $data/LibriSpeech/{train,dev,test} (resumable)
#   1  manifests $data/manifests/{train,dev,test}.jsonl (asr prepare librispeech)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."   # the repository root

stage=0
stop_stage=100
data=data/synth                        # corpus and manifests
config=egs/synth/conf/corpus.yaml
hours_train=""                         # "" = as in $config
hours_dev=""
hours_test=""
jobs=$(nproc)
asr="${ASR:-asr}"
help_message="usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--config YAML]
       [--hours-train H] [--hours-dev H] [--hours-test H] [--jobs N]"
. recipes/parse_options.sh
command -v "$asr" >/dev/null || asr=".venv/bin/asr"

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
    echo "stage 0: synthetic corpus -> $data/LibriSpeech"
    hours=()
    for subset in train dev test; do
        var="hours_$subset"
        [[ -n "${!var}" ]] && hours+=("--hours-$subset" "${!var}")
    done
    "$asr" synth-corpus --config "$config" --out "$data" --jobs "$jobs" "${hours[@]+"${hours[@]}"}"
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
    echo "stage 1: manifests -> $data/manifests"
    "$asr" prepare librispeech --root "$data" --subsets train dev test --out "$data/manifests"
fi
