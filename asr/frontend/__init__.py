"""Speech front-end: waveforms -> log-mel filterbanks / MFCCs, batched, padding-invariant.

- :class:`FrontendConfig` (frozen dataclass, YAML presets in ``conf/frontend/``) and
  :class:`Frontend` (``nn.Module``): ``Frontend.from_yaml(path)(waveforms, lengths)``.
- :func:`compute_features`: one audio file -> ``(frames, features)``.
- :mod:`asr.frontend.functional`: the pure functions the module is built from.
- :mod:`asr.frontend.denoise`: spectral subtraction and gating on power spectra.
- :mod:`asr.frontend.cmvn`: global CMVN statistics files (accumulated by :mod:`asr.data.cmvn`).
"""

from asr.frontend.errors import FrontendError
from asr.frontend.module import Frontend, FrontendConfig, compute_features, load_config

__all__ = ["Frontend", "FrontendConfig", "FrontendError", "compute_features", "load_config"]
