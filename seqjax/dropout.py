"""Inverted dropout from an explicit key, so every caller stays a pure function of its inputs."""

import jax
import jax.numpy as jnp


def dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
  """Zero each entry with probability `rate` and scale the rest by 1/(1-rate); identity
  without a key or at rate 0 (evaluation)."""
  if key is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def split_key(key: jax.Array | None, count: int = 2) -> list:
  """`count` independent dropout keys from `key`, or `count` Nones without one (evaluation)."""
  return [None] * count if key is None else list(jax.random.split(key, count))
