"""Optimizers and learning-rate schedules through optax, with clipping and gradient accumulation."""

import jax
import jax.numpy as jnp
import optax

from seqjax import _validate
from seqjax._paths import path_names

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "warmup_cosine", "inverse_sqrt", "warmup_rsqrt")
DECAY_MASKS = ("all", "matrices")  # which parameters adamw's weight decay shrinks


def schedule(
  name: str, learning_rate: float, *, warmup_steps: int = 0, total_steps: int = 1, model_dim: int | None = None
) -> optax.Schedule:
  """constant; warmup_cosine (linear warmup to the peak, cosine decay to 0 at total_steps);
  inverse_sqrt, the 2017 paper's lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5),
  scaled by learning_rate (1.0 gives the paper's) and counted from step 1; warmup_rsqrt, the same
  shape with learning_rate as its peak (reached at step warmup_steps): no total, so a run may stop
  whenever validation says, at a rate that has not been annealed to 0."""
  _validate.choice("schedule", name, SCHEDULES)
  if not learning_rate > 0:
    raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
  if name == "constant":
    return optax.constant_schedule(learning_rate)
  if name == "warmup_cosine":
    if total_steps <= warmup_steps:
      raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps, total_steps, 0.0)
  _validate.positive_int("warmup_steps", warmup_steps)
  if name == "inverse_sqrt":
    _validate.positive_int("model_dim", model_dim)
    peak = learning_rate * (model_dim * warmup_steps) ** -0.5
  else:
    peak = learning_rate

  def rsqrt(count):  # peak * min(step / warmup, sqrt(warmup / step)), step counted from 1
    step = jnp.asarray(count, jnp.float32) + 1.0
    return peak * jnp.minimum(step / warmup_steps, (warmup_steps / step) ** 0.5)

  return rsqrt


def check_decay_mask(optimizer_name: str, weight_decay_mask: str) -> None:
  """weight_decay_mask must be one of DECAY_MASKS, and other than "all" only with adamw."""
  _validate.choice("weight_decay_mask", weight_decay_mask, DECAY_MASKS)
  if weight_decay_mask != "all" and optimizer_name != "adamw":
    raise ValueError(
      f"weight_decay_mask={weight_decay_mask!r} needs optimizer 'adamw' (the one that decays), got {optimizer_name!r}"
    )


def matrices(params):
  """True for each weight matrix or higher-rank kernel (matmul and convolution kernels, embedding
  and position tables), False for vectors and scalars (norm scales, LRU's per-channel recurrence)
  and for every bias: nanoGPT's configure_optimizers rule (rank >= 2), with biases also named
  ("bias", "*_bias"), as seqjax's multi-head projections keep theirs as [heads, head_dim].
  -> a tree of bools shaped like params (optax's mask)."""

  def decayed(path, p) -> bool:
    name = path_names(path)[-1]
    return jnp.ndim(p) >= 2 and not (name == "bias" or name.endswith("_bias"))

  return jax.tree_util.tree_map_with_path(decayed, params)


def optimizer(
  name: str,
  learning_rate: optax.ScalarOrSchedule,
  *,
  weight_decay: float = 0.0,
  weight_decay_mask: str = "all",
  adam_b2: float = 0.999,
  clip_norm: float | None = None,
  clip_value: float | None = None,
  accumulate_steps: int = 1,
) -> optax.GradientTransformation:
  """clip (by global norm and/or by value) -> sgd | adam | adamw, applied every `accumulate_steps`
  micro-batches to their mean gradient (optax.MultiSteps). weight_decay_mask: which parameters
  adamw decays: "all", or "matrices" (see `matrices`; adamw only). adam_b2: adam's and adamw's
  second-moment decay."""
  _validate.choice("optimizer", name, OPTIMIZERS)
  check_decay_mask(name, weight_decay_mask)
  _validate.positive_int("accumulate_steps", accumulate_steps)
  for arg, value in (("clip_norm", clip_norm), ("clip_value", clip_value)):
    if value is not None and not value > 0:
      raise ValueError(f"{arg} must be > 0, got {value}")
  parts = []
  if clip_value is not None:
    parts.append(optax.clip(clip_value))
  if clip_norm is not None:
    parts.append(optax.clip_by_global_norm(clip_norm))
  if name == "sgd":
    parts.append(optax.sgd(learning_rate))
  elif name == "adam":
    parts.append(optax.adam(learning_rate, b2=adam_b2))
  else:
    mask = matrices if weight_decay_mask == "matrices" else None
    parts.append(optax.adamw(learning_rate, b2=adam_b2, weight_decay=weight_decay, mask=mask))
  tx = optax.chain(*parts)
  return optax.MultiSteps(tx, accumulate_steps) if accumulate_steps > 1 else tx
