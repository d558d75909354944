"""Positional information: sinusoidal and learned absolute encodings, rotary (RoPE), T5 relative bias.

PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))              (Vaswani et al. 2017, the seeds' formula)
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax import _validate


def sinusoidal_encoding(positions: jax.Array, dim: int) -> jax.Array:
  """positions [T] or [B, T] -> [T, D] or [B, T, D]: even columns sin, odd columns cos, frequency
  1/10000^(2i/D)."""
  if dim % 2:
    raise ValueError(f"dim must be even for sinusoidal encodings, got {dim}")
  two_i = jnp.arange(0, dim, 2, dtype=jnp.float32)  # [D/2]
  inverse = jnp.power(10000.0, two_i / dim).reshape((1,) * positions.ndim + (-1,))  # [1, (1,) D/2]
  angles = positions.astype(jnp.float32)[..., None] / inverse  # [(B,) T, D/2]
  return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(*positions.shape, dim)  # interleave


class AbsolutePositions(nnx.Module):
  """Added to token embeddings: kind="sinusoidal" (fixed) or "learned" (a [max_length, D] table)."""

  kinds = ("sinusoidal", "learned")

  def __init__(self, kind: str, max_length: int, dim: int, *, rngs: nnx.Rngs):
    _validate.choice("position", kind, self.kinds)
    self.kind = kind
    self.max_length = max_length
    self.dim = dim
    if kind == "learned":
      self.table = nnx.Param(0.02 * jax.random.normal(rngs.params(), (max_length, dim)))

  def __call__(self, positions: jax.Array) -> jax.Array:
    """positions [T] or [B, T] (absolute, may start past 0 when decoding) -> [T, D] or [B, T, D]."""
    if self.kind == "sinusoidal":
      return sinusoidal_encoding(positions, self.dim)
    return jnp.take(self.table[...], positions, axis=0)


def segment_positions(segment_ids: jax.Array) -> jax.Array:
  """[B, T] ids of packed sequences (each a contiguous run) -> [B, T] positions counted from 0 at
  the start of each run, so a packed sequence is positioned as it would be alone."""
  T = segment_ids.shape[1]
  t = jnp.arange(T, dtype=jnp.int32)[None, :]  # [1, T]
  first = jnp.concatenate([jnp.ones_like(segment_ids[:, :1], jnp.bool_), segment_ids[:, 1:] != segment_ids[:, :-1]], 1)
  starts = jax.lax.cummax(jnp.where(first, t, 0), axis=1)  # [B, T]: where each position's run began
  return t - starts


def apply_rope(x: jax.Array, positions: jax.Array, base: float = 10000.0) -> jax.Array:
  """Rotary position embedding (Su et al. 2021), half-split pairing: x [B, T, N, D], positions [T]
  (shared by the batch) or [B, T] (per row, e.g. left-padded prompts).

  Channel i is rotated with channel i + D/2 by angle pos / base^(2i/D), so the dot
  product of a rotated query at m and a rotated key at n depends on m - n only.
  """
  dim = x.shape[-1]
  if dim % 2:
    raise ValueError(f"head dim must be even for rotary embeddings, got {dim}")
  freqs = 1.0 / jnp.power(base, jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)  # [D/2]
  positions = positions if positions.ndim == 2 else positions[None]  # [1 or B, T]
  angles = positions.astype(jnp.float32)[..., None] * freqs[None, None]  # [1 or B, T, D/2]
  cos = jnp.cos(angles)[:, :, None, :]  # [1 or B, T, 1, D/2]
  sin = jnp.sin(angles)[:, :, None, :]
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def relative_position_bucket(
  relative: np.ndarray | jax.Array, *, bidirectional: bool, num_buckets: int, max_distance: int
):
  """T5's bucketing of relative = key_pos - query_pos: exact buckets for small distances,
  logarithmic ones up to max_distance, one bucket beyond; bidirectional halves split by sign."""
  n = -relative
  bucket = jnp.zeros_like(n)
  if bidirectional:
    num_buckets //= 2
    bucket = bucket + (n < 0).astype(n.dtype) * num_buckets
    n = jnp.abs(n)
  else:
    n = jnp.maximum(n, 0)
  max_exact = num_buckets // 2
  safe = jnp.maximum(n, 1).astype(jnp.float32)  # log(0) is never selected below
  large = max_exact + (jnp.log(safe / max_exact) / np.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(
    n.dtype
  )
  large = jnp.minimum(large, num_buckets - 1)
  return bucket + jnp.where(n < max_exact, n, large)


class RelativePositionBias(nnx.Module):
  """T5 relative position bias: a learned scalar per (bucket, head), added to attention logits."""

  def __init__(
    self, num_heads: int, *, bidirectional: bool, num_buckets: int = 32, max_distance: int = 128, rngs: nnx.Rngs
  ):
    self.bidirectional = bidirectional
    self.num_buckets = num_buckets
    self.max_distance = max_distance
    self.embedding = nnx.Param(0.02 * jax.random.normal(rngs.params(), (num_buckets, num_heads)))

  def __call__(self, query_positions: jax.Array, key_positions: jax.Array) -> jax.Array:
    """[T], [S] -> bias [1, N, T, S]."""
    relative = key_positions[None, :] - query_positions[:, None]  # [T, S]
    buckets = relative_position_bucket(
      relative, bidirectional=self.bidirectional, num_buckets=self.num_buckets, max_distance=self.max_distance
    )
    return jnp.take(self.embedding[...], buckets, axis=0).transpose(2, 0, 1)[None]  # [1, N, T, S]
