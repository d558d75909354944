"""The training configuration shared by every experiment; experiments nest it in their own config
dataclass and parse overrides with tyro (`--train.learning-rate 3e-4`)."""

import dataclasses
from typing import Annotated, TypeVar

import tyro

from seqjax import _validate
from seqjax.train.optim import OPTIMIZERS, SCHEDULES, check_decay_mask
from seqjax.train.step import NONFINITE_POLICIES

_T = TypeVar("_T")
# Fields that act only when `fit` has a workdir: not offered on the experiments' command lines
# (tyro leaves them out), which train without one. From Python they work as any field.
WorkdirOnly = Annotated[_T, tyro.conf.Suppress]

PRECISIONS = {"fp32": None, "bf16": "bfloat16"}  # compute dtype; parameters and optimizer state stay float32


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 1000
  batch_size: int = 32  # global, over all devices and hosts
  learning_rate: float = 1e-3
  optimizer: str = "adam"  # sgd | adam | adamw
  schedule: str = "constant"  # constant | warmup_cosine | inverse_sqrt | warmup_rsqrt
  warmup_steps: int = 0
  weight_decay: float = 0.0
  adam_b2: float = 0.999  # adam/adamw second-moment decay (optax's default; the 2017 Transformer: 0.98)
  weight_decay_mask: str = "all"  # adamw decays all | matrices (rank >= 2: kernels, embeddings; not biases, scales)
  clip_norm: float | None = 1.0  # clip gradients by global norm
  clip_value: float | None = None  # clip each gradient entry to [-v, v]
  accumulate_steps: int = 1  # micro-batches per update
  seed: int = 0
  log_every: int = 10
  eval_every: int = 0  # with fit(evaluate=...): evaluate every this many steps (0: only at the last step)
  save_every: WorkdirOnly[int] = 0  # 0: only at the end (needs a workdir)
  keep: WorkdirOnly[int] = 3  # checkpoints kept
  nonfinite: str = "skip"  # on a NaN/Inf gradient or update: skip the update, or stop the run
  skip_limit: int = 20  # with nonfinite="skip": stop (FloatingPointError) after this many skips in a row
  vanishing_threshold: float = 1e-7  # per-parameter gradient norm below: flagged vanishing
  exploding_threshold: float = 1e3  # above: flagged exploding
  precision: str = "fp32"  # fp32 | bf16 (compute dtype)
  data_parallel: int = -1  # mesh "data" axis; -1: all devices not used by model_parallel
  model_parallel: int = 1  # mesh "model" axis (Transformer tensor parallelism)
  distributed: bool = False  # jax.distributed.initialize (multi-host)
  tensorboard: WorkdirOnly[bool] = False  # also write TensorBoard events (tensorboardX) to the workdir
  progress: bool = True  # progress bar with ETA

  def check(self) -> "TrainConfig":
    """Raises ValueError on the first bad setting, naming it; returns self."""
    _validate.fields(
      self,
      positive=("steps", "batch_size", "log_every", "keep", "accumulate_steps", "model_parallel", "skip_limit"),
      nonnegative=("warmup_steps", "save_every", "seed", "eval_every"),
      positive_numbers=("learning_rate", "clip_norm", "clip_value"),
      nonnegative_numbers=("weight_decay", "vanishing_threshold"),
      booleans=("distributed", "tensorboard", "progress"),
      optional=("clip_norm", "clip_value"),
      optimizer=OPTIMIZERS,
      schedule=SCHEDULES,
      nonfinite=NONFINITE_POLICIES,
      precision=PRECISIONS,
    )
    check_decay_mask(self.optimizer, self.weight_decay_mask)
    if isinstance(self.adam_b2, bool) or not (isinstance(self.adam_b2, int | float) and 0.0 <= self.adam_b2 < 1.0):
      raise ValueError(f"adam_b2 must be a number in [0, 1), got {self.adam_b2!r}")
    low = self.vanishing_threshold
    _validate.finite_number("exploding_threshold", self.exploding_threshold, low=low, inclusive=False)
    if self.data_parallel != -1:
      _validate.positive_int("data_parallel", self.data_parallel)
    return self
