"""Cells against flax.nnx's built-in cells, a NumPy reference, and numerical gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from seqjax.recurrent import ElmanCell, GRUCell, LSTMCell
from tests import reference
from tests.helpers import normal, randomize

F, H, B = 3, 5, 4


def _params(cell, gates):
  names = ("input_kernel", "recurrent_kernel", "bias")
  return reference.gates({name: getattr(cell, name)[...] for name in names}, gates)


def test_elman_equals_flax_simple_cell():
  ours = randomize(ElmanCell(F, H, rngs=nnx.Rngs(0)))
  theirs = nnx.SimpleCell(F, H, rngs=nnx.Rngs(1))
  theirs.dense_i.kernel[...] = ours.input_kernel[...]
  theirs.dense_i.bias[...] = ours.bias[...]
  theirs.dense_h.kernel[...] = ours.recurrent_kernel[...]
  h, x = normal(1, B, H), normal(2, B, F)
  np.testing.assert_allclose(ours(h, x)[0], theirs(h, x)[0], rtol=1e-6, atol=1e-6)


def test_lstm_equals_flax_lstm_cell():
  ours = randomize(LSTMCell(F, H, rngs=nnx.Rngs(0)))
  theirs = nnx.LSTMCell(F, H, rngs=nnx.Rngs(1))
  x_blocks = jnp.split(ours.input_kernel[...], 4, axis=1)
  h_blocks = jnp.split(ours.recurrent_kernel[...], 4, axis=1)
  b_blocks = jnp.split(ours.bias[...], 4)
  for gate, W_x, W_h, b in zip("ifgo", x_blocks, h_blocks, b_blocks, strict=True):
    name = "if_" if gate == "f" else f"i{gate}"
    getattr(theirs, name).kernel[...] = W_x
    getattr(theirs, f"h{gate}").kernel[...] = W_h
    getattr(theirs, f"h{gate}").bias[...] = b
  carry, x = (normal(1, B, H), normal(2, B, H)), normal(3, B, F)
  (c, h), y = ours(carry, x)
  (c_ref, h_ref), y_ref = theirs(carry, x)
  for got, want in ((c, c_ref), (h, h_ref), (y, y_ref)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_gru_equals_flax_gru_cell():
  """flax's GRUCell is the pytorch variant without the hidden-side bias b_hn."""
  ours = randomize(GRUCell(F, H, rngs=nnx.Rngs(0)))
  ours.recurrent_bias[...] = jnp.zeros((H,))
  theirs = nnx.GRUCell(F, H, rngs=nnx.Rngs(1))
  theirs.dense_i.kernel[...] = ours.input_kernel[...]
  theirs.dense_i.bias[...] = ours.bias[...]
  theirs.dense_h.kernel[...] = ours.recurrent_kernel[...]
  h, x = normal(1, B, H), normal(2, B, F)
  np.testing.assert_allclose(ours(h, x)[0], theirs(h, x)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_elman_equals_numpy_equations(activation):
  cell = randomize(ElmanCell(F, H, activation=activation, rngs=nnx.Rngs(0)))
  h, x = normal(1, B, H), normal(2, B, F)
  p = {k: v[0] for k, v in _params(cell, 1).items()}
  np.testing.assert_allclose(cell(h, x)[0], reference.elman_step(p, h, x, activation), rtol=1e-5, atol=1e-6)


def test_lstm_equals_numpy_equations():
  cell = randomize(LSTMCell(F, H, rngs=nnx.Rngs(0)))
  c, h, x = normal(1, B, H), normal(2, B, H), normal(3, B, F)
  (c_new, h_new), y = cell((c, h), x)
  c_ref, h_ref = reference.lstm_step(_params(cell, 4), c, h, x)
  np.testing.assert_allclose(c_new, c_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(h_new, h_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(y, h_new)


@pytest.mark.parametrize("variant", ["pytorch", "cho2014"])
def test_gru_equals_numpy_equations(variant):
  cell = randomize(GRUCell(F, H, variant=variant, rngs=nnx.Rngs(0)))
  h, x = normal(1, B, H), normal(2, B, F)
  b_hn = np.asarray(cell.recurrent_bias[...]) if variant == "pytorch" else None
  want = reference.gru_step(_params(cell, 3), h, x, variant, b_hn)
  np.testing.assert_allclose(cell(h, x)[0], want, rtol=1e-5, atol=1e-6)


def test_gru_variants_differ():
  """The reset gate's placement matters: same weights, different outputs."""
  pytorch = randomize(GRUCell(F, H, variant="pytorch", rngs=nnx.Rngs(0)))
  cho = randomize(GRUCell(F, H, variant="cho2014", rngs=nnx.Rngs(0)))
  pytorch.recurrent_bias[...] = jnp.zeros((H,))
  h, x = normal(1, B, H), normal(2, B, F)
  assert np.abs(np.asarray(pytorch(h, x)[0] - cho(h, x)[0])).max() > 1e-3


CELLS = {
  "elman_tanh": (ElmanCell, {}),
  "elman_relu": (ElmanCell, {"activation": "relu"}),
  "lstm": (LSTMCell, {}),
  "gru": (GRUCell, {}),
  "gru_cho2014": (GRUCell, {"variant": "cho2014"}),
}


def make(name, dtype=jnp.float32):
  cell_class, options = CELLS[name]
  return cell_class(F, H, param_dtype=dtype, rngs=nnx.Rngs(0), **options)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_gradients_match_finite_differences(name):
  with jax.enable_x64(True):
    cell = randomize(make(name, jnp.float64))
    graphdef, params = nnx.split(cell)
    carry = jax.tree.map(lambda z: jnp.asarray(normal(1, *z.shape, dtype=np.float64)), cell.initialize_carry((2,)))
    x = jnp.asarray(normal(2, 2, F, dtype=np.float64))

    def step(params, carry, x):
      return nnx.merge(graphdef, params)(carry, x)

    check_grads(step, (params, carry, x), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_under_jit_and_vmap(name):
  cell = make(name)
  x = jnp.asarray(normal(3, B, F))
  carry = cell.initialize_carry((B,))
  batched_carry, batched_y = cell(carry, x)
  jit_carry, jit_y = nnx.jit(lambda c, carry, x: c(carry, x))(cell, carry, x)
  vmap_carry, vmap_y = jax.vmap(cell)(carry, x)  # one example at a time
  chex.assert_trees_all_close((jit_carry, jit_y), (batched_carry, batched_y), rtol=1e-6)
  chex.assert_trees_all_close((vmap_carry, vmap_y), (batched_carry, batched_y), rtol=1e-6)
  chex.assert_shape(batched_y, (B, H))
