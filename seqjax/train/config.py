"""The training configuration shared by every experiment; experiments nest it in their own config
dataclass and parse overrides with tyro (`--train.learning-rate 3e-4`)."""

import dataclasses

from seqjax import _validate
from seqjax.train.optim import OPTIMIZERS, SCHEDULES
from seqjax.train.step import NONFINITE_POLICIES

PRECISIONS = {"fp32": None, "bf16": "bfloat16"}  # compute dtype; parameters and optimizer state stay float32


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 1000
  batch_size: int = 32  # global, over all devices and hosts
  learning_rate: float = 1e-3
  optimizer: str = "adam"  # sgd | adam | adamw
  schedule: str = "constant"  # constant | warmup_cosine | inverse_sqrt
  warmup_steps: int = 0
  weight_decay: float = 0.0
  clip_norm: float | None = 1.0  # clip gradients by global norm
  clip_value: float | None = None  # clip each gradient entry to [-v, v]
  accumulate_steps: int = 1  # micro-batches per update
  seed: int = 0
  log_every: int = 10
  save_every: int = 0  # 0: only at the end (needs a workdir)
  keep: int = 3  # checkpoints kept
  nonfinite: str = "skip"  # on a NaN/Inf gradient: skip the update, or stop the run
  vanishing_threshold: float = 1e-7  # per-parameter gradient norm below: flagged vanishing
  exploding_threshold: float = 1e3  # above: flagged exploding
  precision: str = "fp32"  # fp32 | bf16 (compute dtype)
  data_parallel: int = -1  # mesh "data" axis; -1: all devices not used by model_parallel
  model_parallel: int = 1  # mesh "model" axis (Transformer tensor parallelism)
  distributed: bool = False  # jax.distributed.initialize (multi-host)
  tensorboard: bool = False  # also write TensorBoard events (tensorboardX)
  progress: bool = True  # progress bar with ETA

  def check(self) -> "TrainConfig":
    """Raises ValueError on a bad setting, naming it; returns self."""
    for name in ("steps", "batch_size", "log_every", "keep", "accumulate_steps", "model_parallel"):
      _validate.positive_int(name, getattr(self, name))
    if not self.learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
    _validate.choice("optimizer", self.optimizer, OPTIMIZERS)
    _validate.choice("schedule", self.schedule, SCHEDULES)
    _validate.choice("nonfinite", self.nonfinite, NONFINITE_POLICIES)
    _validate.choice("precision", self.precision, PRECISIONS)
    if self.warmup_steps < 0 or self.save_every < 0:
      raise ValueError("warmup_steps and save_every must be >= 0")
    if self.data_parallel != -1:
      _validate.positive_int("data_parallel", self.data_parallel)
    return self
