"""Weights from and to torch.nn.RNN / LSTM / GRU: same outputs for the same input."""

import itertools

import numpy as np
import pytest
from flax import nnx

from seqjax.interop import rnn_from_torch, rnn_to_torch
from seqjax.recurrent import StackedRNN
from tests.helpers import forward, normal, randomize

torch = pytest.importorskip("torch")

B, T, F, H = 3, 7, 4, 6
# StackedRNN.run compiled as one program (eagerly, each op compiles on its own)
run_stack = nnx.jit(lambda model, x: model.run(x))
CASES = list(itertools.product(["rnn_tanh", "rnn_relu", "lstm", "gru"], [1, 2], [False, True], [True, False]))


def torch_module(kind, num_layers, bidirectional, batch_first, seed=0):
  torch.manual_seed(seed)
  module_class = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
  extra = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}
  return module_class(F, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, **extra)


def run_torch(module, x):
  with torch.no_grad():
    output, final = module(torch.from_numpy(x))
  return output.numpy(), final


def state_dict_numpy(module):
  return {name: value.detach().numpy() for name, value in module.state_dict().items()}


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first", CASES)
def test_from_torch_gives_torch_outputs(kind, num_layers, bidirectional, batch_first):
  module = torch_module(kind, num_layers, bidirectional, batch_first)
  model = rnn_from_torch(state_dict_numpy(module), kind=kind, batch_first=batch_first)
  x = normal(1, B, T, F) if batch_first else normal(1, T, B, F)
  want, want_final = run_torch(module, x)
  got, carries = run_stack(model, x)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # torch's h_n is [L * directions, B, H], layer-major, forward before backward
  h_n = want_final[0] if kind == "lstm" else want_final
  ours = [c for layer in carries for c in (layer if bidirectional else (layer,))]
  ours_h = [c[1] if kind == "lstm" else c for c in ours]
  np.testing.assert_allclose(np.stack(ours_h), h_n.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind,num_layers,bidirectional", [(k, n, b) for k, n, b, first in CASES if first])
def test_to_torch_loads_into_torch_and_round_trips(kind, num_layers, bidirectional):
  model = randomize(StackedRNN(kind, F, H, num_layers=num_layers, bidirectional=bidirectional, rngs=nnx.Rngs(0)))
  state = rnn_to_torch(model)
  module = torch_module(kind, num_layers, bidirectional, batch_first=True, seed=1)
  module.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
  x = normal(2, B, T, F)
  ours = forward(model, x)
  np.testing.assert_allclose(run_torch(module, x)[0], ours, rtol=1e-5, atol=1e-5)
  back = rnn_from_torch(state, kind=kind)
  np.testing.assert_allclose(forward(back, x), ours, rtol=1e-6, atol=1e-6)


def test_state_dict_without_biases():
  torch.manual_seed(0)
  module = torch.nn.GRU(F, H, bias=False, batch_first=True)
  model = rnn_from_torch(state_dict_numpy(module), kind="gru")
  x = normal(1, B, T, F)
  np.testing.assert_allclose(forward(model, x), run_torch(module, x)[0], rtol=1e-5, atol=1e-5)
