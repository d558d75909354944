"""Optimizers and learning-rate schedules through optax, with clipping and gradient accumulation."""

import jax.numpy as jnp
import optax

from seqjax import _validate

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "warmup_cosine", "inverse_sqrt")


def schedule(
  name: str, learning_rate: float, *, warmup_steps: int = 0, total_steps: int = 1, model_dim: int | None = None
) -> optax.Schedule:
  """constant; warmup_cosine (linear warmup to the peak, cosine decay to 0 at total_steps);
  inverse_sqrt, the 2017 paper's lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5),
  scaled by learning_rate (1.0 gives the paper's) and counted from step 1."""
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
  _validate.positive_int("model_dim", model_dim)

  def inverse_sqrt(count):
    step = jnp.asarray(count, jnp.float32) + 1.0
    return learning_rate * model_dim**-0.5 * jnp.minimum(step**-0.5, step * warmup_steps**-1.5)

  return inverse_sqrt


def optimizer(
  name: str,
  learning_rate: optax.ScalarOrSchedule,
  *,
  weight_decay: float = 0.0,
  clip_norm: float | None = None,
  clip_value: float | None = None,
  accumulate_steps: int = 1,
) -> optax.GradientTransformation:
  """clip (by global norm and/or by value) -> sgd | adam | adamw, applied every `accumulate_steps`
  micro-batches to their mean gradient (optax.MultiSteps)."""
  _validate.choice("optimizer", name, OPTIMIZERS)
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
    parts.append(optax.adam(learning_rate))
  else:
    parts.append(optax.adamw(learning_rate, weight_decay=weight_decay))
  tx = optax.chain(*parts)
  return optax.MultiSteps(tx, accumulate_steps) if accumulate_steps > 1 else tx
