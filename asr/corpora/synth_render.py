"""Rendering a planned synthetic corpus (:mod:`asr.corpora.synth`): one utterance per job.

:func:`render_job` synthesises one planned utterance, adds its recording conditions
(:func:`degrade`) and writes the FLAC; :func:`render_all` renders a plan's jobs, in a process pool
when given one, skipping finished and rejected ones, so an interrupted build resumes. On a terminal
it draws a progress bar; in a log it writes a plain line every 5 % instead of bar redraws.
"""

from __future__ import annotations

import multiprocessing.pool
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.corpora import synth_effects as fx
from asr.corpora.synth_config import Job, SynthConfig
from asr.corpora.tts import TTSError, synthesize
from asr.io.audio import audio_info, save_audio


def degrade(samples: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Recording conditions of one utterance: silence padding, reverb, noise, level."""
    from asr.data import augment  # imports torch: only when a corpus asks for it

    rate = cfg.sample_rate
    samples = fx.pad_silence(
        samples, rate, rng.uniform(*cfg.pad_s_range), rng.uniform(*cfg.pad_s_range)
    )
    if rng.random() < cfg.reverb_prob:
        rir = augment.synthetic_rir(rng.uniform(*cfg.rt60_s_range), rate, rng)
        samples = augment.apply_rir(samples, rir)
    if rng.random() < cfg.noise_prob:
        noise = fx.coloured_noise(samples.size, float(rng.integers(3)), rng)
        samples = augment.add_noise(samples, noise, rng.uniform(*cfg.snr_db_range))
    return fx.set_peak(samples, rng.uniform(*cfg.peak_dbfs_range))


def render_job(job: Job, cfg: SynthConfig, root: Path) -> tuple[Job, float | None, str]:
    """Render one utterance unless its FLAC exists; returns (job, seconds or None, note).

    The note is "" for a new file, "exists" for a file already there, else why it was dropped.
    """
    out = root / job.rel_path
    if out.is_file():
        return job, audio_info(out).duration_s, "exists"
    try:
        samples = synthesize(job.voice, job.text, cfg.sample_rate, job.seed)
    except TTSError as err:
        return job, None, str(err)
    samples = degrade(samples, cfg, np.random.default_rng(job.seed))
    seconds = samples.size / cfg.sample_rate
    if not cfg.min_duration_s <= seconds <= cfg.max_duration_s:
        return (
            job,
            None,
            f"duration {seconds:.2f} s outside [{cfg.min_duration_s}, {cfg.max_duration_s}]",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    save_audio(out, samples, cfg.sample_rate)
    return job, seconds, ""


def _read_rejected(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as fh:
        return {line.split("\t", 1)[0] for line in fh if "\t" in line}


def init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"


def render_all(
    jobs: list[Job], cfg: SynthConfig, out: Path, pool: multiprocessing.pool.Pool | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Render ``jobs`` (skipping rejected and finished ones) with a progress bar.

    Returns:
        ``(durations, stats)``: seconds per kept utterance id; stats with "new_s" (seconds of
        speech rendered now), "wall_s", "rejected" (count, all runs).
    """
    root = out / "LibriSpeech"
    rejected = _read_rejected(out / "rejected.tsv")
    todo = [j for j in jobs if j.utt_id not in rejected]
    durations: dict[str, float] = {}
    kept_s = 0.0  # sum of durations, kept as it grows (not re-summed per utterance)
    stats = {"new_s": 0.0, "wall_s": 0.0, "rejected": float(len(rejected))}
    start = time.monotonic()
    mapper = partial(pool.imap_unordered, chunksize=4) if pool is not None else map
    results = mapper(partial(render_job, cfg=cfg, root=root), todo)
    with (out / "rejected.tsv").open("a", encoding="utf-8") as log:
        on_terminal = sys.stderr.isatty()  # in a log, bar redraws would be thousands of lines
        bar = tqdm(results, total=len(todo), unit="utt", desc="rendering", smoothing=0.05,
                   disable=not on_terminal)  # fmt: skip
        every = max(1, len(todo) // 20)
        for done, (job, seconds, note) in enumerate(bar, start=1):
            if seconds is None:
                log.write(f"{job.utt_id}\t{note}\n")
                log.flush()
                stats["rejected"] += 1
            else:
                durations[job.utt_id] = seconds
                kept_s += seconds
                stats["new_s"] += seconds if note != "exists" else 0.0
            hours = kept_s / 3600
            bar.set_postfix(hours=f"{hours:.2f}", refresh=False)
            if not on_terminal and (done % every == 0 or done == len(todo)):
                print(f"rendering: {done}/{len(todo)} utterances, {hours:.2f} h kept, "
                      f"{time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    stats["wall_s"] = time.monotonic() - start
    return durations, stats
