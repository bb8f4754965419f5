"""What training reads: JSONL manifests, datasets, samplers and augmentation.

- :mod:`asr.data.manifest`: NeMo-compatible JSONL manifests (read, write, validate, filter, concat).
- :mod:`asr.data.dataset`: audio datasets over manifests, padding collation.
- :mod:`asr.data.sampler`: duration-bucketed batch samplers (single process and DDP).
- :mod:`asr.data.augment`: speed perturbation, noise, reverberation, SpecAugment.
- :mod:`asr.data.cmvn`: global CMVN statistics of a front-end over a manifest.

Corpus preparation, downloads and the TTS corpus builder live in :mod:`asr.corpora`.
"""
