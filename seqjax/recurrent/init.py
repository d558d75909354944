"""Initialization strategies for recurrent kernels, and the spectrum of a recurrent matrix.

Every initializer is built by `initializer(name, gain)` and has JAX's signature
`init(key, shape, dtype) -> array` for one gate block of shape [fan_in, fan_out]:

    xavier_uniform  U(-a, a),  a = gain * sqrt(6 / (fan_in + fan_out))      (Glorot & Bengio 2010)
    xavier_normal   N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))
    orthogonal      gain * Q with Q^T Q = I (Saxe et al. 2014): all singular values equal gain
    identity        gain * I (IRNN, Le et al. 2015); square blocks only

Cells apply an initializer to each gate block separately (`gate_stacked`), so every
gate's recurrent matrix W_h^(g) is itself orthogonal or identity: the eigenvalue argument
of the seed (keep |lambda(W_h)| close to 1) holds gate by gate.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import _validate

Initializer = Callable[[jax.Array, tuple[int, ...], jnp.dtype], jax.Array]


def _xavier_uniform(gain: float) -> Initializer:
  def init(key, shape, dtype=jnp.float32):
    fan_in, fan_out = shape
    limit = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, dtype, -limit, limit)

  return init


def _xavier_normal(gain: float) -> Initializer:
  def init(key, shape, dtype=jnp.float32):
    fan_in, fan_out = shape
    std = gain * np.sqrt(2.0 / (fan_in + fan_out))
    return std * jax.random.normal(key, shape, dtype)

  return init


def _orthogonal(gain: float) -> Initializer:
  return jax.nn.initializers.orthogonal(scale=gain)


def _identity(gain: float) -> Initializer:
  def init(key, shape, dtype=jnp.float32):
    del key  # deterministic
    if shape[0] != shape[1]:
      raise ValueError(f"identity init needs a square block, got shape {shape}")
    return gain * jnp.eye(shape[0], dtype=dtype)

  return init


def _pytorch_uniform(gain: float) -> Initializer:
  """PyTorch's default for nn.RNN/LSTM/GRU weights: U(-1/sqrt(H), 1/sqrt(H)) for a gate block [F, H]."""

  def init(key, shape, dtype=jnp.float32):
    limit = gain / np.sqrt(shape[1])
    return jax.random.uniform(key, shape, dtype, -limit, limit)

  return init


INITIALIZERS: dict[str, Callable[[float], Initializer]] = {
  "xavier_uniform": _xavier_uniform,
  "xavier_normal": _xavier_normal,
  "orthogonal": _orthogonal,
  "identity": _identity,
  "pytorch_uniform": _pytorch_uniform,
}


def initializer(name: str, gain: float = 1.0) -> Initializer:
  """The initializer called `name` (one of INITIALIZERS), scaled by `gain`."""
  _validate.choice("init", name, INITIALIZERS)
  if not gain > 0:
    raise ValueError(f"gain must be > 0, got {gain!r}")
  return INITIALIZERS[name](float(gain))


def gate_stacked(init: Initializer, key: jax.Array, fan_in: int, hidden: int, gates: int, dtype) -> jax.Array:
  """[fan_in, G*H] kernel whose G column blocks of shape [fan_in, H] are drawn independently."""
  blocks = [init(k, (fan_in, hidden), dtype) for k in jax.random.split(key, gates)]
  return jnp.concatenate(blocks, axis=1)  # [fan_in, G*H]


class Spectrum(NamedTuple):
  spectral_radius: float  # max |eigenvalue|: > 1 grows, < 1 shrinks h over many steps
  singular_values: np.ndarray  # descending; their spread bounds how Jacobian products stretch
  eigenvalues: np.ndarray


def spectrum(matrix) -> Spectrum:
  """Spectral radius, singular values and eigenvalues of a square recurrent matrix [H, H]."""
  m = np.asarray(matrix, dtype=np.float64)
  if m.ndim != 2 or m.shape[0] != m.shape[1]:
    raise ValueError(f"matrix must be square [H, H], got shape {m.shape}")
  eigenvalues = np.linalg.eigvals(m)
  return Spectrum(
    spectral_radius=float(np.abs(eigenvalues).max()),
    singular_values=np.linalg.svd(m, compute_uv=False),
    eigenvalues=eigenvalues,
  )
