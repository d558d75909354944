"""Weights for cuDNN's LSTM (jax.experimental.rnn): the packed vector, run by jax's own
reference implementation of the cuDNN layout (lstm_ref, which runs on CPU), gives seqjax's outputs."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.experimental import rnn as jax_rnn

from seqjax.interop import rnn_to_cudnn
from seqjax.recurrent import StackedRNN
from tests.helpers import normal

B, T, F, H = 3, 7, 4, 6


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_weights_reproduce_seqjax_under_jax_reference_lstm(num_layers, bidirectional):
  model = StackedRNN("lstm", F, H, num_layers=num_layers, bidirectional=bidirectional, rngs=nnx.Rngs(0))
  # a nonzero bias in every gate, so a misplaced bias block shows
  for layer in model.layers:
    for rnn in (layer.forward_rnn, layer.backward_rnn) if bidirectional else (layer,):
      rnn.cell.bias[...] = jnp.asarray(normal(1, 4 * H))
  weights = rnn_to_cudnn(model)
  assert weights.shape == (jax_rnn.get_num_params_in_lstm(F, H, num_layers, bidirectional),)
  x = jnp.asarray(normal(2, B, T, F))
  directions = 2 if bidirectional else 1
  zeros = jnp.zeros((directions * num_layers, B, H))
  W_ih, W_hh, b_ih, b_hh = jax_rnn.unpack_lstm_weights(jnp.asarray(weights), F, H, num_layers, bidirectional)
  lengths = jnp.full((B,), T, jnp.int32)
  want, *_ = jax_rnn.lstm_ref(x, zeros, zeros, W_ih, W_hh, b_ih, b_hh, lengths, F, H, num_layers, 0.0, bidirectional)
  got = model(x)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_only_lstms_have_cudnn_weights():
  with pytest.raises(ValueError, match="kind 'lstm'"):
    rnn_to_cudnn(StackedRNN("gru", F, H, rngs=nnx.Rngs(0)))
