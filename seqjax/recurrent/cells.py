"""Elman, LSTM and GRU cells: `cell(carry, x) -> (new_carry, y)` for one time step.

Each cell stores fused kernels, gates stacked along the output axis in PyTorch's order:

    input_kernel      W_x  [F, G*H]   applied to the input x_t
    recurrent_kernel  W_h  [H, G*H]   applied to the previous hidden state h_{t-1}
    bias              b    [G*H]      one bias per gate (PyTorch's b_ih + b_hh)

A step splits into the part that does not depend on the carry and the recurrence:

    cell(carry, x) == cell.recur(carry, cell.project_inputs(x))

so a sequence runner may project all T inputs in one matmul before the scan
(`RNN(hoist_input_projection=True)`). Leading axes of x are batch axes.
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.recurrent import init as init_lib

LSTMCarry = tuple[jax.Array, jax.Array]  # (c, h), each [..., H], as flax.nnx.LSTMCell


def _along_last(vector: jax.Array, like: jax.Array) -> jax.Array:
  """[K] -> [1, ..., 1, K] with the rank of `like`, for an explicit broadcast."""
  return vector.reshape((1,) * (like.ndim - 1) + vector.shape)


class RecurrentCell(nnx.Module):
  """Parameters and input projection shared by the cells; subclasses define `recur`."""

  num_gates: int
  carry_form: str  # what initialize_carry returns, in words, for error messages

  def __init__(
    self,
    in_features: int,
    hidden_features: int,
    *,
    kernel_init: str = "xavier_uniform",
    recurrent_init: str = "orthogonal",
    kernel_gain: float = 1.0,
    recurrent_gain: float = 1.0,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    _validate.positive_int("in_features", in_features)
    _validate.positive_int("hidden_features", hidden_features)
    x_init = init_lib.initializer(kernel_init, kernel_gain)
    h_init = init_lib.initializer(recurrent_init, recurrent_gain)
    if kernel_init == "identity" and in_features != hidden_features:
      raise ValueError(
        f"kernel_init='identity' needs in_features == hidden_features, got {in_features} != {hidden_features}"
      )
    self.in_features = in_features
    self.hidden_features = hidden_features
    G, F, H = self.num_gates, in_features, hidden_features
    self.input_kernel = nnx.Param(init_lib.gate_stacked(x_init, rngs.params(), F, H, G, param_dtype))
    self.recurrent_kernel = nnx.Param(init_lib.gate_stacked(h_init, rngs.params(), H, H, G, param_dtype))
    self.bias = nnx.Param(jnp.zeros((G * H,), param_dtype))

  def project_inputs(self, x: jax.Array) -> jax.Array:
    """x [..., F] -> x W_x + b [..., G*H]."""
    if not hasattr(x, "ndim") or x.ndim < 1:
      raise ValueError(f"x must be an array [..., F] with F = {self.in_features}, got {x!r}")
    _validate.float_array("x", x, "[..., F]", x.ndim)
    _validate.axis_size("x", x, -1, self.in_features, f"[..., F={self.in_features}]")
    kernel = self.input_kernel[...]
    projected = x.astype(kernel.dtype) @ kernel  # [..., G*H]
    return projected + _along_last(self.bias[...], projected)

  def __call__(self, carry, x: jax.Array):
    projected = self.project_inputs(x)
    self.check_carry(carry, x.shape[:-1])
    return self.recur(carry, projected)

  def check_carry(self, carry, batch_shape: tuple[int, ...]) -> None:
    """carry must have the structure and shapes of `initialize_carry(batch_shape)` (checked on
    shapes, so also under jit): an LSTM's bare array is not split into (c, h) by accident."""
    reference = self.initialize_carry(batch_shape)
    want = jax.tree.map(jnp.shape, reference)
    got = jax.tree.map(lambda leaf: getattr(leaf, "shape", type(leaf).__name__), carry)
    if jax.tree.structure(carry) != jax.tree.structure(reference) or got != want:
      raise ValueError(f"carry must be {self.carry_form} with shapes {want}, got {got}")

  def recur(self, carry, projected: jax.Array):
    raise NotImplementedError

  def _zeros(self, batch_shape: tuple[int, ...]) -> jax.Array:
    """A zero carry; float32 under a bf16/fp16 compute policy, else the parameters' dtype."""
    dtype = self.recurrent_kernel[...].dtype
    dtype = dtype if jnp.finfo(dtype).bits >= 32 else jnp.float32
    return jnp.zeros((*batch_shape, self.hidden_features), dtype)

  def _recurrent(self, h: jax.Array, kernel: jax.Array) -> jax.Array:
    """h W in the kernel's (compute) dtype, accumulated and returned in the carry's dtype."""
    return jnp.matmul(h.astype(kernel.dtype), kernel, preferred_element_type=h.dtype)


class ElmanCell(RecurrentCell):
  r"""Elman RNN cell (Elman 1990; `torch.nn.RNN`).

      h_t = phi(x_t W_x + b + h_{t-1} W_h),   phi = tanh or relu

  carry = h [..., H]; output y_t = h_t.
  """

  num_gates = 1
  carry_form = "h [..., H]"
  activations: ClassVar = {"tanh": jnp.tanh, "relu": jax.nn.relu}

  def __init__(self, in_features: int, hidden_features: int, *, activation: str = "tanh", **kwargs):
    _validate.choice("activation", activation, self.activations)
    super().__init__(in_features, hidden_features, **kwargs)
    self.activation = activation

  def recur(self, h: jax.Array, projected: jax.Array):
    h = self.activations[self.activation](projected.astype(h.dtype) + self._recurrent(h, self.recurrent_kernel[...]))
    return h, h

  def initialize_carry(self, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    return self._zeros(batch_shape)


class LSTMCell(RecurrentCell):
  r"""Long short-term memory cell (Hochreiter & Schmidhuber 1997, with a forget gate).

      i = sigma(x W_xi + b_i + h W_hi)      input gate
      f = sigma(x W_xf + b_f + h W_hf)      forget gate
      g = tanh (x W_xg + b_g + h W_hg)      candidate cell
      o = sigma(x W_xo + b_o + h W_ho)      output gate
      c' = f * c + i * g                   the additive "gradient highway"
      h' = o * tanh(c')

  carry = (c, h), each [..., H]; output y_t = h_t. `forget_bias` initializes b_f
  (default 1.0, as the seed recommends, so the cell starts by remembering).
  """

  num_gates = 4
  carry_form = "a tuple (c, h), each [..., H]"

  def __init__(self, in_features: int, hidden_features: int, *, forget_bias: float = 1.0, **kwargs):
    super().__init__(in_features, hidden_features, **kwargs)
    H = hidden_features
    self.bias[...] = self.bias[...].at[H : 2 * H].set(forget_bias)  # gate order i, f, g, o

  def recur(self, carry: LSTMCarry, projected: jax.Array):
    c, h = carry
    gates = projected.astype(h.dtype) + self._recurrent(h, self.recurrent_kernel[...])  # [..., 4H]
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h

  def initialize_carry(self, batch_shape: tuple[int, ...] = ()) -> LSTMCarry:
    return self._zeros(batch_shape), self._zeros(batch_shape)


class GRUCell(RecurrentCell):
  r"""Gated recurrent unit (Cho et al. 2014), in two variants.

  variant="pytorch" (also cuDNN's; the reset gate acts after the recurrent product):
      r = sigma(x W_xr + b_r + h W_hr)
      z = sigma(x W_xz + b_z + h W_hz)
      n = tanh (x W_xn + b_n + r * (h W_hn + b_hn))
      h' = (1 - z) * n + z * h

  variant="cho2014" (the paper's; the reset gate acts on h before the product):
      n = tanh (x W_xn + b_n + (r * h) W_hn)

  carry = h [..., H]; output y_t = h_t. Only the pytorch variant has `recurrent_bias`
  b_hn [H], which cannot be folded into b_n because r multiplies it. `update_bias` initializes
  b_z (default 0; > 0 starts the cell copying h forward, the GRU's analogue of a forget bias).
  """

  num_gates = 3
  carry_form = "h [..., H]"
  variants = ("pytorch", "cho2014")

  def __init__(
    self, in_features: int, hidden_features: int, *, variant: str = "pytorch", update_bias: float = 0.0, **kwargs
  ):
    _validate.choice("variant", variant, self.variants)
    super().__init__(in_features, hidden_features, **kwargs)
    H = hidden_features
    self.bias[...] = self.bias[...].at[H : 2 * H].set(update_bias)  # gate order r, z, n
    self.variant = variant
    if variant == "pytorch":
      self.recurrent_bias = nnx.Param(jnp.zeros((hidden_features,), self.bias[...].dtype))

  def recur(self, h: jax.Array, projected: jax.Array):
    H = self.hidden_features
    W_h = self.recurrent_kernel[...]  # [H, 3H]: r | z | n
    x_r, x_z, x_n = jnp.split(projected.astype(h.dtype), 3, axis=-1)
    pytorch = self.variant == "pytorch"
    h_gates = self._recurrent(h, W_h if pytorch else W_h[:, : 2 * H])  # [..., 3H] or [..., 2H]
    r = jax.nn.sigmoid(x_r + h_gates[..., :H])
    z = jax.nn.sigmoid(x_z + h_gates[..., H : 2 * H])
    if pytorch:
      h_n = h_gates[..., 2 * H :]
      n = jnp.tanh(x_n + r * (h_n + _along_last(self.recurrent_bias[...], h_n).astype(h.dtype)))
    else:
      n = jnp.tanh(x_n + self._recurrent(r * h, W_h[:, 2 * H :]))
    h = (1.0 - z) * n + z * h
    return h, h

  def initialize_carry(self, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    return self._zeros(batch_shape)
