"""Small builders shared by the tests."""

import jax
import numpy as np
from flax import nnx


def randomize(module, seed: int = 0, scale: float = 0.5):
  """Overwrite every parameter (biases included) with N(0, scale^2) draws."""
  rng = np.random.default_rng(seed)
  for _, param in nnx.iter_graph(module):
    if isinstance(param, nnx.Param):
      value = param[...]
      param[...] = jax.numpy.asarray(scale * rng.standard_normal(value.shape), value.dtype)
  return module


def normal(seed: int, *shape, dtype=np.float32):
  return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def prefix_mask(lengths, time: int) -> jax.Array:
  """[B] lengths -> [B, T] bool, True on each row's first `length` steps (the real tokens)."""
  return jax.numpy.arange(time)[None, :] < jax.numpy.asarray(lengths)[:, None]
