#!/usr/bin/env bash
# Word-level LM path (issue 15 item 5): LM text from the train novels without any sentence that
# shares a word 8-gram with the real dev transcripts, word n-gram ARPAs, unigram lists, alpha/beta
# tuned on the real dev set, and the dev set decoded with pyctcdecode + KenLM.
# Numbers: egs/synth/RESULTS.md ("Real speech: pocketsphinx and the word-level LM path").
#
#   egs/synth/local/word_lm.sh [--out /work/lmwork] [--dev /work/real/dev.jsonl] [--stage N]
# Run from the repository root. Every step skips work already done. One thread throughout.
set -euo pipefail

out=/work/lmwork
dev=/work/real/dev.jsonl
model=asr/pretrained/default
text_dir=../shared/data/text/eltec-eng
split=egs/synth/local/novel_split.tsv
stage=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --dev) dev=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --text-dir) text_dir=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
done
export OMP_NUM_THREADS=1
asr=".venv/bin/asr"
py=".venv/bin/python"
lm=$out/lm
mkdir -p "$lm"

if [[ $stage -le 0 && ! -f $lm/train.txt.gz ]]; then
    echo "stage 0: LM text of the train novels, minus sentences sharing a word 8-gram with $dev"
    novels=()
    while IFS=$'\t' read -r novel _ subset _; do
        [[ $subset == train ]] && novels+=("$text_dir/$novel.txt.gz")
    done < <(tail -n +2 "$split")
    $asr lm-text --format novel --out "$lm/train_raw.txt.gz" "${novels[@]}"
    $py egs/synth/local/filter_lm_text.py --exclude "$dev" --out "$lm/train.txt.gz" \
        "$lm/train_raw.txt.gz"
fi

if [[ $stage -le 1 ]]; then
    echo "stage 1: unigram lists (10k/20k/30k most frequent words), 30k text with <unk>"
    for n in 10000 20000; do
        f=$lm/words_$((n / 1000))k.txt
        [[ -f $f ]] || $py egs/synth/local/word_vocab.py "$lm/train.txt.gz" --size $n --unigrams "$f"
    done
    [[ -f $lm/train_30k.txt.gz ]] || $py egs/synth/local/word_vocab.py "$lm/train.txt.gz" \
        --size 30000 --unigrams "$lm/words_30k.txt" --unk-text "$lm/train_30k.txt.gz"
fi

if [[ $stage -le 2 ]]; then
    echo "stage 2: word 3-gram (all 75.6k words) and 4-gram (30k words + <unk>)"
    [[ -f $lm/words3.arpa ]] || $asr ngram --order 3 --unit word --out "$lm/words3.arpa" \
        "$lm/train.txt.gz"
    [[ -f $lm/words4_30k.arpa ]] || $asr ngram --order 4 --unit word \
        --out "$lm/words4_30k.arpa" "$lm/train_30k.txt.gz"
fi

if [[ $stage -le 3 ]]; then
    echo "stage 3: alpha/beta on $dev (pyctcdecode, beam 16 from conf/decode/beam.yaml)"
    [[ -f $out/tune_w3/decode.yaml ]] || $asr tune-decoder --model "$model" \
        --lm "$lm/words3.arpa" --manifest "$dev" --out "$out/tune_w3" \
        --decode-config conf/decode/beam.yaml --alphas 0.25,0.5,0.75,1,1.5,2 --betas 0,1,2,3 \
        --threads 1
    # the 4-gram: a small grid around the 3-gram's best (the emissions are the same)
    mkdir -p "$out/tune_w4_30k"
    cp -n "$out/tune_w3/emissions.safetensors" "$out/tune_w4_30k/"
    [[ -f $out/tune_w4_30k/decode.yaml ]] || $asr tune-decoder --model "$model" \
        --lm "$lm/words4_30k.arpa" --manifest "$dev" --out "$out/tune_w4_30k" \
        --decode-config conf/decode/beam.yaml --alphas 0.5,0.75 --betas 0,1,2 --threads 1
fi

dec() {  # dec NAME [asr decode options]: decode $dev into $out/dec/NAME.jsonl unless done
    local name=$1
    shift
    [[ -f $out/dec/$name.jsonl ]] || $asr decode --model "$model" --manifest "$dev" \
        --out "$out/dec/$name.jsonl" --decoder beam --threads 1 --no-progress "$@"
}

if [[ $stage -le 4 ]]; then
    echo "stage 4: decode $dev with the tuned settings: unigram lists, beam 64, the 4-gram"
    mkdir -p "$out/dec"
    w3=(--lm "$lm/words3.arpa" --decode-config "$out/tune_w3/decode.yaml")
    dec kenlm_words3 "${w3[@]}"
    for u in 10k 20k 30k; do
        dec "kenlm_words3_uni$u" "${w3[@]}" --unigrams "$lm/words_$u.txt"
    done
    dec kenlm_words3_beam64 "${w3[@]}" --beam-size 64
    dec kenlm_words4_30k --lm "$lm/words4_30k.arpa" \
        --decode-config "$out/tune_w4_30k/decode.yaml"
    for f in "$out"/dec/kenlm_*.jsonl; do
        echo "$f"
        $asr score --normalize --alignments none --top 0 "$dev" "$f" | grep -E '^%(WER|CER)'
    done
fi
