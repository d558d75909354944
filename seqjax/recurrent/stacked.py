"""Multi-layer (optionally bidirectional) recurrent networks, built by cell kind or from any cell
that keeps the cell contract (`seqjax.recurrent.rnn.check_cell`)."""

from collections.abc import Callable

import jax
from flax import nnx

from seqjax import _validate
from seqjax.dropout import dropout, split_key
from seqjax.recurrent.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell
from seqjax.recurrent.rnn import RNN, Bidirectional, check_cell, mask_lengths

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # the names torch.nn.RNN/LSTM/GRU go by


def make_cell(kind: str, in_features: int, hidden_features: int, *, rngs: nnx.Rngs, **options) -> RecurrentCell:
  """A cell of `kind` (one of KINDS); `options` go to the cell (inits, forget_bias, variant)."""
  _validate.choice("kind", kind, KINDS)
  if kind.startswith("rnn_"):
    return ElmanCell(in_features, hidden_features, activation=kind.removeprefix("rnn_"), rngs=rngs, **options)
  cell_class = LSTMCell if kind == "lstm" else GRUCell
  return cell_class(in_features, hidden_features, rngs=rngs, **options)


def _cell_maker(kind, num_layers: int, bidirectional: bool, options: dict) -> Callable:
  """kind (a name in KINDS, a cell factory or one cell) -> make(in_features, hidden_features, rngs) -> cell."""
  if isinstance(kind, str):
    _validate.choice("kind", kind, KINDS)
    return lambda features, hidden, rngs: make_cell(kind, features, hidden, rngs=rngs, **options)
  if isinstance(kind, nnx.Module):  # one cell: one layer, one direction
    if num_layers != 1 or bidirectional:
      raise ValueError(
        "kind: one cell instance serves one layer in one direction; for num_layers > 1 or bidirectional, "
        "pass its factory (e.g. the cell class: factory(in_features, hidden_features, rngs=rngs))"
      )
    if options:
      raise ValueError(f"cell options {sorted(options)} need a cell factory, not a built cell")
    cell = check_cell(kind)

    def given(features: int, hidden: int, rngs: nnx.Rngs):
      if (cell.in_features, cell.hidden_features) != (features, hidden):
        raise ValueError(
          f"kind: the given cell reads {cell.in_features} and keeps {cell.hidden_features} features, "
          f"the stack asks for in_features={features}, hidden_features={hidden}"
        )
      return cell

    return given
  if callable(kind):
    return lambda features, hidden, rngs: check_cell(kind(features, hidden, rngs=rngs, **options))
  raise ValueError(f"kind must be one of {list(KINDS)}, a cell factory or a cell, got {kind!r}")


class StackedRNN(nnx.Module):
  """`num_layers` recurrent layers of one `kind`, each reading the previous one's outputs; a
  sequence mixer (`seqjax.zoo`).

  stack(x, *, mask=None, dropout_key=None) -> outputs
  stack.run(x, *, mask=None, initial_carry=None, dropout_key=None) -> (outputs, carries)
  stack.scan(x, lengths, *, initial_carry=None, dropout_key=None) -> (outputs, carries)

    kind          a name in KINDS, a cell factory `factory(in_features, hidden_features, *,
                  rngs, **cell_options)` (a cell class is one), or one built cell (one layer,
                  one direction); any cell keeping the cell contract (docs/recurrent.md)
    x             [B, T, F] ([T, B, F] if time_major)
    mask          [B, T] bool, each row's real steps a prefix (`RNN`); outputs are zero on padding.
                  Checked once, in `run`; its layers scan its lengths without checking it again.
    lengths       [B] int32: `mask_lengths` of a mask the caller has checked (`scan`)
    outputs       [B, T, D] with D = H, or 2H for bidirectional merge="concat" (`out_features`)
    carries       tuple over layers of each layer's final carry; a bidirectional
                  layer's is (forward_carry, backward_carry). initial_carry has the same form.
    dropout_key   with dropout_rate > 0, drops the outputs of every layer but the last
                  (training); without a key, no dropout (evaluation). Keys are arguments,
                  so the call stays a pure function of (params, x, key).
    residual      from the second layer on, a layer's input is added to its output.

  `causal` is True exactly when the stack is not bidirectional (position t reads steps <= t).
  A causal stack also decodes one step at a time: `init_state(batch)`, `step(state, x [B, F])`.
  """

  def __init__(
    self,
    kind,
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
    _validate.positive_int("num_layers", num_layers)
    _validate.probability("dropout_rate", dropout_rate)
    _validate.choice("merge", merge, Bidirectional.merges)
    make = _cell_maker(kind, num_layers, bidirectional, cell_options)

    def rnn(features: int) -> RNN:
      cell = make(features, hidden_features, rngs)
      return RNN(cell, time_major=time_major, hoist_input_projection=hoist_input_projection)

    layers = []
    features = in_features
    for _ in range(num_layers):
      layer = Bidirectional(rnn(features), rnn(features), merge=merge) if bidirectional else rnn(features)
      layers.append(layer)
      features = layer.out_features
    self.kind = kind if isinstance(kind, str) else getattr(kind, "__name__", type(kind).__name__)
    self.layers = nnx.List(layers)
    self.dropout_rate = dropout_rate
    self.residual = residual
    self.time_major = time_major
    self.causal = not bidirectional

  @property
  def in_features(self) -> int:
    return self.layers[0].in_features

  @property
  def out_features(self) -> int:
    return self.layers[-1].out_features

  def __call__(self, x: jax.Array, *, mask=None, dropout_key=None) -> jax.Array:
    return self.run(x, mask=mask, dropout_key=dropout_key)[0]

  def run(self, x: jax.Array, *, mask=None, initial_carry=None, dropout_key=None) -> tuple[jax.Array, tuple]:
    self.layers[0].check_input(x, mask)
    return self.scan(x, mask_lengths(mask), initial_carry=initial_carry, dropout_key=dropout_key)

  def scan(self, x: jax.Array, lengths, *, initial_carry=None, dropout_key=None) -> tuple[jax.Array, tuple]:
    if initial_carry is not None and len(initial_carry) != len(self.layers):
      raise ValueError(f"initial_carry must hold one carry per layer ({len(self.layers)}), got {len(initial_carry)}")
    keys = split_key(dropout_key, len(self.layers))
    carries = []
    for index, layer in enumerate(self.layers):
      if index > 0:
        x = dropout(x, self.dropout_rate, keys[index])  # on the previous layer's outputs
      init = None if initial_carry is None else initial_carry[index]
      y, carry = layer.scan(x, lengths, initial_carry=init)
      x = y + x if self.residual and index > 0 else y
      carries.append(carry)
    return x, tuple(carries)

  # ---- one step at a time (decoding; a causal stack only) --------------------------------------

  def init_state(self, batch: int) -> tuple:
    """Every layer's initial carry for `batch` rows (the state of `step`)."""
    self._check_steps()
    return tuple(layer.cell.initialize_carry((batch,)) for layer in self.layers)

  def step(self, state: tuple, x: jax.Array) -> tuple[jax.Array, tuple]:
    """x [B, F] -> (outputs [B, D], state): one step of every layer, as `run` computes at one
    position (no dropout: decoding is evaluation)."""
    self._check_steps()
    carries = []
    for index, (layer, carry) in enumerate(zip(self.layers, state, strict=True)):
      carry, y = layer.cell.recur(carry, layer.cell.project_inputs(x))
      x = y + x if self.residual and index > 0 else y
      carries.append(carry)
    return x, tuple(carries)

  def _check_steps(self) -> None:
    if not self.causal:
      raise ValueError("a bidirectional StackedRNN reads the whole sequence: it cannot run one step at a time")
