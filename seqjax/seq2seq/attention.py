"""Attention for recurrent encoder-decoders: Bahdanau's additive score, Luong's dot, general and
concat scores, global and local (monotonic, predictive) windows.

For one decoder step: query s [B, Dq], encoder states h [B, S, Dk], source mask [B, S] (True =
real token) -> weights a [B, S] (zero on padding) and context c = sum_j a_j h_j [B, Dk].

    additive (Bahdanau et al. 2014)   e_j = v^T tanh(W1 h_j + W2 s)
    dot      (Luong et al. 2015)      e_j = h_j^T s
    general                           e_j = h_j^T W s
    concat                            e_j = v^T tanh(W [h_j; s])
"""

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate

SCORES = ("additive", "dot", "general", "concat")
WINDOWS = ("global", "local_m", "local_p")


class Score(nnx.Module):
  """score(query [B, Dq], keys [B, S, Dk]) -> e [B, S]."""

  def __init__(self, kind: str, query_features: int, key_features: int, *, attention_dim: int | None = None, rngs):
    _validate.choice("score", kind, SCORES)
    if kind == "dot" and query_features != key_features:
      raise ValueError(f"score='dot' needs query and key sizes to match, got {query_features} and {key_features}")
    dim = attention_dim or key_features
    self.kind = kind
    self.w_query = nnx.Linear(query_features, dim, use_bias=False, rngs=rngs) if kind == "additive" else None
    self.w_key = nnx.Linear(key_features, dim, use_bias=False, rngs=rngs) if kind == "additive" else None
    self.w_general = nnx.Linear(query_features, key_features, use_bias=False, rngs=rngs) if kind == "general" else None
    self.w_concat = (
      nnx.Linear(query_features + key_features, dim, use_bias=False, rngs=rngs) if kind == "concat" else None
    )
    self.v = nnx.Linear(dim, 1, use_bias=False, rngs=rngs) if kind in ("additive", "concat") else None

  def precompute(self, keys: jax.Array) -> jax.Array:
    """The query-independent part, computed once per source: W1 h for additive, else h."""
    return self.w_key(keys) if self.kind == "additive" else keys

  def __call__(self, query: jax.Array, keys: jax.Array, projected_keys: jax.Array) -> jax.Array:
    if self.kind == "additive":
      return self.v(jnp.tanh(projected_keys + self.w_query(query)[:, None, :]))[..., 0]  # v^T tanh(W1 h + W2 s)
    if self.kind == "dot":
      return jnp.einsum("bsd,bd->bs", keys, query)
    if self.kind == "general":
      return jnp.einsum("bsd,bd->bs", keys, self.w_general(query))
    S = keys.shape[1]
    both = jnp.concatenate([keys, jnp.broadcast_to(query[:, None, :], (query.shape[0], S, query.shape[1]))], -1)
    return self.v(jnp.tanh(self.w_concat(both)))[..., 0]  # v^T tanh(W [h; s])


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """softmax over the True positions of each row; exactly 0 elsewhere. scores, mask [B, S]."""
  scores = jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
  return jnp.where(mask, jax.nn.softmax(scores, axis=-1), 0.0)


def local_window(center: jax.Array, half_width: int, source_length: int) -> jax.Array:
  """[B] centers -> [B, S] bool, True for |s - center| <= D (the positions of [p_t - D, p_t + D])."""
  s = jnp.arange(source_length, dtype=jnp.float32)[None, :]
  return jnp.abs(s - center[:, None]) <= half_width


class LuongPosition(nnx.Module):
  """local-p's predicted center p_t = S_len * sigmoid(v_p^T tanh(W_p h_t)), in [0, S_len]."""

  def __init__(self, query_features: int, *, rngs):
    self.w = nnx.Linear(query_features, query_features, use_bias=False, rngs=rngs)
    self.v = nnx.Linear(query_features, 1, use_bias=False, rngs=rngs)

  def __call__(self, query: jax.Array, source_lengths: jax.Array) -> jax.Array:
    return source_lengths.astype(jnp.float32) * jax.nn.sigmoid(self.v(jnp.tanh(self.w(query)))[:, 0])


def attend(
  scores: jax.Array,
  values: jax.Array,
  mask: jax.Array,
  *,
  window: str = "global",
  step: jax.Array | None = None,
  center: jax.Array | None = None,
  half_width: int = 0,
):
  """Weights [B, S] and context [B, D] from scores [B, S] over values [B, S, D].

  global: softmax over the real source positions. local_m: over [t - D, t + D] with t the
  decoder step (monotonic alignment, clipped to the source). local_p: over [p_t - D, p_t + D]
  around a predicted center, then times exp(-(s - p_t)^2 / (2 (D/2)^2)) as in Luong et al.,
  so its weights sum to at most 1.
  """
  _validate.choice("window", window, WINDOWS)
  if window == "local_m":
    last = jnp.sum(mask, axis=-1).astype(jnp.float32) - 1.0  # [B]
    center = jnp.minimum(jnp.broadcast_to(jnp.asarray(step, jnp.float32), last.shape), last)
  if window != "global":
    mask = mask & local_window(center, half_width, scores.shape[1])
  weights = masked_softmax(scores, mask)
  if window == "local_p":
    s = jnp.arange(scores.shape[1], dtype=jnp.float32)[None, :]
    sigma = half_width / 2.0
    weights = weights * jnp.exp(-((s - center[:, None]) ** 2) / (2.0 * sigma**2))
  context = jnp.einsum("bs,bsd->bd", weights.astype(values.dtype), values)
  return weights, context
