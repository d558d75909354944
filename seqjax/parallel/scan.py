"""The linear recurrence h_t = a_t * h_{t-1} + b_t (elementwise), run sequentially or in parallel.

    sequential   jax.lax.scan: T dependent steps
    associative  jax.lax.associative_scan with (a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2):
                 O(log T) depth (Blelloch 1990), the trick behind minGRU/minLSTM and LRU

In log space (log h_t = logaddexp(log a_t + log h_{t-1}, log b_t), all terms positive) the
parallel form is log h = a* + logcumsumexp(log b - a*) with a* = cumsum(log a) (Feng et al.
2024, Heinsen 2023): stable over long sequences where products of a_t underflow.
Time is axis 1 everywhere: [B, T, ...].
"""

import jax
import jax.numpy as jnp

from seqjax import _validate

MODES = ("sequential", "associative")


def linear_scan(a: jax.Array, b: jax.Array, h0: jax.Array, mode: str) -> jax.Array:
  """a, b [B, T, H], h0 [B, H] -> h [B, T, H] (h_1 .. h_T)."""
  _validate.choice("mode", mode, MODES)
  if mode == "sequential":

    def step(h, ab):
      a_t, b_t = ab
      h = a_t * h + b_t
      return h, h

    return jnp.swapaxes(jax.lax.scan(step, h0, (jnp.swapaxes(a, 0, 1), jnp.swapaxes(b, 0, 1)))[1], 0, 1)
  b = b.at[:, 0].add(a[:, 0] * h0)  # fold h0 into the first step

  def combine(left, right):
    a_l, b_l = left
    a_r, b_r = right
    return a_l * a_r, a_r * b_l + b_r

  return jax.lax.associative_scan(combine, (a, b), axis=1)[1]


def log_linear_scan(log_a: jax.Array, log_b: jax.Array, log_h0: jax.Array, mode: str) -> jax.Array:
  """The same recurrence for positive terms given as logs -> log h [B, T, H]."""
  _validate.choice("mode", mode, MODES)
  if mode == "sequential":

    def step(log_h, ab):
      la, lb = ab
      log_h = jnp.logaddexp(la + log_h, lb)
      return log_h, log_h

    xs = (jnp.swapaxes(log_a, 0, 1), jnp.swapaxes(log_b, 0, 1))
    return jnp.swapaxes(jax.lax.scan(step, log_h0, xs)[1], 0, 1)
  a_star = jnp.cumsum(log_a, axis=1)  # log of a_1 ... a_t
  log_b = jnp.concatenate([log_h0[:, None], log_b], axis=1)  # h0 as term 0
  a_star = jnp.concatenate([jnp.zeros_like(log_h0)[:, None], a_star], axis=1)
  return (a_star + jax.lax.cumlogsumexp(log_b - a_star, axis=1))[:, 1:]
