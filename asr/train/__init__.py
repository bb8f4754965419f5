"""Training: optimisers and schedules, checkpoints, the training loop, distributed set-up."""
