"""Initialization strategies and the spectrum helper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax.recurrent import GRUCell, LSTMCell, StackedRNN, initializer, spectrum

H = 64


def recurrent_blocks(cell):
  return np.split(np.asarray(cell.recurrent_kernel[...]), cell.num_gates, axis=1)


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_recurrent_blocks_preserve_norms(gain):
  cell = LSTMCell(8, H, recurrent_init="orthogonal", recurrent_gain=gain, rngs=nnx.Rngs(0))
  for block in recurrent_blocks(cell):
    np.testing.assert_allclose(block.T @ block, gain**2 * np.eye(H), atol=1e-5)
    s = spectrum(block)
    np.testing.assert_allclose(s.singular_values, gain, rtol=1e-5)
    np.testing.assert_allclose(s.spectral_radius, gain, rtol=1e-5)


def test_identity_recurrent_blocks():
  cell = StackedRNN("rnn_relu", 8, H, recurrent_init="identity", recurrent_gain=0.9, rngs=nnx.Rngs(0)).layers[0].cell
  np.testing.assert_array_equal(cell.recurrent_kernel[...], 0.9 * np.eye(H, dtype=np.float32))
  assert spectrum(cell.recurrent_kernel[...]).spectral_radius == pytest.approx(0.9)


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_uniform_bounds_and_variance(gain):
  fan_in, fan_out = 300, 200
  w = np.asarray(initializer("xavier_uniform", gain)(jax.random.key(0), (fan_in, fan_out), jnp.float32))
  limit = gain * np.sqrt(6.0 / (fan_in + fan_out))
  assert np.abs(w).max() <= limit
  assert np.abs(w).max() > 0.99 * limit
  np.testing.assert_allclose(w.var(), limit**2 / 3.0, rtol=0.03)  # var of U(-a, a) is a^2/3


def test_pytorch_uniform_is_torchs_default_rnn_init():
  torch = pytest.importorskip("torch")
  H = 64
  w = np.asarray(initializer("pytorch_uniform")(jax.random.key(0), (H, H), jnp.float32))
  reference = torch.nn.LSTM(8, H).weight_hh_l0.detach().numpy()  # torch's own draw, U(-1/sqrt(H), 1/sqrt(H))
  bound = 1 / np.sqrt(H)
  assert np.abs(w).max() <= bound and np.abs(reference).max() <= bound
  np.testing.assert_allclose(w.var(), reference.var(), rtol=0.1)  # both bound^2 / 3


@pytest.mark.parametrize("update_bias", [0.0, 2.0])
def test_gru_update_bias_sits_in_the_update_gate_only(update_bias):
  cell = GRUCell(8, 16, update_bias=update_bias, rngs=nnx.Rngs(0))
  b_r, b_z, b_n = np.split(np.asarray(cell.bias[...]), 3)
  np.testing.assert_array_equal(b_z, update_bias)
  for other in (b_r, b_n):
    np.testing.assert_array_equal(other, 0.0)


def test_xavier_normal_std():
  fan_in, fan_out = 300, 200
  w = np.asarray(initializer("xavier_normal", 1.5)(jax.random.key(0), (fan_in, fan_out), jnp.float32))
  np.testing.assert_allclose(w.std(), 1.5 * np.sqrt(2.0 / (fan_in + fan_out)), rtol=0.02)


def test_gate_blocks_are_drawn_independently():
  cell = LSTMCell(8, 16, rngs=nnx.Rngs(0))
  blocks = recurrent_blocks(cell)
  assert not np.allclose(blocks[0], blocks[1])


@pytest.mark.parametrize("forget_bias", [1.0, 2.0, 0.0])
def test_lstm_forget_bias_sits_in_the_forget_gate_only(forget_bias):
  cell = LSTMCell(8, 16, forget_bias=forget_bias, rngs=nnx.Rngs(0))
  b_i, b_f, b_g, b_o = np.split(np.asarray(cell.bias[...]), 4)
  np.testing.assert_array_equal(b_f, forget_bias)
  for other in (b_i, b_g, b_o):
    np.testing.assert_array_equal(other, 0.0)


def test_spectrum_of_a_known_matrix():
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
  eig = np.array([1.5, -0.9, 0.5, 0.3, 0.2, 0.1])
  m = q @ np.diag(eig) @ q.T  # symmetric: singular values are |eigenvalues|
  s = spectrum(m)
  assert s.spectral_radius == pytest.approx(1.5)
  np.testing.assert_allclose(s.singular_values, np.sort(np.abs(eig))[::-1], rtol=1e-10)
  np.testing.assert_allclose(np.sort(s.eigenvalues.real), np.sort(eig), rtol=1e-10)
