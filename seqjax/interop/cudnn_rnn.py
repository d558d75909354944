"""Weights for cuDNN's LSTM as `jax.experimental.rnn.lstm` takes them: one flat float32 vector.

cuDNN packs, for each pseudo-layer in order (layer 0 forward, layer 0 reverse, layer 1 ...),
W_ih [4H, F] then W_hh [4H, H], and after all the matrices the biases b_ih, b_hh [4H] in the
same order; every block in PyTorch's layout and gate order (i, f, g, o), which is why this
goes through `rnn_to_torch`.
"""

import numpy as np

from seqjax.interop.torch_rnn import rnn_to_torch, torch_names
from seqjax.recurrent.stacked import StackedRNN


def rnn_to_cudnn(model: StackedRNN) -> np.ndarray:
  """The flat weight vector [P] with which `jax.experimental.rnn.lstm(..., num_layers=len(model.layers),
  bidirectional=...)` computes what the LSTM `model` computes (P = its get_num_params_in_lstm)."""
  if not isinstance(model, StackedRNN) or model.kind != "lstm":
    got = f"{type(model).__name__} of kind {getattr(model, 'kind', None)!r}"
    raise ValueError(f"model must be a seqjax.recurrent.StackedRNN of kind 'lstm' (cuDNN's only RNN in JAX), got {got}")
  state = rnn_to_torch(model)
  names = torch_names(model)  # per pseudo-layer: weight_ih, weight_hh, bias_ih, bias_hh
  matrices = [state[name].ravel() for name in names if name.startswith("weight")]
  biases = [state[name] for name in names if name.startswith("bias")]
  return np.concatenate(matrices + biases)
