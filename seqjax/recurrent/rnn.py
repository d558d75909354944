"""Sequence layers over a cell: `RNN` (one direction) and `Bidirectional`, and the cell contract they run."""

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate, defaults
from seqjax.recurrent.scan import flip_sequences, length_mask, scan_cell

CELL_CONTRACT = {  # what RNN reads of a cell (docs/recurrent.md, "Writing a cell")
  "in_features": "int: F, the features of one input step",
  "hidden_features": "int: H, the features of one output step",
  "initialize_carry": "method: initialize_carry(batch_shape) -> the carry (a pytree of [*batch_shape, ...] arrays)",
  "project_inputs": "method: project_inputs(x [..., F]) -> what recur reads (any [..., P])",
  "recur": "method: recur(carry, projected) -> (new_carry, y [..., H])",
}


def check_cell(cell):
  """`cell` if it keeps the cell contract (CELL_CONTRACT), else a ValueError naming each part it lacks."""
  problems = []
  for name, meaning in CELL_CONTRACT.items():
    value = getattr(cell, name, None)
    wanted_int = meaning.startswith("int")
    if (wanted_int and not _positive_int(value)) or (not wanted_int and not callable(value)):
      got = "missing" if not hasattr(cell, name) else f"got {value!r}"
      problems.append(f"{name} ({meaning}; {got})")
  if problems:
    raise ValueError(f"cell {type(cell).__name__} does not keep the cell contract: " + "; ".join(problems))
  return cell


def _positive_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value > 0


def mask_lengths(mask: jax.Array | None) -> jax.Array | None:
  """The real steps of each row [B] int32 of a checked prefix mask [B, T] (None for None): what the
  scans read, computed once by whoever checked the mask."""
  return None if mask is None else jnp.sum(mask, axis=-1).astype(jnp.int32)


class RNN(nnx.Module):
  """Runs `cell` over a sequence with `jax.lax.scan`.

  rnn(x, *, mask=None, initial_carry=None, reverse=False) -> (outputs, final_carry)

    x            [B, T, F] floats ([T, B, F] if time_major)
    mask         [B, T] bool (also when time_major), each row's real steps a prefix (at least
                 one): padding is not read (nor reached by gradients), its outputs are zero
                 and the final carry is the carry at each sequence's last real step. The scan
                 reads the lengths sum(mask); the prefix shape is checked when the values are
                 concrete (under jit they cannot be).
    reverse      read each sequence from its last real step to its first; outputs stay
                 aligned with the input positions
    outputs      [B, T, H] ([T, B, H] if time_major)

  hoist_input_projection: project all T inputs in one matmul before the scan (True) or inside
  each step (False); unroll: `lax.scan`'s unroll factor. None picks the faster for the backend
  (`seqjax.defaults`). `cell` is checked against the cell contract (`check_cell`).

  rnn.scan(x, lengths, ...) is the same with the mask already checked by the caller and given as
  its `mask_lengths` (a stack checks its mask once for all its layers).
  """

  def __init__(
    self,
    cell,
    *,
    time_major: bool = False,
    hoist_input_projection: bool | None = None,
    unroll: int | None = None,
  ):
    if unroll is not None:
      _validate.positive_int("unroll", unroll)
    self.cell = check_cell(cell)
    self.time_major = time_major
    self.hoist_input_projection = hoist_input_projection
    self.unroll = unroll

  @property
  def in_features(self) -> int:
    return self.cell.in_features

  @property
  def out_features(self) -> int:
    return self.cell.hidden_features

  def _hoist(self) -> bool:
    return defaults.hoist_input_projection() if self.hoist_input_projection is None else self.hoist_input_projection

  def check_input(self, x, mask) -> tuple[int, int]:
    """Validates x and mask; returns (B, T)."""
    spell = "[T, B, F]" if self.time_major else "[B, T, F]"
    _validate.float_array("x", x, spell, 3)
    _validate.axis_size("x", x, 2, self.cell.in_features, spell.replace("F", f"F={self.cell.in_features}"))
    T, B = x.shape[:2] if self.time_major else x.shape[1::-1]
    if B == 0 or T == 0:
      raise ValueError(f"x must hold at least one sequence of at least one step, got shape {spell} = {x.shape}")
    if mask is not None:
      _validate.bool_mask("mask", mask, (B, T), axes="[B, T]")
      _validate.prefix_mask("mask", mask)
    return B, T

  def __call__(self, x: jax.Array, *, mask=None, initial_carry=None, reverse: bool = False):
    self.check_input(x, mask)
    return self.scan(x, mask_lengths(mask), initial_carry=initial_carry, reverse=reverse)

  def scan(self, x: jax.Array, lengths: jax.Array | None, *, initial_carry=None, reverse: bool = False):
    """As calling the RNN, with lengths [B] int32 (or None): `mask_lengths` of a mask the caller
    has checked. x is checked (its shape only)."""
    B, T = self.check_input(x, None)
    carry = self.cell.initialize_carry((B,))
    if initial_carry is not None:
      _validate.same_tree_shapes("initial_carry", initial_carry, carry)
      carry = initial_carry
    xs = x if self.time_major else jnp.swapaxes(x, 0, 1)  # [T, B, F]
    steps = None if lengths is None else length_mask(lengths, T)  # [T, B]
    if reverse:
      xs = flip_sequences(xs, lengths)
    unroll = defaults.scan_unroll() if self.unroll is None else self.unroll
    ys, carry = scan_cell(self.cell, carry, xs, steps, hoist_input_projection=self._hoist(), unroll=unroll)
    if reverse:
      ys = flip_sequences(ys, lengths)
    return (ys if self.time_major else jnp.swapaxes(ys, 0, 1)), carry


class Bidirectional(nnx.Module):
  """A forward and a backward `RNN` over the same input, merged per position.

  bi(x, *, mask=None, initial_carry=None) -> (outputs, (forward_carry, backward_carry))

  The backward RNN reads each sequence from its own last real step, so padding is
  never read first. merge="concat" gives [..., H_fwd + H_bwd]; "sum" gives [..., H].
  """

  merges = ("concat", "sum")

  def __init__(self, forward_rnn: RNN, backward_rnn: RNN, *, merge: str = "concat"):
    _validate.choice("merge", merge, self.merges)
    if forward_rnn.time_major != backward_rnn.time_major:
      raise ValueError("forward_rnn and backward_rnn must agree on time_major")
    if forward_rnn.cell.in_features != backward_rnn.cell.in_features:
      raise ValueError(
        f"forward_rnn and backward_rnn must read the same features, got "
        f"{forward_rnn.cell.in_features} and {backward_rnn.cell.in_features}"
      )
    if merge == "sum" and forward_rnn.out_features != backward_rnn.out_features:
      raise ValueError(
        f"merge='sum' needs equal hidden sizes, got {forward_rnn.out_features} and {backward_rnn.out_features}"
      )
    self.forward_rnn = forward_rnn
    self.backward_rnn = backward_rnn
    self.merge = merge

  @property
  def time_major(self) -> bool:
    return self.forward_rnn.time_major

  @property
  def in_features(self) -> int:
    return self.forward_rnn.in_features

  @property
  def out_features(self) -> int:
    fwd, bwd = self.forward_rnn.out_features, self.backward_rnn.out_features
    return fwd + bwd if self.merge == "concat" else fwd

  def check_input(self, x, mask) -> tuple[int, int]:
    """Validates x and mask (both directions read the same); returns (B, T)."""
    return self.forward_rnn.check_input(x, mask)

  def __call__(self, x: jax.Array, *, mask=None, initial_carry=None):
    self.check_input(x, mask)
    return self.scan(x, mask_lengths(mask), initial_carry=initial_carry)

  def scan(self, x: jax.Array, lengths: jax.Array | None, *, initial_carry=None):
    """As calling it, with lengths [B] int32 (or None): `mask_lengths` of a mask the caller has checked."""
    fwd_init, bwd_init = (None, None) if initial_carry is None else initial_carry
    fwd, fwd_carry = self.forward_rnn.scan(x, lengths, initial_carry=fwd_init)
    bwd, bwd_carry = self.backward_rnn.scan(x, lengths, initial_carry=bwd_init, reverse=True)
    merged = jnp.concatenate([fwd, bwd], axis=-1) if self.merge == "concat" else fwd + bwd
    return merged, (fwd_carry, bwd_carry)
