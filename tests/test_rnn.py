"""RNN, Bidirectional and StackedRNN against hand-written loops and reversals."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from seqjax.recurrent import RNN, Bidirectional, StackedRNN, make_cell
from tests.helpers import normal, prefix_mask, randomize
from tests.test_zoo import IndRNNCell  # a cell written from the contract alone: h' = relu(x W + b + u * h)

B, T, F, H = 3, 6, 4, 5
LENGTHS = np.array([6, 2, 4], np.int32)
MASK = prefix_mask(LENGTHS, T)  # [B, T]
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def cell_of(kind, seed=0, features=F):
  return randomize(make_cell(kind, features, H, rngs=nnx.Rngs(seed)), seed)


def row(tree, b):
  """Example b of every leaf of a batched pytree."""
  return jax.tree.map(lambda leaf: leaf[b], tree)


def python_loop(cell, x):
  """The recurrence by hand: one cell call per step, batch-first."""
  carry = cell.initialize_carry((x.shape[0],))
  outputs = []
  for t in range(x.shape[1]):
    carry, y = cell(carry, x[:, t])
    outputs.append(y)
  return jnp.stack(outputs, axis=1), carry


@pytest.mark.parametrize("hoist", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_scan_equals_python_loop(kind, hoist):
  cell = cell_of(kind)
  x = jnp.asarray(normal(1, B, T, F))
  outputs, carry = RNN(cell, hoist_input_projection=hoist)(x)
  want_outputs, want_carry = python_loop(cell, x)
  chex.assert_shape(outputs, (B, T, H))
  chex.assert_trees_all_close((outputs, carry), (want_outputs, want_carry), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_changes_real_positions(kind, reverse):
  """Each padded sequence gives what it gives alone, unpadded; padding outputs are zero."""
  rnn = RNN(cell_of(kind))
  x = jnp.asarray(normal(1, B, T, F))
  padded = x.at[1, 2:].set(1e3)  # garbage after the end must not leak in
  outputs, carry = rnn(padded, mask=MASK, reverse=reverse)
  for b, n in enumerate(LENGTHS):
    alone, alone_carry = rnn(x[b : b + 1, :n], reverse=reverse)
    np.testing.assert_allclose(outputs[b, :n], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs[b, n:], 0.0)
    chex.assert_trees_all_close(row(carry, b), row(alone_carry, 0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_reverse_equals_forward_run_on_reversed_input(kind):
  rnn = RNN(cell_of(kind))
  x = jnp.asarray(normal(1, B, T, F))
  backward, carry = rnn(x, reverse=True)
  forward_on_reversed, want_carry = rnn(x[:, ::-1])
  np.testing.assert_allclose(backward, forward_on_reversed[:, ::-1], rtol=1e-6)
  chex.assert_trees_all_close(carry, want_carry, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_equals_reversal_by_hand(merge):
  forward, backward = RNN(cell_of("lstm", 0)), RNN(cell_of("lstm", 1))
  bi = Bidirectional(forward, backward, merge=merge)
  x = jnp.asarray(normal(2, B, T, F))
  outputs, (fwd_carry, bwd_carry) = bi(x, mask=MASK)
  for b, n in enumerate(LENGTHS):
    seq = x[b : b + 1, :n]
    fwd, fwd_c = python_loop(forward.cell, seq)
    bwd_reversed, bwd_c = python_loop(backward.cell, seq[:, ::-1])
    bwd = bwd_reversed[:, ::-1]
    want = jnp.concatenate([fwd, bwd], -1) if merge == "concat" else fwd + bwd
    np.testing.assert_allclose(outputs[b, :n], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs[b, n:], 0.0)
    chex.assert_trees_all_close(
      row((fwd_carry, bwd_carry), b),
      row((fwd_c, bwd_c), 0),
      rtol=1e-5,
      atol=1e-6,
    )


def test_time_major_equals_batch_major():
  kwargs = dict(num_layers=2, bidirectional=True)
  batch_major = StackedRNN("gru", F, H, rngs=nnx.Rngs(0), **kwargs)
  time_major = StackedRNN("gru", F, H, time_major=True, rngs=nnx.Rngs(0), **kwargs)
  x = jnp.asarray(normal(1, B, T, F))
  y_bm, c_bm = batch_major.run(x, mask=MASK)
  y_tm, c_tm = time_major.run(jnp.swapaxes(x, 0, 1), mask=MASK)  # the mask stays [B, T]
  np.testing.assert_allclose(y_bm, jnp.swapaxes(y_tm, 0, 1), rtol=1e-6)
  chex.assert_trees_all_close(c_bm, c_tm, rtol=1e-5, atol=1e-6)


def test_initial_carry_is_used():
  rnn = RNN(cell_of("lstm"))
  x = jnp.asarray(normal(1, B, T, F))
  start = (jnp.asarray(normal(2, B, H)), jnp.asarray(normal(3, B, H)))
  outputs, _ = rnn(x, initial_carry=start)
  _, first = rnn.cell(start, x[:, 0])
  np.testing.assert_allclose(outputs[:, 0], first, rtol=1e-6)
  # continuing from a carry equals running the whole sequence at once
  head, head_carry = rnn(x[:, :3])
  tail, _ = rnn(x[:, 3:], initial_carry=head_carry)
  whole, _ = rnn(x)
  np.testing.assert_allclose(jnp.concatenate([head, tail], 1), whole, rtol=1e-5, atol=1e-6)


def test_stacked_equals_layers_chained_by_hand():
  stack = randomize(StackedRNN("lstm", F, H, num_layers=2, bidirectional=True, rngs=nnx.Rngs(0)))
  x = jnp.asarray(normal(1, B, T, F))
  outputs, carries = stack.run(x, mask=MASK)
  first, c0 = stack.layers[0](x, mask=MASK)
  second, c1 = stack.layers[1](first, mask=MASK)
  chex.assert_shape(outputs, (B, T, 2 * H))
  chex.assert_trees_all_close((outputs, carries), (second, (c0, c1)), rtol=1e-5, atol=1e-6)


def test_residual_adds_layer_input_from_second_layer():
  stack = randomize(StackedRNN("gru", F, H, num_layers=3, residual=True, rngs=nnx.Rngs(0)))
  x = jnp.asarray(normal(1, B, T, F))
  y0, _ = stack.layers[0](x)
  y1, _ = stack.layers[1](y0)
  y2, _ = stack.layers[2](y0 + y1)
  np.testing.assert_allclose(stack(x), y0 + y1 + y2, rtol=1e-6)


def test_dropout_only_with_key_and_deterministic_per_key():
  stack = StackedRNN("lstm", F, H, num_layers=3, dropout_rate=0.5, rngs=nnx.Rngs(0))
  x = jnp.asarray(normal(1, B, T, F))
  evaluation = stack(x)
  plain = StackedRNN("lstm", F, H, num_layers=3, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(evaluation, plain(x))
  key = jax.random.key(7)
  a = stack(x, dropout_key=key)
  b = stack(x, dropout_key=key)
  c = stack(x, dropout_key=jax.random.key(8))
  np.testing.assert_array_equal(a, b)
  assert np.abs(np.asarray(a - evaluation)).max() > 1e-3
  assert np.abs(np.asarray(a - c)).max() > 1e-3
  jitted = nnx.jit(lambda m, x, k: m(x, dropout_key=k))(stack, x, key)
  np.testing.assert_allclose(jitted, a, rtol=1e-5, atol=1e-6)


def test_jit_and_vmap_over_rnn():
  rnn = RNN(cell_of("gru"))
  x = jnp.asarray(normal(1, 2, B, T, F))  # [E, B, T, F]: vmapped over E
  eager = jnp.stack([rnn(x[e], mask=MASK)[0] for e in range(2)])
  vmapped = jax.vmap(lambda xe: rnn(xe, mask=MASK)[0])(x)
  jitted = nnx.jit(lambda m, xe: m(xe, mask=MASK)[0])(rnn, x[0])
  np.testing.assert_allclose(vmapped, eager, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jitted, eager[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_rnn_gradients_match_finite_differences(kind):
  with jax.enable_x64(True):
    stack = randomize(StackedRNN(kind, F, H, bidirectional=True, param_dtype=jnp.float64, rngs=nnx.Rngs(0)))
    graphdef, params = nnx.split(stack)
    x = jnp.asarray(normal(1, B, 4, F, dtype=np.float64))
    mask = prefix_mask([4, 1, 3], 4)

    def loss(params, x):
      outputs = nnx.merge(graphdef, params)(x, mask=mask)
      return jnp.sum(jnp.sin(outputs))

    check_grads(loss, (params, x), order=1, modes=("rev",))


def numpy_indrnn(cell: IndRNNCell, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """The IndRNN equations in NumPy, each row run to its own length, zeros past it."""
  W, b, u = (np.asarray(a, np.float64) for a in (cell.input.kernel[...], cell.input.bias[...], cell.recurrent[...]))
  out = np.zeros((*x.shape[:2], cell.hidden_features))
  for row_index, length in enumerate(lengths):
    h = np.zeros(cell.hidden_features)
    for t in range(length):
      h = np.maximum(x[row_index, t] @ W + b + u * h, 0.0)
      out[row_index, t] = h
  return out


@pytest.mark.parametrize("hoist", [True, False])
def test_a_custom_cell_factory_stacks_and_runs_as_its_equations(hoist):
  stack = StackedRNN(IndRNNCell, F, H, num_layers=2, hoist_input_projection=hoist, rngs=nnx.Rngs(0))
  x = normal(1, B, T, F)
  first = numpy_indrnn(stack.layers[0].cell, x, LENGTHS)
  want = numpy_indrnn(stack.layers[1].cell, first, LENGTHS)
  np.testing.assert_allclose(stack(jnp.asarray(x), mask=MASK), want, rtol=1e-5, atol=1e-6)
  assert stack.kind == "IndRNNCell" and stack.causal and stack.out_features == H


def test_one_built_cell_serves_one_layer_and_is_refused_for_more():
  cell = IndRNNCell(F, H, rngs=nnx.Rngs(0))
  x = normal(1, B, T, F)
  np.testing.assert_allclose(
    StackedRNN(cell, F, H, rngs=nnx.Rngs(1))(jnp.asarray(x)), numpy_indrnn(cell, x, [T] * B), rtol=1e-5, atol=1e-6
  )
  with pytest.raises(ValueError, match="one cell instance serves one layer in one direction"):
    StackedRNN(cell, F, H, num_layers=2, rngs=nnx.Rngs(0))
  with pytest.raises(
    ValueError, match="the given cell reads 4 and keeps 5 features, the stack asks for in_features=4, hidden_features=6"
  ):
    StackedRNN(cell, F, 6, rngs=nnx.Rngs(0))


def test_a_cell_breaking_the_contract_is_refused_naming_what_it_lacks():
  class NoSizes(IndRNNCell):
    def __init__(self, in_features, hidden_features, *, rngs):
      super().__init__(in_features, hidden_features, rngs=rngs)
      del self.hidden_features
      self.recur = None

  with pytest.raises(
    ValueError,
    match=r"cell NoSizes does not keep the cell contract: hidden_features \(int.*missing\); recur \(method.*got None\)",
  ):
    StackedRNN(NoSizes, F, H, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"cell NoSizes does not keep the cell contract: hidden_features"):
    RNN(NoSizes(F, H, rngs=nnx.Rngs(0)))
  with pytest.raises(
    ValueError, match=r"kind must be one of \['rnn_tanh', 'rnn_relu', 'lstm', 'gru'\], a cell factory or a cell, got 3"
  ):
    StackedRNN(3, F, H, rngs=nnx.Rngs(0))


def test_a_causal_stack_steps_as_it_runs_and_a_bidirectional_one_cannot_step():
  stack = randomize(StackedRNN("lstm", F, H, num_layers=2, residual=True, rngs=nnx.Rngs(0)))
  x = jnp.asarray(normal(1, B, T, F))
  state, steps = stack.init_state(B), []
  for t in range(T):
    y, state = stack.step(state, x[:, t])
    steps.append(y)
  outputs, carries = stack.run(x)
  np.testing.assert_allclose(jnp.stack(steps, 1), outputs, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(state, carries, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="a bidirectional StackedRNN reads the whole sequence"):
    StackedRNN("gru", F, H, bidirectional=True, rngs=nnx.Rngs(0)).init_state(B)
