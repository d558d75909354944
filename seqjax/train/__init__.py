"""Training: losses, optimizers, gradient health, truncated BPTT, checkpoints, sharding, the fit loop."""

from seqjax.train.config import TrainConfig
from seqjax.train.grad_health import describe, gradient_health
from seqjax.train.losses import classification_cross_entropy, token_cross_entropy
from seqjax.train.optim import optimizer, schedule
from seqjax.train.sharding import make_mesh, shard_batch, shard_params
from seqjax.train.step import TrainState, init_state, make_eval_step, make_train_step, split_model
from seqjax.train.trainer import FitResult, fit

__all__ = [
  "FitResult",
  "TrainConfig",
  "TrainState",
  "classification_cross_entropy",
  "describe",
  "fit",
  "gradient_health",
  "init_state",
  "make_eval_step",
  "make_mesh",
  "make_train_step",
  "optimizer",
  "schedule",
  "shard_batch",
  "shard_params",
  "split_model",
  "token_cross_entropy",
]
