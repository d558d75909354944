"""Recurrences that train in parallel: minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We
Needed?") and the Linear Recurrent Unit (Orvieto et al. 2023). Each is written once and runs in
either mode of `seqjax.parallel.scan` with the same outputs and gradients:

    layer(x [B, T, F], mode="sequential" | "associative" | None, h0=None) -> [B, T, H]
    (None: the faster mode for the backend, `seqjax.defaults`)

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


def g(v: jax.Array) -> jax.Array:
  return jnp.where(v >= 0, v + 0.5, jax.nn.sigmoid(v))


def log_g(v: jax.Array) -> jax.Array:
  return jnp.where(v >= 0, jnp.log(jax.nn.relu(v) + 0.5), -jax.nn.softplus(-v))


def _initial(h0, batch: int, hidden: int) -> jax.Array:
  """[B, H] start state, positive: g(0) = 1/2 unless given."""
  return jnp.full((batch, hidden), 0.5) if h0 is None else h0


class MinGRU(nnx.Module):
  def __init__(self, in_features: int, hidden_features: int, *, rngs: nnx.Rngs):
    _validate.positive_int("in_features", in_features)
    _validate.positive_int("hidden_features", hidden_features)
    self.gates = nnx.Linear(in_features, 2 * hidden_features, rngs=rngs)  # [z | h~]
    self.hidden_features = hidden_features

  def __call__(self, x: jax.Array, *, mode: str | None = None, h0: jax.Array | None = None) -> jax.Array:
    _validate.float_array("x", x, "[B, T, F]", 3)
    mode = defaults.scan_mode() if mode is None else mode
    k, v = jnp.split(self.gates(x), 2, axis=-1)  # [B, T, H] each
    h0 = _initial(h0, x.shape[0], self.hidden_features)
    if mode == "sequential":
      z = jax.nn.sigmoid(k)
      return linear_scan(1.0 - z, z * g(v), h0, mode)
    _validate.choice("mode", mode, MODES)
    # log(1 - z) = -softplus(k), log z = -softplus(-k)
    return jnp.exp(log_linear_scan(-jax.nn.softplus(k), -jax.nn.softplus(-k) + log_g(v), jnp.log(h0), mode))


class MinLSTM(nnx.Module):
  def __init__(self, in_features: int, hidden_features: int, *, rngs: nnx.Rngs):
    _validate.positive_int("in_features", in_features)
    _validate.positive_int("hidden_features", hidden_features)
    self.gates = nnx.Linear(in_features, 3 * hidden_features, rngs=rngs)  # [f | i | h~]
    self.hidden_features = hidden_features

  def __call__(self, x: jax.Array, *, mode: str | None = None, h0: jax.Array | None = None) -> jax.Array:
    _validate.float_array("x", x, "[B, T, F]", 3)
    mode = defaults.scan_mode() if mode is None else mode
    kf, ki, v = jnp.split(self.gates(x), 3, axis=-1)
    h0 = _initial(h0, x.shape[0], self.hidden_features)
    if mode == "sequential":
      f, i = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki)
      return linear_scan(f / (f + i), i / (f + i) * g(v), h0, mode)
    _validate.choice("mode", mode, MODES)
    diff = jax.nn.softplus(-kf) - jax.nn.softplus(-ki)  # log i - log f
    log_f, log_i = -jax.nn.softplus(diff), -jax.nn.softplus(-diff)  # log f', log i'
    return jnp.exp(log_linear_scan(log_f, log_i + log_g(v), jnp.log(h0), mode))


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

  def __call__(self, u: jax.Array, *, mode: str | None = None, h0: jax.Array | None = None) -> jax.Array:
    _validate.float_array("u", u, "[B, T, F]", 3)
    mode = defaults.scan_mode() if mode is None else mode
    modulus = jnp.exp(-jnp.exp(self.nu_log[...]))  # |lambda| in (0, 1)
    phase = jnp.exp(self.theta_log[...])
    lam = jax.lax.complex(modulus * jnp.cos(phase), modulus * jnp.sin(phase))  # [N]
    gamma = jnp.sqrt(1.0 - modulus**2)  # normalizes the state's variance
    B = jax.lax.complex(self.B_re[...], self.B_im[...]) * gamma[None, :].astype(jnp.complex64)  # [F, N]
    bu = u.astype(jnp.complex64) @ B  # [B, T, N]
    a = jnp.broadcast_to(lam[None, None, :], bu.shape)
    h0 = jnp.zeros((u.shape[0], self.state), jnp.complex64) if h0 is None else h0
    x = linear_scan(a, bu, h0, mode)  # [B, T, N] complex
    C = jax.lax.complex(self.C_re[...], self.C_im[...])  # [N, F]
    return jnp.real(x @ C) + u * self.D[...][None, None, :]
