"""Weights to and from `torch.nn.RNN` / `LSTM` / `GRU` state dicts, without importing torch.

PyTorch keeps, per layer k and direction (suffix "" or "_reverse"):

    weight_ih_l{k}  [G*H, F]    weight_hh_l{k}  [G*H, H]    bias_ih_l{k}, bias_hh_l{k}  [G*H]

with gates in the order seqjax uses (LSTM i, f, g, o; GRU r, z, n). seqjax kernels are
the transposes, and its one bias per gate is b_ih + b_hh, except GRU's hidden-side
b_hn, which r multiplies and so is kept apart (`GRUCell.recurrent_bias`).
"""

import re
from collections.abc import Mapping

import numpy as np
from flax import nnx

from seqjax import _validate
from seqjax.recurrent.cells import GRUCell, RecurrentCell
from seqjax.recurrent.rnn import Bidirectional
from seqjax.recurrent.stacked import KINDS, StackedRNN

_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?")


def _directions(layer) -> list[tuple[str, RecurrentCell]]:
  if isinstance(layer, Bidirectional):
    return [("", layer.forward_rnn.cell), ("_reverse", layer.backward_rnn.cell)]
  return [("", layer.cell)]


def _array(state_dict: Mapping, name: str, shape: tuple[int, ...]) -> np.ndarray:
  value = np.asarray(state_dict[name], dtype=np.float32)
  if value.shape != shape:
    raise ValueError(f"state_dict[{name!r}] must have shape {shape}, got {value.shape}")
  return value


def rnn_from_torch(state_dict: Mapping[str, np.ndarray], *, kind: str, batch_first: bool = True) -> StackedRNN:
  """A `StackedRNN` computing what the torch module with this `state_dict` computes.

  kind: "rnn_tanh", "rnn_relu", "lstm" or "gru". batch_first=False gives a time-major
  model, as torch's default. Any num_layers; bidirectional when "_reverse" keys exist.
  LSTM projections (proj_size, weight_hr_*) are not supported.
  """
  _validate.choice("kind", kind, KINDS)
  unknown = [name for name in state_dict if not _KEY.fullmatch(name)]
  if unknown:
    raise ValueError(f"state_dict has keys a torch.nn.{kind} module without proj_size does not have: {unknown}")
  if "weight_ih_l0" not in state_dict or "weight_hh_l0" not in state_dict:
    raise ValueError("state_dict must hold at least 'weight_ih_l0' and 'weight_hh_l0'")
  G = _GATES[kind]
  rows, F = np.shape(state_dict["weight_ih_l0"])
  if rows % G:
    raise ValueError(f"state_dict['weight_ih_l0'] must have G*H rows with G={G} for kind={kind!r}, got {rows}")
  H = rows // G
  num_layers = 1 + max(int(_KEY.fullmatch(name).group(2)) for name in state_dict)
  model = StackedRNN(
    kind,
    F,
    H,
    num_layers=num_layers,
    bidirectional="weight_ih_l0_reverse" in state_dict,
    time_major=not batch_first,
    rngs=nnx.Rngs(0),
  )
  expected = set(torch_names(model))
  if missing := expected - set(state_dict) - {n for n in expected if n.startswith("bias")}:
    raise ValueError(f"state_dict lacks {sorted(missing)} for a {num_layers}-layer {kind}")
  if extra := set(state_dict) - expected:
    raise ValueError(f"state_dict has keys {sorted(extra)} that a {num_layers}-layer {kind} does not have")
  for k, layer in enumerate(model.layers):
    for suffix, cell in _directions(layer):
      tag = f"_l{k}{suffix}"
      fan_in = cell.in_features
      cell.input_kernel[...] = _array(state_dict, "weight_ih" + tag, (G * H, fan_in)).T
      cell.recurrent_kernel[...] = _array(state_dict, "weight_hh" + tag, (G * H, H)).T
      b_ih, b_hh = (
        _array(state_dict, name + tag, (G * H,)) if name + tag in state_dict else np.zeros(G * H, np.float32)
        for name in ("bias_ih", "bias_hh")
      )
      if isinstance(cell, GRUCell):
        cell.bias[...] = b_ih + np.concatenate([b_hh[: 2 * H], np.zeros(H, np.float32)])
        cell.recurrent_bias[...] = b_hh[2 * H :]
      else:
        cell.bias[...] = b_ih + b_hh
  return model


def torch_names(model: StackedRNN) -> list[str]:
  """The state_dict keys of the torch module equivalent to `model`."""
  return [
    f"{name}_l{k}{suffix}"
    for k, layer in enumerate(model.layers)
    for suffix, _ in _directions(layer)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
  ]


def rnn_to_torch(model: StackedRNN) -> dict[str, np.ndarray]:
  """The state_dict (numpy arrays) of the torch module computing what `model` computes.

  Load it with `module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})`
  into `torch.nn.{RNN,LSTM,GRU}(F, H, num_layers, bidirectional=...)`, nonlinearity
  "relu" for kind "rnn_relu". bias_hh is zero except GRU's n block (b_hn).
  """
  if not isinstance(model, StackedRNN):
    raise ValueError(f"model must be a seqjax.recurrent.StackedRNN, got {type(model).__name__}")
  if model.kind not in KINDS:
    raise ValueError(f"model's cells must be one of {list(KINDS)} (torch's), got {model.kind!r}")
  if model.residual and len(model.layers) > 1:
    raise ValueError("model has residual connections, which torch.nn.RNN/LSTM/GRU lack")
  if isinstance(model.layers[0], Bidirectional) and model.layers[0].merge != "concat":
    raise ValueError("torch's bidirectional layers concatenate; model must use merge='concat'")
  state = {}
  for k, layer in enumerate(model.layers):
    for suffix, cell in _directions(layer):
      if isinstance(cell, GRUCell) and cell.variant != "pytorch":
        raise ValueError(f"torch.nn.GRU is the 'pytorch' GRU variant, model has {cell.variant!r}")
      tag = f"_l{k}{suffix}"
      bias = np.array(cell.bias[...])  # owned, writable copies: torch.from_numpy needs them
      b_hh = np.zeros_like(bias)
      if isinstance(cell, GRUCell):
        b_hh[2 * cell.hidden_features :] = np.asarray(cell.recurrent_bias[...])
      state["weight_ih" + tag] = np.array(cell.input_kernel[...]).T.copy()
      state["weight_hh" + tag] = np.array(cell.recurrent_kernel[...]).T.copy()
      state["bias_ih" + tag] = bias
      state["bias_hh" + tag] = b_hh
  return state
