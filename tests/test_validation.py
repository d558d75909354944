"""Bad input raises ValueError naming the argument, before any work is done."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax.interop import rnn_from_torch, rnn_to_torch
from seqjax.recurrent import RNN, Bidirectional, ElmanCell, GRUCell, LSTMCell, StackedRNN, initializer, spectrum

B, T, F, H = 2, 5, 3, 4


@pytest.fixture
def rnn():
  return RNN(LSTMCell(F, H, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize(
  "x,match",
  [
    (np.zeros((T, F), np.float32), r"x must have shape \[B, T, F\] \(rank 3\)"),
    (np.zeros((B, T, F, 1), np.float32), r"x must have shape \[B, T, F\] \(rank 3\)"),
    (np.zeros((B, T, F + 1), np.float32), r"x must have shape \[B, T, F=3\]"),
    (np.zeros((B, T, F), np.int32), r"x must be a floating array"),
    ([[1.0]], r"x must be an array"),
  ],
)
def test_bad_inputs(rnn, x, match):
  with pytest.raises(ValueError, match=match):
    rnn(x)


@pytest.mark.parametrize(
  "mask,match",
  [
    (np.ones((B, T + 1), bool), r"mask must be a bool array \[B, T\] = \[2, 5\], got bool\[2, 6\]"),
    (np.ones((B, T), np.int32), r"mask must be a bool array \[B, T\]"),
    (np.arange(T)[None, :] < np.array([[0], [5]]), r"rows \[0\] are not"),  # an empty row
    (np.arange(T)[None, :] >= np.array([[2], [0]]), r"as a prefix \(True..., then False...\)"),  # left padding
  ],
)
def test_bad_padding_masks(rnn, mask, match):
  with pytest.raises(ValueError, match=match):
    rnn(np.zeros((B, T, F), np.float32), mask=jnp.asarray(mask))


def test_mask_shape_checked_under_jit(rnn):
  with pytest.raises(ValueError, match="mask must be a bool array"):
    nnx.jit(lambda m, x, n: m(x, mask=n))(rnn, jnp.zeros((B, T, F)), jnp.ones((3, T), bool))


def test_bad_initial_carry(rnn):
  with pytest.raises(ValueError, match="initial_carry must have leaf shapes"):
    rnn(np.zeros((B, T, F), np.float32), initial_carry=jnp.zeros((B, H)))


def test_cell_input_size_checked():
  with pytest.raises(ValueError, match=r"x must have shape \[..., F=3\]"):
    ElmanCell(F, H, rngs=nnx.Rngs(0))(jnp.zeros((B, H)), jnp.zeros((B, F + 2)))


@pytest.mark.parametrize(
  "build,match",
  [
    (lambda: ElmanCell(F, H, activation="sigmoid", rngs=nnx.Rngs(0)), "activation must be one of"),
    (lambda: GRUCell(F, H, variant="keras", rngs=nnx.Rngs(0)), "variant must be one of"),
    (lambda: LSTMCell(F, H, kernel_init="he", rngs=nnx.Rngs(0)), "init must be one of"),
    (lambda: LSTMCell(F, H, recurrent_init="zeros", rngs=nnx.Rngs(0)), "init must be one of"),
    (lambda: LSTMCell(F, H, kernel_init="identity", rngs=nnx.Rngs(0)), "kernel_init='identity' needs"),
    (lambda: LSTMCell(0, H, rngs=nnx.Rngs(0)), "in_features must be a positive integer"),
    (lambda: LSTMCell(F, 2.5, rngs=nnx.Rngs(0)), "hidden_features must be a positive integer"),
    (lambda: initializer("orthogonal", gain=0.0), "gain must be > 0"),
    (lambda: StackedRNN("transformer", F, H, rngs=nnx.Rngs(0)), "kind must be one of"),
    (lambda: StackedRNN("lstm", F, H, num_layers=0, rngs=nnx.Rngs(0)), "num_layers must be a positive integer"),
    (lambda: StackedRNN("lstm", F, H, dropout_rate=1.0, rngs=nnx.Rngs(0)), r"dropout_rate must be in \[0, 1\)"),
    (lambda: StackedRNN("lstm", F, H, merge="mean", rngs=nnx.Rngs(0)), "merge must be one of"),
    (lambda: spectrum(np.zeros((3, 4))), r"matrix must be square \[H, H\]"),
  ],
)
def test_bad_construction(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_bidirectional_mismatches():
  fwd = RNN(LSTMCell(F, H, rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match="merge='sum' needs equal hidden sizes"):
    Bidirectional(fwd, RNN(LSTMCell(F, H + 1, rngs=nnx.Rngs(1))), merge="sum")
  with pytest.raises(ValueError, match="must agree on time_major"):
    Bidirectional(fwd, RNN(LSTMCell(F, H, rngs=nnx.Rngs(1)), time_major=True))


def test_stacked_initial_carry_count():
  stack = StackedRNN("gru", F, H, num_layers=2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"initial_carry must hold one carry per layer \(2\)"):
    stack.run(np.zeros((B, T, F), np.float32), initial_carry=(jnp.zeros((B, H)),))


def test_interop_errors():
  good = {"weight_ih_l0": np.zeros((3 * H, F)), "weight_hh_l0": np.zeros((3 * H, H))}
  with pytest.raises(ValueError, match="kind must be one of"):
    rnn_from_torch(good, kind="lstm2")
  with pytest.raises(ValueError, match=r"'weight_hh_l0'\] must have shape \(12, 3\)"):  # a GRU read as an LSTM
    rnn_from_torch(good, kind="lstm")
  with pytest.raises(ValueError, match="without proj_size does not have"):
    rnn_from_torch({**good, "weight_hr_l0": np.zeros((2, H))}, kind="gru")
  with pytest.raises(ValueError, match="lacks"):
    rnn_from_torch({**good, "weight_ih_l1": np.zeros((3 * H, H))}, kind="gru")
  with pytest.raises(ValueError, match="G\\*H rows with G=4"):
    rnn_from_torch({"weight_ih_l0": np.zeros((6, F)), "weight_hh_l0": np.zeros((6, H))}, kind="lstm")
  cho = StackedRNN("gru", F, H, variant="cho2014", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="'pytorch' GRU variant"):
    rnn_to_torch(cho)
  with pytest.raises(ValueError, match="residual"):
    rnn_to_torch(StackedRNN("gru", F, H, num_layers=2, residual=True, rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match=r"must be a seqjax\.recurrent\.StackedRNN"):
    rnn_to_torch(jax.numpy.zeros(3))
