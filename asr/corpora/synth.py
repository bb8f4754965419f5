"""Synthetic LibriSpeech-format corpus: novels read aloud by system TTS voices.

:func:`build_corpus` turns a folder of novels into::

    OUT/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    OUT/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    OUT/LibriSpeech/SPEAKERS.TXT
    OUT/novel_split.tsv      which novel went to which subset (exclude dev/test ones from LM text)
    OUT/voices.tsv           speaker id -> TTS voice, rate, pitch
    OUT/rejected.tsv         utterances not kept (duration out of range, engine failure)

Speakers are TTS voices at a rate/pitch setting; chapters are novels. No novel and no sentence is
shared between subsets, and dev/test are read only by voices (speaker groups) never used in train.
Everything is planned deterministically from the config's seed before rendering, so a build that
is interrupted resumes where it stopped (finished FLAC files are kept).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import zlib
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

from asr.corpora import tts_kokoro
from asr.corpora.synth_config import (
    MIN_SECONDS_PER_NOVEL,
    SUBSETS,
    Job,
    Plan,
    Speaker,
    SynthConfig,
    SynthError,
)
from asr.corpora.synth_layout import write_layout, write_novel_split, write_voices
from asr.corpora.synth_render import init_worker, render_all
from asr.corpora.synth_text import (
    Sentence,
    excluded_ngrams,
    novel_name,
    novel_sentences,
    transcribe,
    word_ngrams,
)
from asr.corpora.tts import Voice, available_voices, check_engines, jitter

# ----------------------------------------------------------------------------- planning


def split_novels(paths: list[Path], cfg: SynthConfig) -> dict[str, list[Path]]:
    """Novels per subset: test and dev draw ``novels_test``/``novels_dev`` novels (seeded)."""
    if len(paths) < cfg.novels_dev + cfg.novels_test + 1:
        raise SynthError(
            f"{cfg.text_dir}: {len(paths)} text files matching {cfg.text_glob!r}; need at least "
            f"novels_dev + novels_test + 1 = {cfg.novels_dev + cfg.novels_test + 1}"
        )
    order = np.random.default_rng([cfg.seed, 1]).permutation(len(paths))
    shuffled = [paths[i] for i in order]
    test = sorted(shuffled[: cfg.novels_test])
    dev = sorted(shuffled[cfg.novels_test : cfg.novels_test + cfg.novels_dev])
    train = sorted(shuffled[cfg.novels_test + cfg.novels_dev :])
    return {"train": train, "dev": dev, "test": test}


def _heldout_groups(voices: list[Voice], cfg: SynthConfig) -> set[str]:
    """Speaker groups kept out of train: ``cfg.heldout_groups`` when given, else
    ``heldout_fraction`` of each engine's groups (at least one of an engine with two or more),
    seeded; a group shared by engines counts for each."""
    if cfg.heldout_groups:
        unknown = sorted(set(cfg.heldout_groups) - {v.group_id for v in voices})
        if unknown:
            raise SynthError(f"heldout_groups: no installed voice has group {unknown[0]!r}")
        return set(cfg.heldout_groups)
    rng = np.random.default_rng([cfg.seed, 2])
    held: set[str] = set()
    for engine in sorted({v.engine for v in voices}):
        groups = sorted({v.group_id for v in voices if v.engine == engine})
        want = round(cfg.heldout_fraction * len(groups))
        if cfg.heldout_fraction > 0 and len(groups) >= 2:
            want = min(max(want, 1), len(groups) - 1)
        free = [g for g in groups if g not in held]
        for i in rng.permutation(len(free)):
            if len(held.intersection(groups)) >= want or len(held.intersection(groups)) + 1 >= len(
                groups
            ):
                break
            held.add(free[i])
    return held


def split_voices(voices: list[Voice], cfg: SynthConfig) -> dict[str, list[Voice]]:
    """Base voices for train and for dev/test ("heldout"): dev/test voices belong to speaker
    groups never used in train (see :func:`_heldout_groups`)."""
    held = _heldout_groups(voices, cfg)
    train = [v for v in voices if v.group_id not in held]
    heldout = [v for v in voices if v.group_id in held]
    if not heldout or not train:
        raise SynthError(
            f"{len(voices)} voices in {len({v.group_id for v in voices})} speaker groups: need at "
            "least two groups (one for train, one held out for dev/test); install more voices"
        )
    return {"train": train, "heldout": heldout}


def speakers_of(voices: list[Voice], cfg: SynthConfig) -> dict[str, list[Speaker]]:
    """Rate/pitch settings of every base voice as speakers with integer ids, keyed by base id."""
    speakers: dict[str, list[Speaker]] = {}
    next_id = 100
    for voice in sorted(voices, key=lambda v: v.base_id):
        rng = np.random.default_rng([cfg.seed, 3, zlib.crc32(voice.base_id.encode())])
        count = cfg.engine_settings.get(voice.engine, cfg.settings_per_voice)
        pitch_range = cfg.engine_pitch_ranges.get(voice.engine, cfg.pitch_range)
        settings = [(1.0, 1.0)] + [
            (rng.uniform(*cfg.speed_range), rng.uniform(*pitch_range)) for _ in range(count - 1)
        ]
        speakers[voice.base_id] = [
            Speaker(next_id + i, jitter(voice, s, p)) for i, (s, p) in enumerate(settings)
        ]
        next_id += len(settings)
    return speakers


def _candidates(path: Path, cfg: SynthConfig) -> list[Sentence]:
    """Speakable sentences of one novel whose estimated duration is well inside the range."""
    low, high = 1.2 * cfg.min_duration_s, 0.8 * cfg.max_duration_s
    return [s for s in novel_sentences(path) if low <= s.estimated_s <= high]


def select_sentences(
    candidates: list[list[Sentence]],
    target_s: float,
    taken: set[str],
    rng: np.random.Generator,
    excluded: frozenset[str] = frozenset(),
) -> list[list[Sentence]]:
    """Per novel, a random selection (in reading order) totalling about ``target_s`` estimated
    seconds, spread evenly over the novels; skips and extends ``taken`` transcripts, and skips
    sentences sharing a word 8-gram with ``excluded`` (:func:`word_ngrams`)."""
    chosen: list[list[Sentence]] = []
    remaining = target_s
    for i, sentences in enumerate(candidates):
        quota = remaining / (len(candidates) - i)
        picked: list[Sentence] = []
        got = 0.0
        for j in rng.permutation(len(sentences)):
            if got >= quota:
                break
            sentence = transcribe(sentences[j])
            if sentence is None or sentence.transcript in taken:
                continue
            if excluded and not excluded.isdisjoint(word_ngrams(sentence.transcript)):
                continue
            taken.add(sentence.transcript)
            picked.append(sentence)
            got += sentence.estimated_s
        remaining -= got
        chosen.append(sorted(picked, key=lambda s: s.index))
    return chosen


def _assign(
    chosen: list[list[Sentence]],
    chapters: list[int],
    pool: list[Voice],
    speakers: dict[str, list[Speaker]],
    subset: str,
    cfg: SynthConfig,
) -> list[Job]:
    """Cut each novel's sentences into blocks; each block is read by one random speaker."""
    rng = np.random.default_rng([cfg.seed, 4, SUBSETS.index(subset)])
    engines = sorted({v.engine for v in pool})
    weights = np.array([cfg.engine_weights.get(e, 0.0) for e in engines])
    if weights.sum() <= 0:
        weights = np.ones(len(engines))
    weights /= weights.sum()
    counters: dict[tuple[int, int], int] = defaultdict(int)
    block = cfg.utts_per_block if subset == "train" else cfg.utts_per_block_eval
    jobs = []
    for sentences, chapter in zip(chosen, chapters):
        for start in range(0, len(sentences), block):
            engine = engines[rng.choice(len(engines), p=weights)]
            mine = [v for v in pool if v.engine == engine]
            base = mine[rng.integers(len(mine))]
            speaker = speakers[base.base_id][rng.integers(len(speakers[base.base_id]))]
            for s in sentences[start : start + block]:
                utt = counters[speaker.id, chapter]
                counters[speaker.id, chapter] += 1
                seed = zlib.crc32(f"{cfg.seed}:{speaker.id}-{chapter}-{utt}".encode())
                jobs.append(
                    Job(cfg.subset_name(subset), speaker.id, chapter, utt, speaker.voice,
                        s.text, s.transcript, seed)
                )  # fmt: skip
    return jobs


def _novels_needed(files: list[Path], hours: float, cfg: SynthConfig) -> list[Path]:
    """The (seeded) first novels of ``files`` needed for ``hours`` at ``MIN_SECONDS_PER_NOVEL``
    each, in their sorted order: a small corpus does not read every novel."""
    count = min(len(files), math.ceil(hours * 3600.0 / MIN_SECONDS_PER_NOVEL))
    order = np.random.default_rng([cfg.seed, 6, len(files)]).permutation(len(files))
    return sorted(files[i] for i in order[:count])


def _kokoro_blends(voices: list[Voice], cfg: SynthConfig) -> list[Voice]:
    """``cfg.kokoro_blends`` new kokoro voices mixing the installed ones (seeded,
    :func:`asr.corpora.tts_kokoro.draw_blends`); a blend is in its main voice's speaker group."""
    mine = {v.name: v for v in voices if v.engine == "kokoro"}
    if not mine or cfg.kokoro_blends == 0:
        return []
    drawn = tts_kokoro.draw_blends({n: v.sex for n, v in mine.items()}, cfg.kokoro_blends, cfg.seed)
    return [Voice("kokoro", name, "", sex, mine[main].group_id) for name, sex, main in drawn]


def _voices(cfg: SynthConfig) -> list[Voice]:
    tts_kokoro.configure(cfg.kokoro_voices, cfg.kokoro_model)
    if "kokoro" in cfg.engines:
        tts_kokoro.require()  # one line naming the missing package, model or voices folder
    check_engines(cfg.engines)
    voices = available_voices(tuple(cfg.engines) + tuple(cfg.optional_engines))
    if cfg.voices:
        unknown = sorted(set(cfg.voices) - {v.base_id for v in voices})
        if unknown:
            raise SynthError(f"voices: {unknown[0]!r} is not an installed voice")
        voices = [v for v in voices if v.base_id in set(cfg.voices)]
    return voices + _kokoro_blends(voices, cfg)


def make_plan(
    cfg: SynthConfig, pool: multiprocessing.pool.Pool | None = None, sentences: bool = True
) -> Plan:
    """Split novels and voices, select sentences and assign them to speakers (deterministic).

    With ``sentences=False`` only the splits are made (``jobs`` is empty): cheap, for the lists.
    """
    voice_split = split_voices(_voices(cfg), cfg)
    paths = sorted(Path(cfg.text_dir).glob(cfg.text_glob))
    paths = [p for p in paths if p.is_file() and p.name.endswith((".txt", ".txt.gz"))]
    novels = split_novels(paths, cfg)
    chapters = {novel_name(p): i + 1 for i, p in enumerate(paths)}
    speakers = speakers_of(voice_split["train"] + voice_split["heldout"], cfg)
    taken: set[str] = set()
    excluded = excluded_ngrams(cfg.exclude_manifests)
    jobs: list[Job] = []
    for subset in ("test", "dev", "train") if sentences else ():
        files = _novels_needed(novels[subset], cfg.hours(subset), cfg)
        mapper = pool.imap if pool is not None else map
        candidates = list(mapper(partial(_candidates, cfg=cfg), files))
        rng = np.random.default_rng([cfg.seed, 5, SUBSETS.index(subset)])
        chosen = select_sentences(candidates, cfg.hours(subset) * 3600.0, taken, rng, excluded)
        voices = voice_split["train" if subset == "train" else "heldout"]
        ids = [chapters[novel_name(p)] for p in files]
        jobs.extend(_assign(chosen, ids, voices, speakers, subset, cfg))
    return Plan(novels, chapters, voice_split, speakers, jobs)


def _check_same_config(cfg: SynthConfig, saved: Path) -> None:
    """Save ``cfg`` with the corpus, or refuse to resume a corpus built with another config
    (its files would not match the new plan), or a non-empty folder that is not such a corpus
    (its files are not ours to overwrite)."""
    from asr import config

    if not saved.is_file():
        plan_only = {"novel_split.tsv", "voices.tsv"}  # what --plan-only leaves
        foreign = sorted(p.name for p in saved.parent.iterdir() if p.name not in plan_only)
        if foreign:
            raise SynthError(
                f"{saved.parent}: not a corpus built by asr synth-corpus (no {saved.name}, "
                f"holds {', '.join(foreign[:3])}); build into a new or empty folder"
            )
        config.save(cfg, saved)
        return
    before = config.load(SynthConfig, saved)
    changed = sorted(k for k, v in config.to_dict(cfg).items() if config.to_dict(before)[k] != v)
    if changed:
        raise SynthError(
            f"{saved.parent}: corpus was built with another config ({changed[0]} differs, see "
            f"{saved}); build into a new folder or delete it"
        )


def build_corpus(cfg: SynthConfig, out: str | Path, jobs: int = 1, render: bool = True) -> dict:
    """Plan, render and write the corpus under ``out`` (resumable); returns a summary dict with
    per-subset "utterances"/"hours"/"speakers" and "new_s", "wall_s", "rejected", "planned".
    ``render=False`` writes only novel_split.tsv and voices.tsv."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not render:
        plan = make_plan(cfg, sentences=False)
        write_novel_split(plan, cfg, out / "novel_split.tsv")
        write_voices(plan, out / "voices.tsv")
        return {"planned": 0}
    _check_same_config(cfg, out / "corpus.yaml")
    (out / "LibriSpeech").mkdir(exist_ok=True)
    tts_kokoro.configure(cfg.kokoro_voices, cfg.kokoro_model)  # before the workers fork
    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    pool = ctx.Pool(jobs, initializer=init_worker) if jobs > 1 else None
    try:
        plan = make_plan(cfg, pool)
        write_novel_split(plan, cfg, out / "novel_split.tsv")
        write_voices(plan, out / "voices.tsv")
        durations, stats = render_all(plan.jobs, cfg, out, pool)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if pool is not None:
            pool.terminate()
    summary: dict = dict(write_layout(plan.jobs, durations, out / "LibriSpeech"))
    summary.update(stats)
    summary["planned"] = len(plan.jobs)
    return summary
