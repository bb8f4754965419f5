#!/usr/bin/env bash
# Data ablation of egs/real at a fixed compute budget: the bundled model fine-tuned for the same
# number of updates (conf/train_ft.yaml, the cosine schedule spanning --steps) on each training
# mix, then decoded greedy and beam + LSTM on the dev sets and scored into $exp/ablation.md (one
# table per mix).
#
#   bash egs/real/local/ablation.sh --data /work/real/data --exp /work/real/ablation
#
# Mixes (manifests of egs/real/run.sh stage 0, which must have run):
#   ls        LibriSpeech train-clean-100 only (the shared samples + the csukuangfj subset)
#   ls_so     + speechocean762 (250 Mandarin-L1 adults and children)
#   ls_rest   + LJSpeech, VCTK p239, Common Voice (everything but speechocean762)
#   all       + LJSpeech, VCTK p239, Common Voice (= train.jsonl with LibriSpeech once)
#   ls_rest_tts  ls_rest + the synthetic speech of --tts (a manifest of `asr synth-corpus`
#             output prepared with `asr prepare librispeech`), against forgetting the TTS voices
# Every stage skips finished work; a killed run resumes from its checkpoints.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."   # the repository root

data=data/real
exp=exp/real/ablation
steps=3000                                  # updates per mix (30 s of audio each)
threads=1                                   # torch threads (1 keeps pace on a shared machine)
mixes="ls ls_so ls_rest all"
am_config=egs/real/conf/train_ft.yaml
init=asr/pretrained/default                 # the model every mix is fine-tuned from
lang=asr/pretrained/default
lm=asr/pretrained/default/lm
tts=""                                      # TTS train manifest for ls_rest_tts ("": no such mix)
synth_test=""                               # also decode this manifest, as synth_test (the
                                            # egs/synth test set: corpus.yaml, --hours-train 0)
decode_config=asr/pretrained/default/decode.yaml
am_overrides=""                             # more training overrides, e.g. "engine.seed=1"
asr="${ASR:-asr}"
help_message="usage: $0 [--data DIR] [--exp DIR] [--steps N] [--threads N] [--init MODEL]
       [--mixes 'ls ls_so ls_rest all ls_rest_tts'] [--tts MANIFEST]
       [--synth-test MANIFEST] [--am-overrides 'k=v ...']"
. recipes/parse_options.sh
command -v "$asr" >/dev/null || asr=".venv/bin/asr"

ls_sets=(ls_samples_train ls_subset_train)
rest_sets=(ljspeech-prerna vctk-p239 commonvoice-en-rigved commonvoice-en-samples
    commonvoice-kaggle-valid-test51)
eval_sets=(real_dev dev_clean)

mix_inputs() {  # the manifests of one mix
    local sets=("${ls_sets[@]}")
    case $1 in
        ls) ;;
        ls_so) sets+=(speechocean762) ;;
        ls_rest | ls_rest_tts) sets+=("${rest_sets[@]}") ;;
        all) sets+=(speechocean762 "${rest_sets[@]}") ;;
        *) echo "$0: unknown mix '$1' (ls, ls_so, ls_rest, all, ls_rest_tts)" >&2; exit 1 ;;
    esac
    local s
    for s in "${sets[@]}"; do echo "$data/$s.jsonl"; done
    if [[ $1 == ls_rest_tts ]]; then echo "$tts@tts_"; fi  # its speaker ids are numbers too
}

for mix in $mixes; do
    if [[ $mix == ls_rest_tts && ! -f $tts ]]; then
        echo "$0: mix ls_rest_tts needs --tts MANIFEST (an existing file), got '$tts'" >&2
        exit 1
    fi
done
declare -A eval_manifest=([real_dev]=$data/real_dev.jsonl [dev_clean]=$data/dev_clean.jsonl)
if [[ -n $synth_test ]]; then
    [[ -f $synth_test ]] || { echo "$0: --synth-test: no such file '$synth_test'" >&2; exit 1; }
    eval_sets+=(synth_test)
    eval_manifest[synth_test]=$synth_test
fi
mkdir -p "$exp"
: > "$exp/ablation.md.tmp"
for mix in $mixes; do
    dirs=()
    manifest=$exp/$mix/train.jsonl
    mkdir -p "$exp/$mix"
    if [[ ! -f $manifest ]]; then
        mapfile -t inputs < <(mix_inputs "$mix")
        "$asr" prepare mix "${inputs[@]}" --out "$manifest"
    fi
    # shellcheck disable=SC2086
    recipes/train_am.sh --train "$manifest" --valid "$data/real_dev.jsonl" \
        "$am_config" "$lang" "$exp/$mix/am" "data.augment.noise_manifest=$manifest" \
        "engine.max_steps=$steps" engine.epochs=100 engine.average_best=1 "engine.threads=$threads" \
        "init_from=$init" $am_overrides
    for subset in "${eval_sets[@]}"; do
        out=$exp/$mix/decode
        ref=${eval_manifest[$subset]}
        recipes/decode.sh --decoder greedy --decode-opts "--no-progress --threads 1" \
            "$exp/$mix/am/model" "$ref" "$out/greedy/$subset"
        recipes/decode.sh --decoder beam --decode-opts \
            "--lm $lm --decode-config $decode_config --no-progress --threads 1" \
            "$exp/$mix/am/model" "$ref" "$out/beam_lstm/$subset"
        for decoder in greedy beam_lstm; do
            folder=$out/$decoder/$subset
            recipes/score.sh --score-opts --normalize "$ref" "$folder/hyp.jsonl" "$folder"
            dirs+=("$folder")
        done
    done
    recipes/wer_table.sh "$exp/$mix/results.md" "${dirs[@]}"
    { echo "## $mix"; echo; cat "$exp/$mix/results.md"; echo; } >> "$exp/ablation.md.tmp"
done
mv "$exp/ablation.md.tmp" "$exp/ablation.md"
echo "wrote $exp/ablation.md (one table per mix)"
