"""Options and records of the synthetic corpus builder (:mod:`asr.corpora.synth`): the config,
its speakers, the utterances to render (:class:`Job`) and the whole :class:`Plan`. Rendering
(:mod:`asr.corpora.synth_render`) and the output layout (:mod:`asr.corpora.synth_layout`) read
these; nothing here imports them back."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from asr.corpora.tts import Voice
from asr.errors import AsrError

SUBSETS = ("train", "dev", "test")
# A subset reads from as many of its novels as give each at least this much speech.
MIN_SECONDS_PER_NOVEL = 300.0


class SynthError(AsrError):
    """The synthetic corpus cannot be built as configured."""


@dataclass(frozen=True)
class SynthConfig:
    """Options of the synthetic corpus builder (egs/synth/conf/corpus.yaml)."""

    text_dir: str = "../shared/data/text/eltec-eng"  # novels, one .txt or .txt.gz file each
    text_glob: str = "*.txt*"  # which files of text_dir are novels
    seed: int = 0  # every random choice derives from it
    hours_train: float = 20.0  # target hours of speech per subset (before rejections)
    hours_dev: float = 0.25
    hours_test: float = 0.25
    novels_dev: int = 5  # novels whose sentences go to dev only
    novels_test: int = 5  # novels whose sentences go to test only; the rest are train
    subset_train: str = "train"  # folder names under LibriSpeech/
    subset_dev: str = "dev"
    subset_test: str = "test"
    min_duration_s: float = 2.0  # rendered utterances outside [min, max] are dropped
    max_duration_s: float = 20.0
    engines: tuple[str, ...] = ("espeak-ng", "flite", "festival")  # required: error if missing
    optional_engines: tuple[str, ...] = ("mbrola",)  # used when installed
    engine_weights: dict[str, float] = field(
        default_factory=lambda: {"espeak-ng": 0.5, "flite": 0.3, "festival": 0.15, "mbrola": 0.05}
    )  # share of utterances per engine (renormalised over engines with voices)
    voices: tuple[str, ...] = ()  # only these base voice ids ("flite:slt"); empty = all
    heldout_fraction: float = 0.25  # share of each engine's speaker groups kept for dev/test only
    heldout_groups: tuple[str, ...] = ()  # or exactly these groups ("rms", "espeak-ng:m4")
    settings_per_voice: int = 2  # rate/pitch settings (speakers) per voice; the first is 1.0/1.0
    engine_settings: dict[str, int] = field(default_factory=dict)  # per engine, overrides ^
    engine_pitch_ranges: dict[str, tuple[float, float]] = field(
        default_factory=dict
    )  # per engine, overrides pitch_range (neural voices: a wide warp makes many speakers)
    kokoro_voices: str = ""  # kokoro-js's voices/ folder; "" = $ASR_KOKORO_VOICES (tts_kokoro)
    kokoro_model: str = ""  # Kokoro ONNX file; "" = $ASR_KOKORO_MODEL, else the PyPI parts
    kokoro_blends: int = 0  # extra kokoro voices, each a seeded mix of 2-3 installed ones
    exclude_manifests: tuple[str, ...] = ()  # never read a sentence sharing 8 words with these
    speed_range: tuple[float, float] = (0.85, 1.2)  # speaking-rate factors of the other settings
    pitch_range: tuple[float, float] = (0.85, 1.15)  # pitch factors of the other settings
    utts_per_block: int = 15  # consecutive sentences of a novel read by one train speaker
    utts_per_block_eval: int = 4  # the same in dev/test (small: more speakers in a small set)
    sample_rate: int = 16000  # Hz of the written FLAC files
    peak_dbfs_range: tuple[float, float] = (-12.0, -1.0)  # level of each utterance
    pad_s_range: tuple[float, float] = (0.05, 0.4)  # silence added before and after the speech
    reverb_prob: float = 0.0  # share of utterances convolved with a synthetic room response
    rt60_s_range: tuple[float, float] = (0.2, 0.7)  # reverberation time of those rooms
    noise_prob: float = 0.0  # share of utterances with added white/pink/brown noise
    snr_db_range: tuple[float, float] = (5.0, 30.0)  # signal-to-noise ratio of that noise

    def __post_init__(self) -> None:
        for name in ("hours_train", "hours_dev", "hours_test", "heldout_fraction"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.min_duration_s < self.max_duration_s:
            raise ValueError("need 0 < min_duration_s < max_duration_s")
        if self.kokoro_blends < 0:
            raise ValueError(f"kokoro_blends must be >= 0, got {self.kokoro_blends}")
        if min(self.settings_per_voice, self.utts_per_block, self.utts_per_block_eval) < 1:
            raise ValueError("settings_per_voice and utts_per_block(_eval) must be >= 1")
        for name in ("reverb_prob", "noise_prob", "heldout_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if len({self.subset_train, self.subset_dev, self.subset_test}) != 3:
            raise ValueError("subset_train, subset_dev and subset_test must differ")

    def subset_name(self, subset: str) -> str:
        """Folder name of ``subset`` ("train", "dev" or "test")."""
        return getattr(self, f"subset_{subset}")

    def hours(self, subset: str) -> float:
        """Target hours of ``subset``."""
        return getattr(self, f"hours_{subset}")


@dataclass(frozen=True)
class Speaker:
    """A corpus speaker: LibriSpeech integer id and the voice setting that reads."""

    id: int
    voice: Voice


@dataclass(frozen=True)
class Job:
    """One utterance to render."""

    subset: str  # folder name under LibriSpeech/
    speaker: int
    chapter: int
    utt: int
    voice: Voice
    text: str  # what the engine reads
    transcript: str  # normalised text for trans.txt
    seed: int

    @property
    def utt_id(self) -> str:
        return f"{self.speaker}-{self.chapter}-{self.utt:04d}"

    @property
    def rel_path(self) -> str:
        return f"{self.subset}/{self.speaker}/{self.chapter}/{self.utt_id}.flac"


@dataclass(frozen=True)
class Plan:
    """Everything a build renders and writes, fixed before rendering starts."""

    novels: dict[str, list[Path]]  # subset -> novel files
    chapters: dict[str, int]  # novel name -> chapter id
    voice_split: dict[str, list[Voice]]  # "train" / "heldout" -> base voices
    speakers: dict[str, list[Speaker]]  # base voice id -> its speakers
    jobs: list[Job]


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> SynthConfig:
    """Config from YAML (``None``: the defaults) with ``key=value`` overrides."""
    from asr import config

    if path is None:
        data = config.apply_overrides({}, overrides or [])
        return config.from_dict(SynthConfig, data, "synth config")
    return config.load(SynthConfig, path, overrides)


def with_hours(cfg: SynthConfig, **hours: float | None) -> SynthConfig:
    """``cfg`` with the given ``hours_<subset>`` values replaced (None keeps the config's)."""
    return dataclasses.replace(cfg, **{k: v for k, v in hours.items() if v is not None})
