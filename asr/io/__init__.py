"""Files: audio in and out (:mod:`~asr.io.audio`), atomic writes (:mod:`~asr.io.atomic`), output
paths that never clobber (:mod:`~asr.io.outputs`) and saved model/LM folders
(:mod:`~asr.io.folders`), and downloads that resume and verify (:mod:`~asr.io.download` over
:mod:`~asr.io.transfer`). The lowest layer above :mod:`asr.errors`: imports nothing else of asr."""
