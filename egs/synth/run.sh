#!/usr/bin/env bash
# Synthetic-speech recipe: ELTeC novels read by system TTS voices (LibriSpeech format).
#
#   bash egs/synth/run.sh                          # every stage
#   bash egs/synth/run.sh --stage 1 --stop-stage 1 # one stage
#   bash egs/synth/run.sh --hours-train 2 --jobs 2 --data /work/synth_corpus
#
# Stages (each skips work already done):
#   0  render the corpus into $data/LibriSpeech/{train,dev,test} (resumable)
#   1  manifests $data/manifests/{train,dev,test}.jsonl (asr prepare librispeech), and
#      $data/manifests/ljspeech.jsonl from --ljspeech (real speech, evaluation only) if present;
#      with --real-root: the real LibriSpeech samples split by speaker (--real-split) into
#      real_dev.jsonl (evaluation and tuning only) and real_train.jsonl, and train_mix.jsonl =
#      train + real_train repeated --real-repeat times (what --am-config train_real.yaml reads)
#   2  character tokenizer $data/lang_char (29 symbols)
#   3  LM text $data/lm/train.txt.gz: the train novels of $data/novel_split.tsv, normalised
#   4  character LSTM LM $exp/lm (conf/lm/small_char.yaml)
#   5  acoustic model egs/synth/conf/train.yaml -> $exp/am (resumes); with --am-config2 Y a
#      second phase: the first trains into $exp/am_phase1, then Y continues from its model
#      (init_from) into $exp/am, e.g. a fine-tuning phase at a lower learning rate
#   6  tune alpha/beta of beam + LSTM on dev -> $exp/tune/decode.yaml
#   7  decode dev, test (and ljspeech): greedy, beam, beam + LSTM -> $exp/decode/<decoder>/<set>
#   8  score -> $exp/results.md (the table of RESULTS.md)
#   9  bundle -> $exp/default: float16 model + float16 LM + tuned decode.yaml, the layout of
#      asr/pretrained/default (what `asr transcribe` uses without --model)
# Stages 2-8 use the shared recipes/*.sh, as egs/librispeech/run.sh does.
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
exp=exp/synth                          # LM, acoustic model, tuning, decodings, scores
lang=""                                # tokenizer folder ("": $data/lang_char, made by stage 2)
lm_text_dir=""                         # LM text folder ("": $data/lm, made by stage 3)
text_dir=../shared/data/text/eltec-eng # the novels (LM text: those of the train split only)
ljspeech=../shared/data/ljspeech-sample # LJSpeech folder scored as real speech ("": none)
real_root=""                           # folder of real <id>.flac files ("": no real speech), e.g.
                                       # ../shared/data/librispeech-samples/librispeech_train-clean-100
real_transcripts=""                    # their "id<TAB>text" file ("": $real_root/../*.transcripts.tsv)
real_split=egs/synth/local/real_split.tsv # speaker -> dev/train (dev: never trained on)
real_repeat=6                          # times real_train is repeated in train_mix.jsonl
am_config=egs/synth/conf/train.yaml
am_config2=""                          # optional phase 2, initialised from phase 1
am_overrides=""                        # both phases, e.g. "epochs=2 data.max_batch_seconds=60"
am2_overrides=""                       # phase 2 only, after --am-overrides
lm_config=conf/lm/small_char.yaml
lm_overrides=""                        # e.g. "max_steps=700 data.max_batch_tokens=2048"
decode_config=conf/decode/beam.yaml
tune_alphas="0,0.25,0.5,0.75,1.0"
tune_betas="0,0.5,1,2"
tune_method=grid                       # or coordinate (fewer LSTM beam decodings of dev)
threads=0                              # OMP_NUM_THREADS for stages 2-8 when > 0
asr="${ASR:-asr}"
help_message="usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp DIR] [--config YAML]
       [--hours-train H] [--hours-dev H] [--hours-test H] [--jobs N] [--threads N]
       [--lang DIR] [--lm-text-dir DIR] [--ljspeech DIR] [--am-config Y] [--am-config2 Y]
       [--am-overrides 'k=v ...'] [--am2-overrides 'k=v ...']
       [--lm-config Y] [--lm-overrides 'k=v ...'] [--real-root DIR] [--real-transcripts TSV]
       [--real-split TSV] [--real-repeat N]"
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
    if [[ -n $ljspeech && -f $ljspeech/metadata.csv ]]; then
        "$asr" prepare ljspeech --root "$ljspeech" --out "$data/manifests/ljspeech.jsonl"
    fi
    if [[ -n $real_root ]]; then
        if [[ -z $real_transcripts ]]; then
            real_transcripts=$(ls "$real_root"/../*.transcripts.tsv | head -n 1)
        fi
        for subset in dev train; do
            "$asr" prepare transcribed --root "$real_root" --transcripts "$real_transcripts" \
                --split "$real_split" --subset "$subset" --out "$data/manifests/real_$subset.jsonl"
        done
        "$asr" prepare mix "$data/manifests/train.jsonl" \
            "$data/manifests/real_train.jsonl:$real_repeat" --out "$data/manifests/train_mix.jsonl"
    fi
fi

[[ $threads -gt 0 ]] && export OMP_NUM_THREADS="$threads"
manifests="$data/manifests"
eval_sets=(dev test)
[[ -f $manifests/ljspeech.jsonl ]] && eval_sets+=(ljspeech)
[[ -f $manifests/real_dev.jsonl ]] && eval_sets+=(real_dev)
train_manifest=$manifests/train.jsonl   # with real speech: the mix, validated on real dev
valid_manifest=$manifests/dev.jsonl
if [[ -f $manifests/train_mix.jsonl ]]; then
    train_manifest=$manifests/train_mix.jsonl
    valid_manifest=$manifests/real_dev.jsonl
fi
lang="${lang:-$data/lang_char}"
lm_text_dir="${lm_text_dir:-$data/lm}"

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
    echo "stage 2: tokenizer -> $lang"
    recipes/tokenizer.sh --kind char "$lang"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
    echo "stage 3: LM text -> $lm_text_dir/train.txt.gz (train novels), $lm_text_dir/valid.txt (dev)"
    split="$data/novel_split.tsv"
    [[ -f $split ]] || split=egs/synth/local/novel_split.tsv
    novels=()
    while IFS=$'\t' read -r novel _ subset _; do
        [[ $subset == train ]] || continue
        for f in "$text_dir/$novel.txt.gz" "$text_dir/$novel.txt"; do
            [[ -f $f ]] && { novels+=("$f"); break; }
        done
    done < <(tail -n +2 "$split")
    [[ ${#novels[@]} -gt 0 ]] || { echo "$0: no train novels of $split in $text_dir" >&2; exit 1; }
    recipes/lm_text.sh --format novel "$lm_text_dir/train.txt.gz" "${novels[@]}"
    recipes/lm_text.sh "$lm_text_dir/valid.txt" "$manifests/dev.jsonl"
fi

if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
    echo "stage 4: LSTM LM -> $exp/lm ($lm_config)"
    # stage 3 wrote normalised text, one sentence per line
    # shellcheck disable=SC2086
    recipes/train_lm.sh --valid-text "$lm_text_dir/valid.txt" "$lm_config" "$lang" \
        "$lm_text_dir/train.txt.gz" "$exp/lm" data.text_format=lines data.normalize=false \
        $lm_overrides
fi

if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
    am_phase1="$exp/am" phase1_train=$train_manifest phase1_valid=$valid_manifest
    if [[ -n $am_config2 ]]; then  # phase 1 on synthetic speech, phase 2 on the mix
        am_phase1="$exp/am_phase1" phase1_train=$manifests/train.jsonl
        phase1_valid=$manifests/dev.jsonl
    fi
    echo "stage 5: acoustic model -> $am_phase1 ($am_config)"
    # shellcheck disable=SC2086
    recipes/train_am.sh --train "$phase1_train" --valid "$phase1_valid" \
        "$am_config" "$lang" "$am_phase1" $am_overrides
    if [[ -n $am_config2 ]]; then
        echo "stage 5: acoustic model, phase 2 from $am_phase1/model -> $exp/am ($am_config2)"
        if [[ -e $exp/am && $am_phase1/model/model.safetensors -nt $exp/am/config.yaml ]]; then
            rm -rf "$exp/am"  # phase 1 was retrained since phase 2 began: start phase 2 again
        fi
        # shellcheck disable=SC2086
        recipes/train_am.sh --train "$train_manifest" --valid "$valid_manifest" \
            "$am_config2" "$lang" "$exp/am" "init_from=$am_phase1/model" $am_overrides \
            $am2_overrides
    fi
fi

if [[ $stage -le 6 && $stop_stage -ge 6 ]]; then
    echo "stage 6: tune alpha/beta on $valid_manifest -> $exp/tune"
    recipes/tune_decoder.sh --decode-config "$decode_config" --alphas "$tune_alphas" \
        --betas "$tune_betas" --method "$tune_method" "$exp/am/model" "$exp/lm/lm" \
        "$valid_manifest" "$exp/tune"
fi

if [[ $stage -le 7 && $stop_stage -ge 7 ]]; then
    for subset in "${eval_sets[@]}"; do
        echo "stage 7: decode $subset (greedy, beam, beam + LSTM)"
        recipes/decode.sh --decoder greedy --decode-opts "--no-progress" \
            "$exp/am/model" "$manifests/$subset.jsonl" "$exp/decode/greedy/$subset"
        recipes/decode.sh --decoder beam \
            --decode-opts "--decode-config $decode_config --no-progress" \
            "$exp/am/model" "$manifests/$subset.jsonl" "$exp/decode/beam/$subset"
        out="$exp/decode/beam_lstm/$subset"  # decode.sh checks the model and manifest only
        for dep in "$exp/tune/decode.yaml" "$exp/lm/lm/model.safetensors"; do
            if [[ $dep -nt $out/hyp.jsonl ]]; then rm -f "$out/hyp.jsonl"; fi
        done
        recipes/decode.sh --decoder beam \
            --decode-opts "--lm $exp/lm/lm --decode-config $exp/tune/decode.yaml --no-progress" \
            "$exp/am/model" "$manifests/$subset.jsonl" "$out"
    done
fi

if [[ $stage -le 8 && $stop_stage -ge 8 ]]; then
    echo "stage 8: score -> $exp/results.md"
    dirs=()
    for decoder in greedy beam beam_lstm; do
        for subset in "${eval_sets[@]}"; do
            folder="$exp/decode/$decoder/$subset"
            recipes/score.sh "$manifests/$subset.jsonl" "$folder/hyp.jsonl" "$folder"
            dirs+=("$folder")
        done
    done
    recipes/wer_table.sh "$exp/results.md" "${dirs[@]}"
fi

if [[ $stage -le 9 && $stop_stage -ge 9 ]]; then
    echo "stage 9: bundle -> $exp/default (copy it to asr/pretrained/default to ship it)"
    rm -rf "$exp/default"
    "$asr" export "$exp/am/model" "$exp/default" --dtype float16
    "$asr" export "$exp/lm/lm" "$exp/default/lm" --dtype float16
    cp "$exp/tune/decode.yaml" "$exp/default/decode.yaml"
    du -sh "$exp/default"
fi
