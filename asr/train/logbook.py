"""Training logs: JSON lines, TensorBoard scalars and PNG curves (rank 0 only)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from asr.io.atomic import atomic_path, atomic_write_text

LOG_FILE = "log.jsonl"


def read_log(exp_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of ``exp_dir/log.jsonl`` (``{"step": int, "<name>": value, ...}``)."""
    path = Path(exp_dir) / LOG_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


class TrainLogger:
    """Appends scalars to log.jsonl and TensorBoard; draws the curves at the end.

    Args:
        exp_dir: the experiment folder.
        enabled: False on ranks other than 0 (then every method does nothing).
        resume_step: records after this step (written by a run that was then killed) are dropped
            so a resumed run's log has no duplicates.
    """

    def __init__(self, exp_dir: str | Path, enabled: bool = True, resume_step: int = 0) -> None:
        self.exp_dir = Path(exp_dir)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_log(self.exp_dir) if r["step"] <= resume_step]
        atomic_write_text(self.exp_dir / LOG_FILE, "".join(json.dumps(r) + "\n" for r in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(self.exp_dir / "tensorboard"), purge_step=resume_step + 1
            )
        except ImportError:  # tensorboard is in the `train` extra
            self.writer = None

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Record ``scalars`` at ``step``."""
        if not self.enabled:
            return
        record = {"step": step, **{k: float(v) for k, v in scalars.items()}}
        with open(self.exp_dir / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, step)

    def plot_curves(self, out: str | Path) -> Path | None:
        """Draw the loss and WER curves as PNG (None when matplotlib is missing or no data)."""
        if not self.enabled:
            return None
        return plot_training_curves(read_log(self.exp_dir), out)

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.writer is not None:
            self.writer.close()


def plot_training_curves(records: list[dict[str, Any]], out: str | Path) -> Path | None:
    """Plot train/valid loss and valid WER/CER against the step into a PNG file (the error-rate
    panel only when the run was validated)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in records if key in r and math.isfinite(r[key])]
        return [p[0] for p in pts], [p[1] for p in pts]

    if not records:
        return None
    errors = [key for key in ("valid/wer", "valid/cer") if series(key)[0]]
    if errors:
        fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4))
    else:  # a run without a validation set: no empty error-rate panel
        fig, ax_loss = plt.subplots(1, 1, figsize=(5.5, 4))
    for key, label in (("train/loss", "train"), ("valid/loss", "valid")):
        xs, ys = series(key)
        if xs:
            ax_loss.plot(xs, ys, marker="." if label == "valid" else None, label=label)
    ax_loss.set(xlabel="step", ylabel="CTC loss / token", title="Loss")
    if ax_loss.get_legend_handles_labels()[0]:
        ax_loss.legend()
    for key in errors:
        xs, ys = series(key)
        ax_err.plot(xs, [100 * y for y in ys], marker="o", label=key.split("/")[1].upper())
    if errors:
        ax_err.set(xlabel="step", ylabel="%", title="Validation error rate")
        ax_err.legend()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(out)
