"""Text: the LibriSpeech-style normaliser (:mod:`~asr.text.normalize`, numbers spelled out by
:mod:`~asr.text.numbers`) and the tokenizers between text and token ids
(:mod:`~asr.text.tokenizer`). Imports only :mod:`asr.io`, :mod:`asr.config` and
:mod:`asr.errors`."""
