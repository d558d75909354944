"""Dilated convolution stacks: a NumPy loop of the equation, causality and the receptive field
measured by gradients, padding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax.conv import DilatedConvStack
from tests.helpers import normal, prefix_mask, randomize

F_IN, F = 3, 4


def stack(num_layers=3, **options):
  return randomize(DilatedConvStack(F_IN, F, num_layers, rngs=nnx.Rngs(0), **options), 0, scale=0.5)


def numpy_stack(model: DilatedConvStack, x: np.ndarray) -> np.ndarray:
  """The module docstring's equations, one output position at a time."""
  h = x @ np.asarray(model.project.kernel[...]) + np.asarray(model.project.bias[...])  # [B, T, F]
  T, k = x.shape[1], model.kernel_size
  for conv, d in zip(model.convs, model.dilations, strict=True):
    kernel, bias = np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])  # [k, F, W], [W]
    span = (k - 1) * d
    first = -span if model.causal else -(span // 2)  # offset of tap 0 from the output position
    y = np.zeros((*h.shape[:2], kernel.shape[-1])) + bias
    for t in range(T):
      for i in range(k):
        s = t + first + i * d
        if 0 <= s < T:
          y[:, t] += h[:, s] @ kernel[i]
    if model.unit == "relu":
      y = np.maximum(y, 0)
    else:
      a, g = np.split(y, 2, axis=-1)
      y = (np.tanh(a) if model.unit == "gated" else a) / (1 + np.exp(-g))
    h = h + y if model.residual else y
  return h


@pytest.mark.parametrize(
  "options",
  [{}, {"gated": True}, {"glu": True, "causal": False}, {"kernel_size": 3, "dilation_base": 3, "residual": False}],
)
def test_equals_a_numpy_loop_of_the_equation(options):
  model = stack(**options)
  x = normal(1, 2, 19, F_IN)
  np.testing.assert_allclose(model(jnp.asarray(x)), numpy_stack(model, x.astype(np.float64)), rtol=1e-4, atol=1e-5)


def reach(model, x, t):
  """[T] bool: the inputs output position t depends on, by the gradient of its sum."""
  grad = jax.grad(lambda x: model(x)[:, t].sum())(x)
  return np.asarray(jnp.abs(grad).sum(axis=(0, 2)) > 0)


@pytest.mark.parametrize("layers,kernel_size,unit", [(3, 2, "gated"), (4, 2, "glu"), (2, 3, "gated")])
def test_causal_receptive_field_measured_by_gradients(layers, kernel_size, unit):
  model = stack(layers, kernel_size=kernel_size, **{unit: True})
  x = jnp.asarray(normal(2, 1, 40, F_IN))
  seen = reach(model, x, 39)
  assert int(seen.sum()) == model.receptive_field  # the attribute, measured
  assert seen[40 - model.receptive_field :].all()  # a contiguous window ending at t
  for t in (0, 10, 25):
    assert not reach(model, x, t)[t + 1 :].any()  # causal: nothing after t


def test_non_causal_window_is_centred_and_of_the_same_size():
  model = stack(3, gated=True, causal=False)
  seen = reach(model, jnp.asarray(normal(2, 1, 40, F_IN)), 20)
  assert int(seen.sum()) == model.receptive_field == 8
  assert seen[20 + 1 :].any() and seen[:20].any()


def test_padding_never_reaches_real_positions():
  model = stack(3, glu=True, causal=False)
  x = jnp.asarray(normal(3, 2, 12, F_IN))
  mask = prefix_mask([12, 7], 12)
  padded = model(x.at[1, 7:].set(1e3), mask=mask)
  alone = model(x[1:, :7])
  np.testing.assert_allclose(padded[1, :7], alone[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(padded[1, 7:], 0.0)


@pytest.mark.parametrize(
  "build,match",
  [
    (lambda: DilatedConvStack(3, 4, 0, rngs=nnx.Rngs(0)), "num_layers must be a positive integer"),
    (lambda: DilatedConvStack(3, 4, 2, kernel_size=0, rngs=nnx.Rngs(0)), "kernel_size must be a positive integer"),
    (lambda: DilatedConvStack(3, 4, 2, gated=True, glu=True, rngs=nnx.Rngs(0)), "exclude each other"),
    (lambda: stack()(jnp.zeros((2, 5, 2))), r"x must have shape \[B, T, F=3\]|F=3"),
    (lambda: stack()(jnp.zeros((2, 5, 3)), mask=jnp.ones((2, 4), bool)), r"mask must be a bool array \[B, T\]"),
  ],
)
def test_bad_input_is_refused(build, match):
  with pytest.raises(ValueError, match=match):
    build()
