"""The one-call Python API: ``asr.load_model(name_or_path)`` and ``asr.transcribe(audio, ...)``.

:func:`load_model` is the one way to load an acoustic model for recognition (by registry name or
folder, with the torch or the onnxruntime backend; the commands use it too), once: the
:class:`Model` is then passed around. A :class:`Model` holds an acoustic model (``.network``,
an :class:`asr.models.ctc.CTCModel`), its ``.tokenizer`` and ``.sample_rate``, and transcribes
files, lists of files or arrays with :meth:`Model.transcribe`, through the same pipeline as
``asr transcribe`` (VAD chunking of long audio, batched decoding, word timings:
:mod:`asr.inference.transcribe`). The results are
:class:`asr.inference.transcribe.Transcript` s (``.text``, ``.words`` with ``start``/``end``
seconds and ``confidence``, ``.duration_s``); :func:`asr.inference.writers.transcript_json` gives
the CLI's JSON object of one.

Audio is always fed at the model's rate: files are resampled when read, and an array must come
with its ``sample_rate`` (no default: a wrong guess gives garbage without a word), is resampled
with :func:`asr.io.audio.resample` and read from memory (:class:`asr.io.audio.Waveform`).

Decoding keywords are the options of :func:`asr.decode.spec.build_spec` (``decoder``, ``lm``,
``beam_size``, ``alpha``, ...; an unknown one is a one-line error); without any, a model folder's
recommended decoding is used (the bundled model's beam search + LSTM LM), as in the CLI
(:meth:`Model.decode_spec` and :meth:`Model.decoder`, through :mod:`asr.inference.decoding`).

Example::

    import asr
    model = asr.load_model("default")                   # or a folder, or "quartznet15x5"
    result = model.transcribe("talk.flac")               # Transcript
    print(result.text, result.words[0].start)
    results = asr.transcribe(["a.flac", "b.flac"], decoder="greedy")   # the model is reused
    result = asr.transcribe(samples, sample_rate=8000)  # an array, resampled to the model's rate
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from asr.data.inputs import MANIFEST_SUFFIXES, AudioItem, expand_input
from asr.errors import AsrError
from asr.inference.decoding import decoding_spec, make_decoder
from asr.inference.forward import InferenceError, resolve_device
from asr.inference.transcribe import TranscribeConfig, TranscribeError, Transcript, transcribe_items
from asr.io.audio import Waveform, resample
from asr.io.folders import ONNX_FILE
from asr.models.io import load_model as load_model_dir
from asr.pretrained import resolve_model_dir

if TYPE_CHECKING:
    from asr.decode.base import Decoder
    from asr.decode.spec import DecodeSpec
    from asr.models.ctc import CTCModel
    from asr.text.tokenizer import Tokenizer

# What an array input is called in its result (``Transcript.item.path``).
ARRAY_NAME = "<array>"
Audio = Union[str, Path, Sequence[str | Path], np.ndarray, torch.Tensor]  # noqa: UP007
BACKENDS = ("torch", "onnxruntime")  # what runs the acoustic model's forward


class Model:
    """A loaded acoustic model that transcribes (see the module docstring).

    Args:
        network: the acoustic model (eval mode): a :class:`CTCModel`, or an
            :class:`asr.onnx.runtime.OnnxCTCModel` (the onnxruntime backend).
        tokenizer: its tokenizer.
        path: the model folder it was loaded from (its decode.yaml and lm/ are the default
            decoding).
    """

    def __init__(self, network: CTCModel, tokenizer: Tokenizer, path: Path) -> None:
        self.network = network  # (batch, samples) -> log-probs
        self.tokenizer = tokenizer
        self.path = path
        self._decoders: dict[DecodeSpec, Decoder] = {}

    @property
    def sample_rate(self) -> int:
        """The sample rate the model's front-end expects, Hz."""
        return int(self.network.cfg.frontend.sample_rate_hz)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self.network.device

    def __repr__(self) -> str:
        params = self.network.num_parameters() / 1e6
        return (
            f"Model({str(self.path)!r}, {params:.2f} M parameters, {self.sample_rate} Hz, "
            f"{self.tokenizer.vocab_size} symbols, {self.device})"
        )

    def decode_spec(self, **decoding: Any) -> DecodeSpec:
        """The decoding spec of ``decoding`` (no keywords: the folder's recommended decoding);
        ``lm`` may be a registry name (``librispeech-3gram``), fetched once
        (:func:`asr.inference.decoding.decoding_spec`)."""
        return decoding_spec(self.path, **decoding)

    def decoder(self, spec: DecodeSpec) -> Decoder:
        """The decoder of ``spec`` (:func:`asr.inference.decoding.make_decoder`), built once per
        model (an LM is loaded once)."""
        if spec not in self._decoders:
            self._decoders[spec] = make_decoder(spec, self.tokenizer)
        return self._decoders[spec]

    def stream(self, config: Any = None, **decoding: Any) -> Any:
        """A live stream over this model (:class:`asr.streaming.Stream`): ``accept(samples)``,
        ``partial``, ``finals`` and ``finish()``; ``config`` an
        :class:`asr.streaming.StreamConfig` (None: its defaults), ``decoding`` the keywords of
        :meth:`transcribe` (none: the folder's recommended decoding)."""
        from asr.streaming import open_stream

        return open_stream(self, config, **decoding)

    def transcribe(
        self,
        audio: Audio,
        sample_rate: int | None = None,
        *,
        config: TranscribeConfig | None = None,
        on_error: str = "raise",
        progress: bool = False,
        **decoding: Any,
    ) -> Transcript | list[Transcript]:
        """Transcribe a file, a folder, a manifest, a list of them, or an array.

        Args:
            audio: an audio file (any format and rate libsndfile reads), a folder (its audio
                files, searched recursively, as ``asr transcribe`` does), a JSONL manifest, a
                list of them, or a ``(samples,)`` numpy array / torch tensor of mono audio.
            sample_rate: the rate of an array, Hz (required for arrays; files carry their own).
            config: chunking and batching (default :class:`TranscribeConfig`).
            on_error: ``"raise"`` (default): a failed input raises :class:`TranscribeError`
                (one line naming it) and no result is returned; ``"keep"``: every input gets
                its :class:`Transcript`, a failed one with ``error`` set to the reason, empty
                ``text`` and no words (as the CLI's JSON), so the others are not lost.
            progress: show a progress bar in audio seconds.
            **decoding: decoding options (:func:`asr.decode.spec.build_spec`).
        Returns:
            one :class:`Transcript` for a file or an array, a list for a folder, a manifest or
            a list (in order; a folder's files sorted by path).
        """
        if on_error not in ("raise", "keep"):
            raise TranscribeError(f"on_error must be 'raise' or 'keep', got {on_error!r}")
        decoder = self.decoder(self.decode_spec(**decoding))
        if isinstance(audio, (np.ndarray, torch.Tensor)):
            return self._transcribe_array(audio, sample_rate, decoder, config, on_error)
        if sample_rate is not None:
            raise TranscribeError(
                "sample_rate applies to arrays only: files are read (and resampled) at their "
                "own rate"
            )
        single = isinstance(audio, (str, Path))
        paths = [audio] if single else list(audio)  # type: ignore[arg-type]
        bad = [p for p in paths if not isinstance(p, (str, Path))]
        if bad or not paths:
            what = type(bad[0]).__name__ if bad else "an empty list"
            raise TranscribeError(
                f"audio must be a path, a list of paths or an array with sample_rate, got {what}"
            )
        items = _expand(paths)
        results = self._run(items, decoder, config, on_error, progress)
        if single and not _is_collection(audio):  # type: ignore[arg-type]
            return results[0]
        return results  # a list, a folder or a manifest

    def _run(
        self,
        items: list[AudioItem],
        decoder: Decoder,
        config: TranscribeConfig | None,
        on_error: str,
        progress: bool = False,
    ) -> list[Transcript]:
        results = []
        for t in transcribe_items(self.network, self.tokenizer, decoder, items, config, progress):
            if t.error is not None and on_error == "raise":
                raise TranscribeError(
                    t.error if t.item.path in t.error else f"{t.item.path}: {t.error}"
                )
            results.append(t)
        return results

    def _transcribe_array(
        self,
        audio: np.ndarray | torch.Tensor,
        sample_rate: int | None,
        decoder: Decoder,
        config: TranscribeConfig | None,
        on_error: str,
    ) -> Transcript:
        """An array resampled to the model's rate and transcribed from memory like a file (so
        long arrays are VAD-chunked too)."""
        samples = check_array(audio, sample_rate, self.sample_rate)
        resampled = resample(samples, int(sample_rate), self.sample_rate)  # type: ignore[arg-type]
        wave = Waveform(resampled, self.sample_rate, ARRAY_NAME)
        (result,) = self._run([AudioItem(ARRAY_NAME, audio=wave)], decoder, config, "keep")
        if result.error is not None and on_error == "raise":
            error = result.error
            raise TranscribeError(error if ARRAY_NAME in error else f"{ARRAY_NAME}: {error}")
        return dataclasses.replace(result, item=AudioItem(ARRAY_NAME))


def _is_collection(path: str | Path) -> bool:
    """Whether ``path`` names several inputs: a folder or a manifest."""
    return Path(path).is_dir() or Path(path).suffix.lower() in MANIFEST_SUFFIXES


def _expand(paths: Sequence[str | Path]) -> list[AudioItem]:
    """The items of files, folders and manifests (:func:`asr.data.inputs.expand_input`, as the
    CLI reads them); an empty folder or a bad manifest is a :class:`TranscribeError`."""
    items: list[AudioItem] = []
    for path in paths:
        if not _is_collection(path):
            items.append(AudioItem(str(path)))  # read (or reported missing) later
            continue
        try:
            items.extend(expand_input(path))
        except AsrError as err:
            raise TranscribeError(str(err)) from None
    if not items:
        raise TranscribeError(f"{', '.join(map(str, paths))}: no audio to transcribe")
    return items


def check_array(
    audio: np.ndarray | torch.Tensor, sample_rate: int | None, model_rate: int
) -> np.ndarray:
    """``audio`` as a finite float32 ``(samples,)`` array, or a one-line :class:`TranscribeError`
    (no sample rate, not 1-D, empty, not finite)."""
    if sample_rate is None:
        raise TranscribeError(
            f"an audio array needs its sample_rate (the model expects {model_rate} Hz; other "
            "rates are resampled): transcribe(samples, sample_rate=...)"
        )
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or sample_rate <= 0
    ):
        raise TranscribeError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    samples = np.asarray(audio)
    if samples.size == 0 and np.issubdtype(samples.dtype, np.number):
        raise TranscribeError(f"empty audio array (shape {samples.shape}): nothing to transcribe")
    if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.number):
        raise TranscribeError(
            f"an audio array must be mono (samples,) numbers, got shape {samples.shape} "
            f"{samples.dtype} (mix channels first, e.g. samples.mean(axis=1))"
        )
    samples = samples.astype(np.float32)
    if not np.isfinite(samples).all():
        raise TranscribeError(
            f"the audio array holds {int((~np.isfinite(samples)).sum())} NaN or Inf values"
        )
    return samples


def load_model(
    name_or_path: str | Path = "default",
    device: str = "auto",
    backend: str = "torch",
    threads: int = 0,
    base_url: str | None = None,
    progress: bool = True,
) -> Model:
    """Load a model by registry name (``asr models``; downloaded and imported once) or folder.

    Args:
        name_or_path: ``"default"`` (the bundled model), a registry name such as
            ``"quartznet15x5"``, or an exported model folder.
        device: ``"auto"`` (default: CUDA when available), ``"cpu"``, ``"cuda"``.
        backend: ``"torch"`` (default) or ``"onnxruntime"``: the network forward runs in
            onnxruntime on the CPU (an ONNX export folder, or a model folder exported on the
            fly: :func:`asr.onnx.runtime.load_onnx_model`), decoding is unchanged.
        threads: onnxruntime intra-op threads (0: its default); torch's are the caller's.
        base_url, progress: where and how a named model is downloaded
            (:func:`asr.pretrained.resolve_model_dir`).
    Raises:
        InferenceError / AsrError: unknown backend, onnxruntime asked to run on CUDA, a bad
            folder or a missing extra (one line).
    """
    path = resolve_model_dir(name_or_path, base_url, progress)
    if backend == "torch":
        if (path / ONNX_FILE).is_file():
            raise InferenceError(f"{path}: an ONNX export folder, run with --backend onnxruntime")
        network, tokenizer = load_model_dir(path, device=resolve_device(device))
    elif backend == "onnxruntime":
        if device.startswith("cuda"):
            raise InferenceError("--backend onnxruntime runs on the CPU (use --device cpu)")
        from asr.onnx.runtime import load_onnx_model

        network, tokenizer = load_onnx_model(path, threads)
    else:
        raise InferenceError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return Model(network, tokenizer, path)  # type: ignore[arg-type]


# Models loaded by transcribe(), by (folder, device): reused between calls.
_LOADED: dict[tuple[str, str], Model] = {}


def transcribe(
    audio: Audio,
    model: str | Path | Model = "default",
    sample_rate: int | None = None,
    *,
    device: str = "auto",
    **options: Any,
) -> Transcript | list[Transcript]:
    """Transcribe audio with a model given by name, folder or :class:`Model` (loaded once and
    reused by later calls). See the module docstring.

    Args:
        audio: a file, a folder (its audio files), a manifest, a list of them, or an array.
        model: ``"default"``, a name from ``asr models``, a model folder or a :class:`Model`.
        sample_rate: the rate of an array, Hz (required for arrays).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        **options: those of :meth:`Model.transcribe` (``config``, ``progress`` and
            ``on_error``: ``"raise"``, the default, raises :class:`TranscribeError` at the first
            failed input; ``"keep"`` returns every input's :class:`Transcript`, a failed one
            with ``error`` set and empty ``text``) and the decoding options (``decoder``,
            ``lm``, ``beam_size``, ``alpha``, ...: :func:`asr.decode.spec.build_spec`).
    Returns:
        one :class:`Transcript` for a file or an array, a list for a folder, manifest or list.
    """
    if not isinstance(model, Model):
        key = (str(resolve_model_dir(model)), resolve_device(device))
        if key not in _LOADED:
            _LOADED[key] = load_model(key[0], device=key[1])
        model = _LOADED[key]
    return model.transcribe(audio, sample_rate, **options)
