"""The training loop: steps, evaluation, LR schedule, checkpoints, resume rules, metrics."""
