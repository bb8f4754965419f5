"""Write egs/real/local/split.tsv: every speaker of the real-speech sets -> dev or train.

dev (evaluation and tuning only, never trained on): the 55 dev speakers of
egs/synth/local/real_split.tsv except 1502, 2910 and 6209 (the csukuangfj train-clean-100 subset
has 345 more of their utterances, which train), and every LibriSpeech dev-clean speaker. train:
every other speaker (the shared LibriSpeech samples' speakers are all in real_split.tsv).
Run from the repository root:

    python egs/real/local/make_split.py /work/real-speech
"""

from __future__ import annotations

import sys
from pathlib import Path

from asr.corpora.transcribed import read_speaker_split, read_transcript_rows, write_speaker_split

MOVED_TO_TRAIN = {"1502", "2910", "6209"}


def main(real_speech: Path) -> None:
    old = read_speaker_split("egs/synth/local/real_split.tsv")
    split: dict[str, str] = {}
    for speaker, subset in old.items():
        split[speaker] = "dev" if subset == "dev" and speaker not in MOVED_TO_TRAIN else "train"
    for tsv in sorted(real_speech.glob("*/transcripts.tsv")):
        lines = tsv.read_text(encoding="utf-8").splitlines()
        devclean = {line.split("\t")[0] for line in lines if line.endswith("\tdev-clean")}
        for utt_id, _, speaker in read_transcript_rows(tsv):
            subset = "dev" if utt_id in devclean else split.get(speaker, "train")
            if split.setdefault(speaker, subset) != subset:
                sys.exit(f"{tsv}: speaker {speaker} would be in both {split[speaker]} and {subset}")
    write_speaker_split("egs/real/local/split.tsv", dict(sorted(split.items())))
    dev = sorted(s for s, subset in split.items() if subset == "dev")
    print(f"{len(split)} speakers, {len(dev)} dev: {' '.join(dev)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
