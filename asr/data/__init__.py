"""Corpus data: JSONL manifests, downloads with resume and md5 checks, corpus preparation.

- :mod:`asr.data.manifest`: NeMo-compatible JSONL manifests (read, write, validate, filter, concat).
- :mod:`asr.data.download`: resumable HTTP downloads, md5 verification, safe tar extraction.
- :mod:`asr.data.librispeech`: LibriSpeech subsets and LM resources (openslr 12/11) -> manifests.
- :mod:`asr.data.yesno`: the Kaldi yesno corpus (openslr 1) -> train/test manifests.
"""
