"""Scoring: word and character error rates with alignments (:mod:`~asr.scoring.wer`), transcript
files in any common format paired by utterance id (:mod:`~asr.scoring.transcripts`), and the
writing convention of a set of transcripts (:mod:`~asr.scoring.convention`)."""
