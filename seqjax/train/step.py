"""The train state and the jitted train and eval steps, pure functions of a parameter pytree.

A model is split once (`nnx.split(model, nnx.Param, ...)`): the steps take and return the
parameter pytree and merge it with the graph definition inside `jax.jit`, so the same code
runs on one CPU, many devices (GSPMD propagates the inputs' shardings) or many hosts.

loss_fn(model, batch, rng) -> (scalar loss, dict of scalar metrics).
"""

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from seqjax import _validate
from seqjax.train.grad_health import all_finite, gradient_health

NONFINITE_POLICIES = ("skip", "stop")


class TrainState(struct.PyTreeNode):
  step: jax.Array  # [] int32: updates applied so far
  params: Any  # nnx.State of nnx.Param, float32 master weights
  opt_state: Any
  rng: jax.Array  # [2] uint32 key data (plain data, so it checkpoints)


def split_model(model: nnx.Module):
  """-> (graphdef, params, rest): rest is the model's non-parameter state, held constant."""
  return nnx.split(model, nnx.Param, ...)


# optax mixes Python floats with its int32 counters, which strict dtype promotion rejects:
# its calls run under standard promotion, and nothing else does.


def optimizer_init(tx: optax.GradientTransformation, params):
  with jax.numpy_dtype_promotion("standard"):
    return jax.jit(tx.init)(params)  # jitted: the optimizer state inherits the params' shardings


def optimizer_update(tx: optax.GradientTransformation, grads, opt_state, params):
  """-> (new params, new optimizer state)."""
  with jax.numpy_dtype_promotion("standard"):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def init_state(params, tx: optax.GradientTransformation, seed: int) -> TrainState:
  opt_state = optimizer_init(tx, params)
  return TrainState(jnp.zeros((), jnp.int32), params, opt_state, jax.random.key_data(jax.random.key(seed)))


def cast_floats(tree, dtype):
  """Floating leaves to `dtype` (the compute dtype of a mixed-precision policy); others unchanged."""
  if dtype is None:
    return tree
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def check_loss_output(output) -> None:
  """loss_fn must return a pair (loss, metrics mapping); checked before it is unpacked."""
  if isinstance(output, tuple | list) and len(output) == 2 and isinstance(output[1], Mapping):
    return
  if isinstance(output, tuple | list):
    got = f"a {type(output).__name__} of {len(output)}"
    got += f" whose metrics are a {type(output[1]).__name__}" if len(output) == 2 else ""
  else:
    got = f"a bare {output.dtype}{list(output.shape)} array" if hasattr(output, "shape") else type(output).__name__
  raise ValueError(f"loss_fn must return (loss, metrics): a scalar loss and a dict of scalar metrics; got {got}")


def check_loss(loss) -> None:
  """loss_fn's loss must be a scalar floating array computed from the model (checked on shapes)."""
  if not isinstance(loss, jax.Array) or loss.shape != () or not jnp.issubdtype(loss.dtype, jnp.floating):
    got = f"{loss.dtype}{list(loss.shape)}" if isinstance(loss, jax.Array) else f"{type(loss).__name__} {loss!r}"
    raise ValueError(f"loss_fn must return (loss, metrics) with loss a scalar float array from the model, got {got}")


def make_train_step(graphdef, rest, loss_fn, tx, *, nonfinite: str = "skip", compute_dtype=None):
  """state, batch -> (state, metrics). metrics: loss, loss_fn's metrics, gradient health, and
  `applied` (False when a NaN/Inf gradient, or an update that would leave a parameter NaN/Inf,
  made the step skip its update)."""
  _validate.choice("nonfinite", nonfinite, NONFINITE_POLICIES)

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_of(params):
      model = nnx.merge(graphdef, cast_floats(params, compute_dtype), rest)
      # flax's normalization layers mix float32 statistics with low-precision inputs internally
      with jax.numpy_dtype_promotion("standard" if compute_dtype else jax.config.jax_numpy_dtype_promotion):
        output = loss_fn(model, batch, rng)
      check_loss_output(output)
      loss, metrics = output
      check_loss(loss)
      return loss.astype(jnp.float32), metrics

    (loss, metrics), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    grads = cast_floats(grads, jnp.float32)  # accumulate and update in float32
    health = gradient_health(grads)
    params, opt_state = optimizer_update(tx, grads, state.opt_state, state.params)
    health["finite"] = health["finite"] & all_finite(params)  # a finite gradient can still overflow the update
    apply = health["finite"] if nonfinite == "skip" else jnp.bool_(True)
    keep = functools.partial(jax.tree.map, lambda new, old: jnp.where(apply, new, old))
    state = state.replace(
      step=state.step + 1, params=keep(params, state.params), opt_state=keep(opt_state, state.opt_state)
    )
    return state, {"loss": loss, **metrics, **health, "applied": apply}

  return jax.jit(train_step, donate_argnums=0)


def make_eval_step(graphdef, rest, metric_fn, *, compute_dtype=None):
  """params, batch -> metric_fn(model, batch), jitted."""

  def eval_step(params, batch):
    return metric_fn(nnx.merge(graphdef, cast_floats(params, compute_dtype), rest), batch)

  return jax.jit(eval_step)
