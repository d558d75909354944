"""Multi-layer (optionally bidirectional) recurrent networks, built by cell kind."""

import jax
from flax import nnx

from seqjax import _validate
from seqjax.dropout import dropout, split_key
from seqjax.recurrent.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell
from seqjax.recurrent.rnn import RNN, Bidirectional

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # the names torch.nn.RNN/LSTM/GRU go by


def make_cell(kind: str, in_features: int, hidden_features: int, *, rngs: nnx.Rngs, **options) -> RecurrentCell:
  """A cell of `kind` (one of KINDS); `options` go to the cell (inits, forget_bias, variant)."""
  _validate.choice("kind", kind, KINDS)
  if kind.startswith("rnn_"):
    return ElmanCell(in_features, hidden_features, activation=kind.removeprefix("rnn_"), rngs=rngs, **options)
  cell_class = LSTMCell if kind == "lstm" else GRUCell
  return cell_class(in_features, hidden_features, rngs=rngs, **options)


class StackedRNN(nnx.Module):
  """`num_layers` recurrent layers of one `kind`, each reading the previous one's outputs.

  stack(x, *, mask=None, initial_carry=None, dropout_key=None) -> (outputs, carries)

    x             [B, T, F] ([T, B, F] if time_major)
    mask          [B, T] bool, each row's real steps a prefix (`RNN`)
    outputs       [B, T, D] with D = H, or 2H for bidirectional merge="concat"
    carries       tuple over layers of each layer's final carry; a bidirectional
                  layer's is (forward_carry, backward_carry). initial_carry has the same form.
    dropout_key   with dropout_rate > 0, drops the outputs of every layer but the last
                  (training); without a key, no dropout (evaluation). Keys are arguments,
                  so the call stays a pure function of (params, x, key).
    residual      from the second layer on, a layer's input is added to its output.
  """

  def __init__(
    self,
    kind: str,
    in_features: int,
    hidden_features: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    merge: str = "concat",
    dropout_rate: float = 0.0,
    residual: bool = False,
    time_major: bool = False,
    hoist_input_projection: bool | None = None,
    rngs: nnx.Rngs,
    **cell_options,
  ):
    _validate.choice("kind", kind, KINDS)
    _validate.positive_int("num_layers", num_layers)
    _validate.probability("dropout_rate", dropout_rate)
    _validate.choice("merge", merge, Bidirectional.merges)

    def rnn(features: int) -> RNN:
      cell = make_cell(kind, features, hidden_features, rngs=rngs, **cell_options)
      return RNN(cell, time_major=time_major, hoist_input_projection=hoist_input_projection)

    layers = []
    features = in_features
    for _ in range(num_layers):
      layer = Bidirectional(rnn(features), rnn(features), merge=merge) if bidirectional else rnn(features)
      layers.append(layer)
      features = layer.out_features
    self.kind = kind
    self.layers = nnx.List(layers)
    self.dropout_rate = dropout_rate
    self.residual = residual
    self.time_major = time_major

  @property
  def out_features(self) -> int:
    return self.layers[-1].out_features

  def __call__(self, x: jax.Array, *, mask=None, initial_carry=None, dropout_key=None):
    if initial_carry is not None and len(initial_carry) != len(self.layers):
      raise ValueError(f"initial_carry must hold one carry per layer ({len(self.layers)}), got {len(initial_carry)}")
    keys = split_key(dropout_key, len(self.layers))
    carries = []
    for index, layer in enumerate(self.layers):
      if index > 0:
        x = dropout(x, self.dropout_rate, keys[index])  # on the previous layer's outputs
      init = None if initial_carry is None else initial_carry[index]
      y, carry = layer(x, mask=mask, initial_carry=init)
      x = y + x if self.residual and index > 0 else y
      carries.append(carry)
    return x, tuple(carries)
