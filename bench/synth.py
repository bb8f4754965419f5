"""Render rate of the synthetic corpus builder per TTS engine, and the time for 20 h of train.

    .venv/bin/python -m bench.synth [--jobs 2] [--seconds 300] [--config egs/synth/conf/corpus.yaml]

For each installed engine, renders about ``--seconds`` of speech (ELTeC sentences as the builder
selects them, the engine's train voices and rate/pitch settings, the config's noise/reverb) with
``--jobs`` worker processes, exactly as ``asr synth-corpus`` does
(``asr.corpora.synth_render.render_job``),
and reports seconds of speech per wall-clock second. The time for 20 h of training speech is
extrapolated from the engine shares in the config. The load average is recorded: the rates are
shared-machine numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import resource
import tempfile
import time
from functools import partial
from pathlib import Path

from asr.corpora import synth, synth_config, synth_render
from bench.report import markdown_table, write_section

TRAIN_HOURS = 20.0


def _engine_jobs(plan: synth_config.Plan, engine: str, seconds: float) -> list[synth_config.Job]:
    """Plan jobs re-voiced with ``engine``'s train speakers, about ``seconds`` of speech."""
    voices = [v for v in plan.voice_split["train"] if v.engine == engine]
    speakers = [s for v in voices for s in plan.speakers[v.base_id]]
    jobs, total = [], 0.0
    for i, job in enumerate(plan.jobs):
        if total >= seconds:
            break
        speaker = speakers[(i * 7919) % len(speakers)]
        jobs.append(dataclasses.replace(job, speaker=speaker.id, voice=speaker.voice, utt=i))
        total += len(job.transcript) / 15.0 / speaker.voice.speed
    return jobs


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    cfg: synth_config.SynthConfig, engine: str, jobs: list[synth_config.Job], workers: int
) -> list:
    """Render ``jobs`` into a temporary folder; returns a table row."""
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        render = partial(synth_render.render_job, cfg=cfg, root=Path(tmp))
        ctx = multiprocessing.get_context("fork")
        cpu0, start = _children_cpu_s(), time.monotonic()
        pool = ctx.Pool(workers)
        results = list(pool.imap_unordered(render, jobs, chunksize=2))
        pool.close()
        pool.join()  # workers (and their festival processes) exit: their CPU time is counted
        wall, cpu = time.monotonic() - start, _children_cpu_s() - cpu0
    speech = sum(seconds for _, seconds, _ in results if seconds is not None)
    kept = sum(seconds is not None for _, seconds, _ in results)
    idle_min = TRAIN_HOURS * 3600 / (speech / cpu * workers) / 60
    row = [engine, kept, round(speech, 1), round(wall, 1), round(cpu, 1), speech / wall]
    return [*row, speech / cpu, TRAIN_HOURS * 3600 / (speech / wall) / 60, idle_min]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="egs/synth/conf/corpus.yaml")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=300.0, help="speech per engine")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    cfg = synth_config.load_config(args.config)
    hours = args.seconds * 1.3 / 3600
    plan = synth.make_plan(dataclasses.replace(cfg, hours_train=hours, hours_dev=0, hours_test=0))
    engines = sorted({v.engine for v in plan.voice_split["train"]})
    load_before = os.getloadavg()
    rows = [measure(cfg, e, _engine_jobs(plan, e, args.seconds), args.jobs) for e in engines]
    load_after = os.getloadavg()
    weights = {e: cfg.engine_weights.get(e, 0.0) for e in engines}
    total_w = sum(weights.values())
    mix_min = sum(weights[row[0]] / total_w * row[7] for row in rows)
    idle_min = sum(weights[row[0]] / total_w * row[8] for row in rows)
    mix = ", ".join(f"{e} {w / total_w:.0%}" for e, w in weights.items())
    header = ["engine", "utts", "speech s", "wall s", "CPU s", "speech/wall", "speech/CPU"]
    header += ["min for 20 h (as loaded)", f"min for 20 h ({args.jobs} idle cores)"]
    body = (
        f"`python -m bench.synth --jobs {args.jobs} --seconds {args.seconds:g}` "
        f"({args.config}: noise {cfg.noise_prob}, reverb {cfg.reverb_prob}). "
        f"Load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, on a "
        "machine shared with other jobs. CPU s: user + system time of the worker processes and "
        "the TTS engines they ran; the idle-core column assumes the jobs get whole cores "
        "(speech per CPU second x jobs).\n\n"
        + markdown_table(header, rows)
        + f"\n\n20 h of training speech with the config's engine mix ({mix}): "
        f"**{mix_min:.0f} min** at the load measured, **{idle_min:.0f} min** on {args.jobs} "
        "idle cores (extrapolated from the rates above).\n"
    )
    write_section("synth", "Synthetic corpus render rate (bench/synth.py)", body)
    print(body)


if __name__ == "__main__":
    main()
