"""Truncated backpropagation through time, TBPTT(k1, k2) (Williams & Peng 1990).

Every k1 steps an update is made; its gradient flows back k2 steps (k2 >= k1). Segment i
covers outputs [s, e) with s = i*k1, e = min(s + k1, T); its forward pass starts at
w = max(0, e - k2) from the carry stored by earlier forward passes, behind a stop_gradient,
so nothing before w receives gradient. k1 = k2 is the common choice; full BPTT is k1 = T
(one segment), and with k2 >= T every segment's gradient reaches back to step 0.
"""

import functools
from collections.abc import Callable

import jax

from seqjax import _validate


def update_windows(length: int, k1: int, k2: int) -> list[tuple[int, int, int]]:
  """[(w, s, e)] for every update: forward over [w, e), loss on [s, e)."""
  _validate.positive_int("k1", k1)
  _validate.positive_int("k2", k2)
  if k1 > k2:
    raise ValueError(f"k1 ({k1}) > k2 ({k2}) is unsupported: gradients must reach at least the k1 new steps")
  return [(max(0, min(s + k1, length) - k2), s, min(s + k1, length)) for s in range(0, length, k1)]


@functools.lru_cache(maxsize=16)
def segment_gradient(step_fn: Callable, loss_fn: Callable):
  """One update's gradient: jitted (params, carry_w, xs_window, targets, offset) -> (loss, grads,
  carries), compiled once per (step_fn, loss_fn) and window shape. Its cost (memory and time) is
  what k2 sets: the window xs_window spans k2 steps (experiments.tbptt measures it)."""

  @functools.partial(jax.jit, static_argnums=4)
  def segment(params, carry_w, xs_window, targets_segment, offset):
    def loss(params):
      def body(c, x):
        c, y = step_fn(params, c, x)
        return c, (y, c)

      ys, carries = jax.lax.scan(body, carry_w, xs_window)[1]  # outputs and carries after each step
      ys = jax.tree.map(lambda y: y[offset:], ys)  # outputs [s, e) only
      return loss_fn(ys, targets_segment), carries

    (value, carries), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return value, grads, jax.lax.stop_gradient(carries)

  return segment


def truncated_bptt(
  step_fn: Callable,
  loss_fn: Callable,
  params,
  carry,
  xs,
  targets,
  *,
  k1: int,
  k2: int,
  update: Callable | None = None,
):
  """Runs TBPTT(k1, k2) over time-major xs (pytree, leading axis T) and targets.

  step_fn(params, carry, x_t) -> (carry, y_t); loss_fn(ys, targets) -> scalar over a segment.
  update(params, grads) -> params is applied after every segment (None: params stay, and the
  per-segment gradients are returned for inspection). Returns (params, losses, grads, carry).
  """
  length = jax.tree.leaves(xs)[0].shape[0]
  segment = segment_gradient(step_fn, loss_fn)
  plan = update_windows(length, k1, k2)
  stored = {0: jax.lax.stop_gradient(carry)}  # carry at time t, from earlier forward passes
  losses, all_grads = [], []

  def take(tree, index):
    return jax.tree.map(lambda leaf: leaf[index], tree)

  for index, (w, s, e) in enumerate(plan):
    value, grads, carries = segment(params, stored[w], take(xs, slice(w, e)), take(targets, slice(s, e)), s - w)
    next_start = plan[index + 1][0] if index + 1 < len(plan) else length
    stored = {t: c for t, c in stored.items() if t >= next_start}  # what later windows start from
    for t in range(max(w + 1, next_start), e + 1):
      stored[t] = take(carries, t - w - 1)  # carries[i] is the carry after step w + i
    losses.append(value)
    all_grads.append(grads)
    if update is not None:
      params = update(params, grads)
  return params, losses, all_grads, stored[length]
