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
#      real_dev.jsonl (evaluation and tuning only) and real_train.jsonl, train_mix.jsonl =
#      train + real_train repeated --real-repeat times (what --am-config train_real.yaml reads),
#      and real_train_x<repeat>.jsonl = real_train alone, repeated (the fine-tunes of stage 5)
#   2  character tokenizer $data/lang_char (29 symbols)
#   3  LM text $data/lm/train.txt.gz: the train novels of $data/novel_split.tsv, normalised
#   4  character LSTM LM $exp/lm (conf/lm/small_char.yaml)
#   5  acoustic model egs/synth/conf/train.yaml -> $exp/am (resumes); with --am-config2 Y a
#      second phase: the first trains into $exp/am_phase1, then Y continues from its model
#      (init_from) into $exp/am, e.g. a fine-tuning phase at a lower learning rate;
#      with --real-finetunes N (> 0; needs --real-root) then N fine-tunes of $exp/am/model on
#      real_train_x<repeat>.jsonl, validated on real_dev.jsonl (--ft-config, default
#      egs/synth/conf/train_real_ft.yaml; --ft-overrides) into $exp/am_ft1..N (ft i: odd i augmented,
#      even i without speed/reverb/babble; seed (i-1)/2), each resumed or skipped like the
#      model, then `asr average` of their models -> $exp/am_avg/model (N = 1: no average)
#   6  tune alpha/beta of beam + LSTM on dev -> $exp/tune/decode.yaml
#   7  decode dev, test (and ljspeech): greedy, beam, beam + LSTM -> $exp/decode/<decoder>/<set>
#   8  score -> $exp/results.md (the table of RESULTS.md)
#   9  bundle -> $exp/default: float16 model + float16 LM + tuned decode.yaml, the layout of
#      asr/pretrained/default (what `asr transcribe` uses without --model)
# Stages 6-9 use $am_model: $exp/am/model, or with --real-finetunes the fine-tunes' average.
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
am_overrides=""                        # both phases, e.g. "engine.epochs=2 data.num_workers=0"
am2_overrides=""                       # phase 2 only, after --am-overrides
real_finetunes=0                       # fine-tunes on the real train split, averaged (0: none)
ft_config=egs/synth/conf/train_real_ft.yaml
ft_overrides=""                        # every fine-tune only, e.g. "engine.max_steps=300"
lm_config=conf/lm/small_char.yaml
lm_overrides=""                        # e.g. "engine.max_steps=700 data.max_batch_tokens=2048"
decode_config=conf/decode/beam.yaml
tune_alphas="0,0.25,0.5,0.75,1.0"
tune_betas="0,0.5,1,2"
tune_method=grid                       # or coordinate (fewer LSTM beam decodings of dev)
threads=0                              # OMP_NUM_THREADS for stages 2-8 when > 0
asr="${ASR:-asr}"
help_message="usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp DIR] [--config YAML]
       [--hours-train H] [--hours-dev H] [--hours-test H] [--jobs N] [--threads N]
       [--lang DIR] [--lm-text-dir DIR] [--ljspeech DIR] [--am-config Y] [--am-config2 Y]
       [--am-overrides 'k=v ...'] [--am2-overrides 'k=v ...'] [--real-finetunes N]
       [--ft-config Y] [--ft-overrides 'k=v ...']
       [--lm-config Y] [--lm-overrides 'k=v ...'] [--real-root DIR] [--real-transcripts TSV]
       [--real-split TSV] [--real-repeat N]"
. recipes/parse_options.sh
command -v "$asr" >/dev/null || asr=".venv/bin/asr"
if [[ ! $real_finetunes =~ ^[0-9]+$ ]]; then
    echo "$0: --real-finetunes must be a whole number >= 0, got '$real_finetunes'" >&2
    exit 1
fi

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
        "$asr" prepare mix "$data/manifests/real_train.jsonl:$real_repeat" \
            --out "$data/manifests/real_train_x$real_repeat.jsonl"
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
am_model=$exp/am/model                  # the acoustic model of stages 6-9
if [[ $real_finetunes -eq 1 ]]; then
    am_model=$exp/am_ft1/model
elif [[ $real_finetunes -gt 1 ]]; then
    am_model=$exp/am_avg/model
fi

# finetune_am INIT TRAIN VALID CONFIG DIR [key=value ...]: train DIR from the model folder
# INIT (init_from) on the manifest TRAIN, validated on VALID (recipes/train_am.sh: skipped when
# done, resumed when killed); started again when INIT was retrained since DIR began.
finetune_am() {
    local init=$1 train=$2 valid=$3 config=$4 dir=$5
    shift 5
    if [[ -e $dir && $init/model.safetensors -nt $dir/config.yaml ]]; then
        rm -rf "$dir"
    fi
    recipes/train_am.sh --train "$train" --valid "$valid" "$config" "$lang" "$dir" \
        "init_from=$init" "$@"
}

# real_split_finetunes: stage 5's --real-finetunes N fine-tunes of $exp/am/model on the real
# train split (ft i: odd i augmented as $ft_config, even i without speed/reverb/babble; seed
# (i-1)/2), then the average of their models into $exp/am_avg/model (redone when a fine-tune
# is newer or the list of fine-tunes changed: $exp/am_avg/inputs.txt).
real_split_finetunes() {
    local train=$manifests/real_train_x$real_repeat.jsonl valid=$manifests/real_dev.jsonl
    local i seed what model avg=$exp/am_avg/model stamp=$exp/am_avg/inputs.txt
    local models=() variant=()
    if [[ ! -f $train || ! -f $valid ]]; then
        echo "$0: --real-finetunes needs $train and $valid (stage 1 with --real-root)" >&2
        exit 1
    fi
    for ((i = 1; i <= real_finetunes; i++)); do
        seed=$(((i - 1) / 2)) variant=() what=augmented
        if ((i % 2 == 0)); then
            variant=("data.augment.speed_factors=[1.0]" data.augment.reverb_prob=0.0
                data.augment.noise_prob=0.0)
            what="no speed/reverb/babble"
        fi
        echo "stage 5: real-split fine-tune $i/$real_finetunes -> $exp/am_ft$i ($what, seed $seed)"
        # shellcheck disable=SC2086
        finetune_am "$exp/am/model" "$train" "$valid" "$ft_config" "$exp/am_ft$i" \
            "data.augment.noise_manifest=$manifests/train.jsonl" "engine.seed=$seed" \
            ${variant[@]+"${variant[@]}"} $ft_overrides
        models+=("$exp/am_ft$i/model")
    done
    [[ ${#models[@]} -gt 1 ]] || return 0
    local redo=false listed
    listed=$(printf '%s\n' "${models[@]}")
    [[ -f $avg/model.safetensors && -f $stamp && $(<"$stamp") == "$listed" ]] || redo=true
    for model in "${models[@]}"; do
        if [[ $model/model.safetensors -nt $avg/model.safetensors ]]; then redo=true; fi
    done
    if ! $redo; then
        echo "stage 5: $avg is newer than the fine-tunes; skipping the average"
        return 0
    fi
    echo "stage 5: average of ${#models[@]} fine-tunes -> $avg"
    "$asr" average "$avg" "${models[@]}" --overwrite
    echo "$listed" > "$stamp"
}

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
        # shellcheck disable=SC2086
        finetune_am "$am_phase1/model" "$train_manifest" "$valid_manifest" "$am_config2" \
            "$exp/am" $am_overrides $am2_overrides
    fi
    if [[ $real_finetunes -gt 0 ]]; then
        real_split_finetunes
    fi
fi

if [[ $stage -le 6 && $stop_stage -ge 6 ]]; then
    echo "stage 6: tune alpha/beta on $valid_manifest -> $exp/tune"
    recipes/tune_decoder.sh --decode-config "$decode_config" --alphas "$tune_alphas" \
        --betas "$tune_betas" --method "$tune_method" "$am_model" "$exp/lm/lm" \
        "$valid_manifest" "$exp/tune"
fi

if [[ $stage -le 7 && $stop_stage -ge 7 ]]; then
    for subset in "${eval_sets[@]}"; do
        echo "stage 7: decode $subset (greedy, beam, beam + LSTM)"
        recipes/decode.sh --decoder greedy --decode-opts "--no-progress" \
            "$am_model" "$manifests/$subset.jsonl" "$exp/decode/greedy/$subset"
        recipes/decode.sh --decoder beam \
            --decode-opts "--decode-config $decode_config --no-progress" \
            "$am_model" "$manifests/$subset.jsonl" "$exp/decode/beam/$subset"
        out="$exp/decode/beam_lstm/$subset"  # decode.sh checks the model and manifest only
        for dep in "$exp/tune/decode.yaml" "$exp/lm/lm/model.safetensors"; do
            if [[ $dep -nt $out/hyp.jsonl ]]; then rm -f "$out/hyp.jsonl"; fi
        done
        recipes/decode.sh --decoder beam \
            --decode-opts "--lm $exp/lm/lm --decode-config $exp/tune/decode.yaml --no-progress" \
            "$am_model" "$manifests/$subset.jsonl" "$out"
    done
fi

if [[ $stage -le 8 && $stop_stage -ge 8 ]]; then
    echo "stage 8: score -> $exp/results.md"
    recipes/score_sets.sh "$exp/results.md" "$manifests" "$exp/decode" "${eval_sets[@]}"
fi

if [[ $stage -le 9 && $stop_stage -ge 9 ]]; then
    echo "stage 9: bundle -> $exp/default (copy it to asr/pretrained/default to ship it)"
    recipes/bundle.sh "$am_model" "$exp/lm/lm" "$exp/tune/decode.yaml" "$exp/default"
fi
