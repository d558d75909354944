"""Recurrences that train in parallel: minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We
Needed?") and the Linear Recurrent Unit (Orvieto et al. 2023). Each is written once and runs in
either mode of `seqjax.parallel.scan` with the same outputs and gradients:

    layer(x [B, T, F], mode="sequential" | "associative" | None, h0=None, mask=None) -> [B, T, H]
    (None: the faster mode for the backend, `seqjax.defaults`)

mask [B, T] bool (False: padding, anywhere in a row): a padded step is skipped, a_t = 1 and
b_t = 0, so the state passes it unchanged; it reads zeros in place of its input and outputs
zeros. Each real output is then what the sequence gives with its padding removed.

minGRU   z_t = sigma(W_z x_t), h~_t = g(W_h x_t),           h_t = (1 - z_t) h_{t-1} + z_t h~_t
minLSTM  f_t = sigma(W_f x_t), i_t = sigma(W_i x_t), h~_t = g(W_h x_t),
         f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t), h_t = f'_t h_{t-1} + i'_t h~_t
         with g(v) = v + 1/2 for v >= 0, sigma(v) otherwise (positive, so the associative mode
         runs in log space as in the paper); h0 defaults to g(0) = 1/2.
LRU      x_t = lambda * x_{t-1} + gamma * (B u_t) (complex diagonal lambda = exp(-e^nu + i e^theta),
         |lambda| < 1 by construction, gamma = sqrt(1 - |lambda|^2)), y_t = Re(C x_t) + D * u_t
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax import _validate, defaults
from seqjax.parallel.scan import MODES, linear_scan, log_linear_scan

LOG_ZERO = -1e30  # log b_t of a padded step: exp() of it is 0, and unlike -inf it keeps log-space gradients finite


def g(v: jax.Array) -> jax.Array:
  return jnp.where(v >= 0, v + 0.5, jax.nn.sigmoid(v))


def log_g(v: jax.Array) -> jax.Array:
  return jnp.where(v >= 0, jnp.log(jax.nn.relu(v) + 0.5), -jax.nn.softplus(-v))


def _read(x: jax.Array, mask: jax.Array | None, name: str) -> jax.Array:
  """x [B, T, F] checked (and mask [B, T] bool), its padded steps read as zeros."""
  _validate.float_array(name, x, "[B, T, F]", 3)
  if mask is None:
    return x
  _validate.bool_mask("mask", mask, x.shape[:2], axes="[B, T]")
  return jnp.where(mask[:, :, None], x, jnp.zeros((), x.dtype))


def _skip(mask: jax.Array | None, a: jax.Array, b: jax.Array, keep_a, skip_b) -> tuple[jax.Array, jax.Array]:
  """The recurrence's terms with every padded step an identity step: a = keep_a (1, or log 1 = 0)
  and b = skip_b (0, or LOG_ZERO) where mask is False."""
  if mask is None:
    return a, b
  real = mask[:, :, None]  # [B, T, 1]
  return jnp.where(real, a, jnp.asarray(keep_a, a.dtype)), jnp.where(real, b, jnp.asarray(skip_b, b.dtype))


def _zero_padding(y: jax.Array, mask: jax.Array | None) -> jax.Array:
  return y if mask is None else jnp.where(mask[:, :, None], y, jnp.zeros((), y.dtype))


def _initial(h0, batch: int, hidden: int) -> jax.Array:
  """[B, H] start state, positive: g(0) = 1/2 unless given."""
  return jnp.full((batch, hidden), 0.5) if h0 is None else h0


class MinGRU(nnx.Module):
  def __init__(self, in_features: int, hidden_features: int, *, rngs: nnx.Rngs):
    _validate.positive_int("in_features", in_features)
    _validate.positive_int("hidden_features", hidden_features)
    self.gates = nnx.Linear(in_features, 2 * hidden_features, rngs=rngs)  # [z | h~]
    self.hidden_features = hidden_features

  def __call__(self, x: jax.Array, *, mode: str | None = None, h0: jax.Array | None = None, mask=None) -> jax.Array:
    x = _read(x, mask, "x")
    mode = defaults.scan_mode() if mode is None else mode
    k, v = jnp.split(self.gates(x), 2, axis=-1)  # [B, T, H] each
    h0 = _initial(h0, x.shape[0], self.hidden_features)
    if mode == "sequential":
      z = jax.nn.sigmoid(k)
      return _zero_padding(linear_scan(*_skip(mask, 1.0 - z, z * g(v), 1.0, 0.0), h0, mode), mask)
    _validate.choice("mode", mode, MODES)
    # log(1 - z) = -softplus(k), log z = -softplus(-k)
    log_a, log_b = _skip(mask, -jax.nn.softplus(k), -jax.nn.softplus(-k) + log_g(v), 0.0, LOG_ZERO)
    return _zero_padding(jnp.exp(log_linear_scan(log_a, log_b, jnp.log(h0), mode)), mask)


class MinLSTM(nnx.Module):
  def __init__(self, in_features: int, hidden_features: int, *, rngs: nnx.Rngs):
    _validate.positive_int("in_features", in_features)
    _validate.positive_int("hidden_features", hidden_features)
    self.gates = nnx.Linear(in_features, 3 * hidden_features, rngs=rngs)  # [f | i | h~]
    self.hidden_features = hidden_features

  def __call__(self, x: jax.Array, *, mode: str | None = None, h0: jax.Array | None = None, mask=None) -> jax.Array:
    x = _read(x, mask, "x")
    mode = defaults.scan_mode() if mode is None else mode
    kf, ki, v = jnp.split(self.gates(x), 3, axis=-1)
    h0 = _initial(h0, x.shape[0], self.hidden_features)
    if mode == "sequential":
      f, i = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki)
      return _zero_padding(linear_scan(*_skip(mask, f / (f + i), i / (f + i) * g(v), 1.0, 0.0), h0, mode), mask)
    _validate.choice("mode", mode, MODES)
    diff = jax.nn.softplus(-kf) - jax.nn.softplus(-ki)  # log i - log f
    log_f, log_i = -jax.nn.softplus(diff), -jax.nn.softplus(-diff)  # log f', log i'
    log_a, log_b = _skip(mask, log_f, log_i + log_g(v), 0.0, LOG_ZERO)
    return _zero_padding(jnp.exp(log_linear_scan(log_a, log_b, jnp.log(h0), mode)), mask)


class LRU(nnx.Module):
  """Linear Recurrent Unit: a complex diagonal linear recurrence of `state` units, [B, T, F] -> [B, T, F]."""

  def __init__(
    self,
    features: int,
    state: int,
    *,
    r_min: float = 0.9,
    r_max: float = 0.999,
    max_phase: float = 2 * np.pi,
    rngs: nnx.Rngs,
  ):
    _validate.positive_int("features", features)
    _validate.positive_int("state", state)
    if not 0 <= r_min < r_max < 1:
      raise ValueError(f"need 0 <= r_min < r_max < 1, got {r_min}, {r_max}")
    u1, u2 = (jax.random.uniform(rngs.params(), (state,)) for _ in range(2))
    # radius uniform on the ring [r_min, r_max]: |lambda| = exp(-e^nu)
    self.nu_log = nnx.Param(jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2)))
    self.theta_log = nnx.Param(jnp.log(max_phase * u2))
    scale_in, scale_out = 1.0 / np.sqrt(2 * features), 1.0 / np.sqrt(state)
    self.B_re = nnx.Param(scale_in * jax.random.normal(rngs.params(), (features, state)))
    self.B_im = nnx.Param(scale_in * jax.random.normal(rngs.params(), (features, state)))
    self.C_re = nnx.Param(scale_out * jax.random.normal(rngs.params(), (state, features)))
    self.C_im = nnx.Param(scale_out * jax.random.normal(rngs.params(), (state, features)))
    self.D = nnx.Param(jax.random.normal(rngs.params(), (features,)))
    self.state = state

  def __call__(self, u: jax.Array, *, mode: str | None = None, h0: jax.Array | None = None, mask=None) -> jax.Array:
    u = _read(u, mask, "u")
    mode = defaults.scan_mode() if mode is None else mode
    modulus = jnp.exp(-jnp.exp(self.nu_log[...]))  # |lambda| in (0, 1)
    phase = jnp.exp(self.theta_log[...])
    lam = jax.lax.complex(modulus * jnp.cos(phase), modulus * jnp.sin(phase))  # [N]
    gamma = jnp.sqrt(1.0 - modulus**2)  # normalizes the state's variance
    B = jax.lax.complex(self.B_re[...], self.B_im[...]) * gamma[None, :].astype(jnp.complex64)  # [F, N]
    bu = u.astype(jnp.complex64) @ B  # [B, T, N]
    a = jnp.broadcast_to(lam[None, None, :], bu.shape)
    h0 = jnp.zeros((u.shape[0], self.state), jnp.complex64) if h0 is None else h0
    x = linear_scan(*_skip(mask, a, bu, 1.0, 0.0), h0, mode)  # [B, T, N] complex
    C = jax.lax.complex(self.C_re[...], self.C_im[...])  # [N, F]
    return _zero_padding(jnp.real(x @ C) + u * self.D[...][None, None, :], mask)
