"""Validation during training: greedy-decode a dataset (sharded over ranks) and score it."""

from __future__ import annotations

import torch

from asr.data.dataset import SpeechDataset, make_dataloader
from asr.data.sampler import DynamicBucketSampler
from asr.decode.greedy import greedy_decode
from asr.models.ctc import CTCModel, ctc_loss
from asr.scoring.convention import comparable
from asr.scoring.wer import score
from asr.text.tokenizer import Tokenizer
from asr.train import distributed as D


@torch.no_grad()
def validate(
    model: CTCModel,
    dataset: SpeechDataset,
    tokenizer: Tokenizer,
    info: D.DistInfo,
    max_batch_seconds: float = 300.0,
) -> dict[str, float]:
    """Greedy WER, CER and mean CTC loss of ``model`` on ``dataset``.

    Each rank decodes its shard; hypotheses are gathered so every rank returns the same numbers.

    Args:
        model: the acoustic model (put in eval mode here, restored afterwards).
        dataset: utterances with reference text (no augmentation).
        tokenizer: turns token ids into text.
        info: this process's place in the job.
        max_batch_seconds: padded audio seconds per decoding batch (default 300).

    Returns:
        ``{"wer": ..., "cer": ..., "loss": ...}`` (fractions, not percent).
    """
    sampler = DynamicBucketSampler(
        dataset.durations,
        max_batch_seconds=max_batch_seconds,
        shuffle=False,
        rank=info.rank,
        world_size=info.world_size,
    )
    loader = make_dataloader(dataset, sampler, num_workers=0, persistent_workers=False)
    was_training = model.training
    model.eval()
    hyps: dict[str, str] = {}
    loss_sum, count = 0.0, 0
    for batch in loader:
        batch = batch.to(model.device)
        log_probs, out_lengths = model(batch.waveforms, batch.lengths)
        loss = ctc_loss(log_probs, out_lengths, batch.targets, batch.target_lengths)
        loss_sum += float(loss) * len(batch)
        count += len(batch)
        for utt_id, hyp in zip(batch.utt_ids, greedy_decode(log_probs, out_lengths, tokenizer)):
            hyps[utt_id] = hyp.text or ""
    model.train(was_training)
    merged: dict[str, str] = {}
    for part in D.all_gather_objects(hyps, info):
        merged.update(part)  # type: ignore[arg-type]
    totals = D.all_reduce_sum([loss_sum, float(count)], info)
    refs = {dataset.utt_id(i): u.text for i, u in enumerate(dataset.utterances)}
    refs, merged, _ = comparable(refs, merged)  # as asr score: normalised if conventions differ
    report = score(refs, merged, ref_name="validation manifest", hyp_name="decoded")
    return {"wer": report.wer, "cer": report.cer, "loss": totals[0] / max(totals[1], 1.0)}
