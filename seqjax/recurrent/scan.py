"""Running a cell over time with an explicit `jax.lax.scan`, time-major.

Padding: with a validity mask [T, B], a step past a sequence's end reads zeros instead of its
input, keeps the old carry and emits zeros, so padding never changes results at real positions,
nor gradients (NaN or Inf in a padded step stays out of both), and the final carry is each
sequence's carry at its own last step.
"""

import jax
import jax.numpy as jnp


def length_mask(lengths: jax.Array, time: int) -> jax.Array:
  """[B] lengths -> [T, B] bool, True where t < length."""
  return jnp.arange(time, dtype=lengths.dtype)[:, None] < lengths[None, :]


def flip_sequences(xs: jax.Array, lengths: jax.Array | None) -> jax.Array:
  """Reverse each sequence of xs [T, B, ...] within its own length; padding stays in place."""
  if lengths is None:
    return xs[::-1]
  t = jnp.arange(xs.shape[0], dtype=lengths.dtype)[:, None]  # [T, 1]
  idx = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # [T, B]
  idx = idx.reshape(idx.shape + (1,) * (xs.ndim - 2))  # [T, B, 1, ...]
  return jnp.take_along_axis(xs, idx, axis=0)


def scan_cell(cell, carry, xs: jax.Array, mask: jax.Array | None, *, hoist_input_projection: bool, unroll: int = 1):
  """Run `cell` over xs [T, B, F] from `carry`; returns (ys [T, B, H], final carry).

  hoist_input_projection: project all T inputs with one [T*B, F] x [F, G*H] matmul
  before the scan, so each step only does the recurrent product.
  mask [T, B]: padded steps read zeros (before the cell, so they reach no gradient).
  """
  if mask is not None:
    xs = jnp.where(mask[:, :, None], xs, jnp.zeros((), xs.dtype))  # [T, B, F]
  if hoist_input_projection:
    xs = cell.project_inputs(xs)  # [T, B, G*H]
    step = cell.recur
  else:
    step = lambda carry, x_t: cell.recur(carry, cell.project_inputs(x_t))  # noqa: E731

  def body(carry, inputs):
    x_t, valid_t = inputs  # [B, F or G*H], [B] or None
    new_carry, y_t = step(carry, x_t)
    if valid_t is not None:
      keep = valid_t[:, None]  # [B, 1]
      new_carry = jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry)
      y_t = jnp.where(keep, y_t, jnp.zeros_like(y_t))
    return new_carry, y_t

  carry, ys = jax.lax.scan(body, carry, (xs, mask), unroll=unroll)
  return ys, carry
