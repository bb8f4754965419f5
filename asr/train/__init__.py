"""Training: one engine and the two trainers that drive it.

- :mod:`asr.train.engine`: step, accumulation, AMP, clipping, EMA, checkpoint/resume, the epoch
  loop and its logs, shared by both trainers.
- :mod:`asr.train.acoustic`: the CTC acoustic-model trainer (``asr train``).
- :mod:`asr.train.lm`: the LSTM language-model trainer (``asr train-lm``).
- :mod:`asr.train.config`: both trainers' YAML configurations; :mod:`asr.train.engine_config`:
  their shared ``engine:`` section.
- :mod:`asr.train.validate`: greedy WER/CER of an acoustic model during training.
- :mod:`asr.train.checkpoint`, :mod:`asr.train.state`: atomic checkpoints, pickle-free state.
- :mod:`asr.train.optim`, :mod:`asr.train.runtime`, :mod:`asr.train.distributed`,
  :mod:`asr.train.logbook`: optimisers and schedules, seeding/RNG/autocast, torchrun set-up, logs.
"""
