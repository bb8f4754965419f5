"""Recognition with a trained model: the one inference path (:mod:`~asr.inference.forward`),
decoder construction (:mod:`~asr.inference.decoding`), manifest decoding
(:mod:`~asr.inference.manifest`), file transcription with VAD chunking
(:mod:`~asr.inference.transcribe`, :mod:`~asr.inference.vad`), word timings, output writers and
subtitles, LM-weight tuning (:mod:`~asr.inference.tune`) and pictures (:mod:`~asr.inference.plot`).
Above :mod:`asr.decode`, :mod:`asr.models` and :mod:`asr.lm`; below the API, streaming and the
CLI."""
