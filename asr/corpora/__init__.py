"""Corpora: downloads, corpus preparation into manifests, and the synthetic (TTS) corpus builder.

- :mod:`asr.io.download`: resumable HTTP downloads, md5 verification, safe tar extraction.
- :mod:`asr.corpora.librispeech`: LibriSpeech subsets and LM resources (openslr 12/11) -> manifests.
- :mod:`asr.corpora.yesno`: the Kaldi yesno corpus (openslr 1) -> train/test manifests.
- :mod:`asr.corpora.ljspeech`: LJSpeech-format folders -> a manifest.
- :mod:`asr.corpora.synth`: novels read by text-to-speech voices (:mod:`asr.corpora.tts`) in the
  LibriSpeech layout; :mod:`asr.corpora.novel_split`: which novels an LM may train on.

This layer sits above :mod:`asr.data` (what training reads) and below the command line.
"""
