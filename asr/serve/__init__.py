"""``asr serve``: streaming recognition over WebSocket, transcription over HTTP, and a page that
captions a microphone (:mod:`asr.serve.app`, :mod:`asr.serve.protocol`, ``static/``)."""
