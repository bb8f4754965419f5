#!/usr/bin/env bash
# Decode one model on the real-speech recipe's evaluation sets, greedy and beam + LSTM, and score
# it, optionally against an earlier evaluation of another model (paired bootstrap, asr score
# --baseline): what a candidate default must show before it ships.
#
#   bash egs/real/local/evaluate.sh --data /work/real/data --out /work/real/eval/new MODEL
#   bash egs/real/local/evaluate.sh --data /work/real/data --out /work/real/eval/new \
#       --baseline /work/real/eval/shipped --synth-test /work/synthtest/manifests/test.jsonl MODEL
#
# MODEL: an exported acoustic model folder, or a bundle (asr/pretrained/default's layout) whose
# lm/ and decode.yaml are then used unless --lm/--decode-config say otherwise. Sets: real_dev,
# its dev_clean and ls_samples_dev parts, ljspeech (when egs/real/run.sh stage 0 wrote it) and
# --synth-test. Writes
# $out/<set>_<greedy|beam>.jsonl (kept: a rerun with the same inputs only scores; other inputs
# are refused) and $out/results.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."   # the repository root

data=data/real
out=""
baseline=""                                 # an earlier --out of this script ("": no comparison)
synth_test=""                               # the egs/synth test set ("": not decoded)
lm=""                                       # default: MODEL/lm, else the bundled LSTM
decode_config=""                            # default: MODEL/decode.yaml, else the bundled one
threads=1
asr="${ASR:-asr}"
help_message="usage: $0 --out DIR [--data DIR] [--baseline DIR] [--synth-test MANIFEST]
       [--lm DIR] [--decode-config YAML] [--threads N] MODEL"
. recipes/parse_options.sh
command -v "$asr" >/dev/null || asr=".venv/bin/asr"
if [[ $# -ne 1 || -z $out ]]; then echo "$help_message" >&2; exit 1; fi
model=$1
[[ -f $model/config.yaml ]] || { echo "$0: $model: not an exported model (no config.yaml)" >&2; exit 1; }
if [[ -z $lm ]]; then lm=$model/lm; [[ -d $lm ]] || lm=asr/pretrained/default/lm; fi
if [[ -z $decode_config ]]; then
    decode_config=$model/decode.yaml
    [[ -f $decode_config ]] || decode_config=asr/pretrained/default/decode.yaml
fi
if [[ -n $baseline && ! -d $baseline ]]; then echo "$0: --baseline: no such folder '$baseline'" >&2; exit 1; fi

declare -A manifest=([real_dev]=$data/real_dev.jsonl [dev_clean]=$data/dev_clean.jsonl
    [ls_samples_dev]=$data/ls_samples_dev.jsonl)
sets=(real_dev dev_clean ls_samples_dev)
if [[ -f $data/ljspeech.jsonl ]]; then sets+=(ljspeech); manifest[ljspeech]=$data/ljspeech.jsonl; fi
if [[ -n $synth_test ]]; then
    [[ -f $synth_test ]] || { echo "$0: --synth-test: no such file '$synth_test'" >&2; exit 1; }
    sets+=(synth_test); manifest[synth_test]=$synth_test
fi
for set in "${sets[@]}"; do
    [[ -f ${manifest[$set]} ]] || { echo "$0: ${manifest[$set]}: no such manifest" >&2; exit 1; }
done

# the decodes in $out are reused on a rerun: only for the same model, LM and decode config
stamp=$( { sha256sum "$model"/*.safetensors "$decode_config"; find "$lm" -type f -print0 |
    sort -z | xargs -0 sha256sum; } | cut -d' ' -f1 | sha256sum | cut -c1-16)
if [[ -f $out/inputs.sha256 && $(cat "$out/inputs.sha256") != "$stamp" ]]; then
    echo "$0: $out holds decodes of another model, LM or decode config; give another --out" >&2
    exit 1
fi
mkdir -p "$out"
echo "$stamp" > "$out/inputs.sha256"
{
    echo "model: $model; LM: $lm; decode config: $decode_config${baseline:+; baseline: $baseline}"
    echo
    echo "| set | decoder | WER % | CER % |${baseline:+ WER vs baseline (95 % interval) |}"
    echo "|---|---|---|---|${baseline:+---|}"
} > "$out/results.md.tmp"
for set in "${sets[@]}"; do
    for decoder in greedy beam; do
        hyp=$out/${set}_$decoder.jsonl
        if [[ ! -f $hyp ]]; then
            opts=(--decoder "$decoder")
            [[ $decoder == beam ]] && opts+=(--lm "$lm" --decode-config "$decode_config")
            "$asr" decode --model "$model" --manifest "${manifest[$set]}" "${opts[@]}" \
                --out "$hyp" --threads "$threads" --no-progress
        fi
        score=(--normalize --alignments none "${manifest[$set]}" "$hyp")
        base=$baseline/${set}_$decoder.jsonl
        [[ -n $baseline && -f $base ]] && score+=(--baseline "$base")
        report=$("$asr" score "${score[@]}")
        wer=$(sed -n 's/^%WER \([0-9.]*\).*/\1/p' <<< "$report")
        cer=$(sed -n 's/^%CER \([0-9.]*\).*/\1/p' <<< "$report")
        row="| $set | $decoder | $wer | $cer |"
        if [[ -n $baseline ]]; then
            diff=$(sed -n 's/^WER .*: \([-+][0-9.]*\) (95 % interval \([^,]*\),.*/\1 (\2)/p' <<< "$report")
            row+=" ${diff:--} |"
        fi
        echo "$row" | tee -a "$out/results.md.tmp"
    done
done
mv "$out/results.md.tmp" "$out/results.md"
echo "wrote $out/results.md"
