"""The LSTM LM trainer: streamed text batches, through :mod:`asr.train.engine`.

:func:`train_lm` runs one experiment in ``exp_dir`` (same layout as the acoustic trainer)::

    exp_dir/config.yaml      the resolved LMTrainConfig
    exp_dir/tokenizer/       the tokenizer
    exp_dir/log.jsonl        train/valid scalars; exp_dir/tensorboard/; exp_dir/curves.png
    exp_dir/checkpoints/     asr.train.checkpoint (ranked by validation loss)
    exp_dir/lm/              the exported LM (best checkpoints averaged): asr.lm.io

A previous run in ``exp_dir`` needs ``resume`` or ``overwrite`` (:mod:`asr.train.exp`), checked
before the first step; an ``export_dir`` outside it must be new or empty, or (``overwrite``) an
LM folder. Resuming restores weights, optimizer, grad scaler, the stream position and every RNG
state, so a killed run continues with the same batches and the same losses.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from asr import config as config_io
from asr.errors import AsrError
from asr.lm.io import load_lm, save_lm
from asr.lm.lstm import LSTMLM
from asr.lm.text_data import LMBatch, LMBatchStream, make_batches, read_valid_sentences
from asr.text.tokenizer import CharTokenizer, Tokenizer, load_tokenizer
from asr.train import distributed as D
from asr.train.config import LMTrainConfig
from asr.train.engine import Engine, RunPlan, join_job, run_distributed
from asr.train.exp import check_exp_not_input, prepare_experiment
from asr.train.runtime import seed_everything


def evaluate_nll(
    model: LSTMLM, sentences: Sequence[Sequence[int]], max_batch_tokens: int = 16384
) -> tuple[float, int]:
    """Total negative log-likelihood (nats) and token count (``</s>`` included) of sentences,
    scored in eval mode by :meth:`LSTMLM.score_sentences` (as ``asr lm-ppl`` scores them)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for chunk in make_batches([list(s) for s in sentences], max_batch_tokens, 256):
        total -= float(model.score_sentences(chunk).sum())
        count += sum(len(s) + 1 for s in chunk)
    model.train(was_training)
    return total, count


class LMTrainer:
    """One LM training run; see the module docstring. Build it, then :meth:`run`.

    The engine (``self.engine``) owns the optimizer, checkpoints and loop; this class builds the
    LM and the text stream and is the engine's task: the token loss, validation NLL, export.
    """

    def __init__(
        self,
        cfg: LMTrainConfig,
        tokenizer: Tokenizer,
        text_files: Sequence[str | Path],
        exp_dir: str | Path,
        valid_files: Sequence[str | Path] = (),
        info: D.DistInfo | None = None,
    ) -> None:
        self.cfg, self.tokenizer, self.exp_dir = cfg, tokenizer, Path(exp_dir)
        self.info = join_job(cfg.engine, info)
        seed_everything(cfg.engine.seed)
        model = LSTMLM(cfg.model, tokenizer.vocab)
        if cfg.init_from:
            init_lm_from(model, cfg.init_from)
        self.stream = LMBatchStream(
            text_files,
            tokenizer,
            cfg.data,
            seed=cfg.engine.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
            exclude_valid=not valid_files,
        )
        self.valid = read_valid_sentences(tokenizer, cfg.data, valid_files, text_files)
        self.export_dir: Path | None = None
        plan = RunPlan(  # a stream's length is unknown: max_steps is the schedule's horizon
            total_steps=max(cfg.engine.max_steps, 1),
            best_metric=cfg.best_metric,
            validates=bool(self.valid),
            validate_at_checkpoints=True,
            rate_name="tokens_per_s",
            data_key="stream",
        )
        self.engine = Engine(
            cfg.engine, cfg.optim, plan, model, self.stream, self, self.exp_dir, self.info
        )
        self.model: LSTMLM = self.engine.model  # type: ignore[assignment]

    # ------------------------------------------------------------------------------ task
    def loss(self, forward: Callable[..., Any], batch: LMBatch) -> tuple[Tensor, float, float]:
        """Mean cross-entropy per token of one batch (weight and work: its tokens)."""
        batch = batch.to(self.engine.device)
        logits, _ = forward(batch.inputs)
        nll = torch.nn.functional.cross_entropy(
            logits.float().transpose(1, 2), batch.targets, reduction="none"
        )
        loss = (nll * batch.mask).sum() / batch.num_tokens
        return loss, float(batch.num_tokens), float(batch.num_tokens)

    def _eval_model(self) -> LSTMLM:
        if self.engine.ema is None:
            return self.model
        model = LSTMLM(self.cfg.model, self.tokenizer.vocab)
        model.load_state_dict(self.engine.ema)
        return model.to(self.engine.device)

    def validate(self) -> dict[str, float]:
        """Loss (nats/token), perplexity and bits per token on the validation sentences (the
        EMA weights when EMA is on)."""
        if not self.valid:
            return {}
        nll, count = evaluate_nll(self._eval_model(), self.valid, self.cfg.valid_batch_tokens)
        loss = nll / max(count, 1)
        return {"loss": loss, "ppl": math.exp(loss), "bits_per_token": loss / math.log(2)}

    def export(self, state: dict[str, Tensor]) -> Path:
        """Write the averaged weights as an LM folder (``export_dir``, default ``exp_dir/lm``)."""
        model = LSTMLM(self.cfg.model, self.tokenizer.vocab)
        model.load_state_dict(state)
        return save_lm(model, self.tokenizer, self.export_dir or self.exp_dir / "lm")

    # ------------------------------------------------------------------------------- run
    def run(
        self,
        resume: bool = False,
        export_dir: str | Path | None = None,
        overwrite: bool = False,
    ) -> Path | None:
        """Train to the end, then export the LM (rank 0 returns its folder); a previous run
        in ``exp_dir`` needs ``resume`` or ``overwrite`` (checked first)."""
        if self.info.is_main:  # every rank checked in train_lm(); rank 0 alone removes
            check_lm_outputs(self.exp_dir, export_dir, resume, overwrite, remove=True)
        D.barrier(self.info)
        if self.info.is_main:
            config_io.save(self.cfg, self.exp_dir / "config.yaml")
            self.tokenizer.save(self.exp_dir / "tokenizer")
        self.export_dir = Path(export_dir) if export_dir is not None else None
        return self.engine.run(resume)


def init_lm_from(model: LSTMLM, lm_dir: str | Path) -> None:
    """Copy the weights of an exported LM folder into ``model`` (``init_from``).

    Raises:
        AsrError: the folder's vocabulary or model config differs from ``model``'s (the message
            names the first differing field); LMError for an unreadable folder.
    """
    pretrained, _ = load_lm(lm_dir)
    if pretrained.vocab != model.vocab:
        raise AsrError(f"init_from {lm_dir}: its vocabulary differs from the tokenizer's")
    if pretrained.cfg != model.cfg:
        ours, theirs = dataclasses.asdict(model.cfg), dataclasses.asdict(pretrained.cfg)
        field = next(k for k in ours if ours[k] != theirs[k])
        raise AsrError(
            f"init_from {lm_dir}: model.{field} is {theirs[field]!r} there, "
            f"{ours[field]!r} in this config"
        )
    model.load_state_dict({k: v.float() for k, v in pretrained.state_dict().items()})


def check_lm_outputs(
    exp_dir: str | Path,
    export_dir: str | Path | None,
    resume: bool,
    overwrite: bool,
    remove: bool = False,
) -> None:
    """Check the experiment folder (and an ``export_dir`` outside it) before any work."""
    from asr.io.folders import LSTM_LM, check_model_out
    from asr.io.outputs import same_or_inside

    prepare_experiment(exp_dir, "lm", resume, overwrite, remove=remove)
    if export_dir is not None and not same_or_inside(Path(export_dir), Path(exp_dir)):
        check_model_out(export_dir, LSTM_LM, overwrite=overwrite)


def train_lm(
    cfg: LMTrainConfig,
    tokenizer_dir: str | Path | Tokenizer,
    text_files: Sequence[str | Path],
    exp_dir: str | Path,
    valid_files: Sequence[str | Path] = (),
    resume: bool = False,
    export_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path | None:
    """Train an LSTM LM (see :class:`LMTrainer`); rank 0 returns the exported LM folder.

    ``tokenizer_dir`` is a tokenizer folder, a :class:`Tokenizer`, or ``"char"`` (the default
    29-symbol character tokenizer, unless a folder of that name exists). ``exp_dir`` may not be
    or hold one of the run's inputs (:func:`asr.train.exp.check_exp_not_input`)."""
    inputs = [("init_from LM", cfg.init_from), *(("training text", t) for t in text_files)]
    inputs += [("validation text", t) for t in valid_files]
    if not isinstance(tokenizer_dir, Tokenizer):
        inputs.append(("tokenizer folder", tokenizer_dir))
    check_exp_not_input(exp_dir, inputs)
    check_lm_outputs(exp_dir, export_dir, resume, overwrite)  # before reading anything
    tokenizer = _tokenizer(tokenizer_dir)
    build = functools.partial(LMTrainer, cfg, tokenizer, text_files, exp_dir, valid_files)
    return run_distributed(
        cfg.engine, build, resume=resume, export_dir=export_dir, overwrite=overwrite
    )


def _tokenizer(spec: str | Path | Tokenizer) -> Tokenizer:
    """A tokenizer object, a folder's, or the default character tokenizer for ``"char"``."""
    if isinstance(spec, Tokenizer):
        return spec
    if str(spec) == "char" and not Path(spec).exists():
        return CharTokenizer()
    return load_tokenizer(spec)
