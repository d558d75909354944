"""A residual stack of parallel-scan recurrences, the layout minGRU and LRU are used in (Feng et
al. 2024; Orvieto et al. 2023): each block is h += seq(norm(h)); h += ffn(norm(h)), with a
final norm, [B, T, D] -> [B, T, D]. Causal: position t reads positions <= t only."""

import jax
from flax import nnx

from seqjax import _validate
from seqjax.mixer import checked_padding, zero_padding
from seqjax.parallel.layers import LRU, MinGRU, MinLSTM
from seqjax.transformer.blocks import FeedForward

KINDS = ("mingru", "minlstm", "lru")


class ScanBlockStack(nnx.Module):
  """stack(x [B, T, D], *, mask [B, T] bool | None = None, dropout_key=None) -> [B, T, D]; a
  sequence mixer (`seqjax.zoo`), causal.

  mask (False: padding, anywhere in a row): every recurrence skips the padded steps (their state
  passes unchanged), so each real output is what the sequence gives with its padding removed.
  Padded inputs are read as zeros (NaN there reaches nothing) and the outputs at padding are
  zero. The stack has no dropout: dropout_key is accepted for the mixer interface and unused.
  """

  causal = True

  def __init__(self, kind: str, width: int, num_layers: int = 2, *, ff_factor: int = 2, rngs: nnx.Rngs):
    _validate.choice("kind", kind, KINDS)
    _validate.positive_int("width", width)
    _validate.positive_int("num_layers", num_layers)
    _validate.positive_int("ff_factor", ff_factor)
    layer = {"mingru": MinGRU, "minlstm": MinLSTM, "lru": LRU}[kind]
    self.seqs = nnx.List([layer(width, width, rngs=rngs) for _ in range(num_layers)])
    self.ffns = nnx.List(
      [
        FeedForward(width, ff_factor * width, activation="gelu", dropout_rate=0.0, use_bias=True, rngs=rngs)
        for _ in range(num_layers)
      ]
    )
    self.norms = nnx.List([nnx.LayerNorm(width, rngs=rngs) for _ in range(2 * num_layers + 1)])
    self.in_features = self.out_features = width

  def __call__(self, x: jax.Array, *, mask: jax.Array | None = None, dropout_key=None) -> jax.Array:
    del dropout_key  # no dropout in these blocks
    keep = checked_padding(x, mask, self.in_features)  # [B, T, 1] or None
    h = zero_padding(x, keep)  # padding reads zeros
    for index, (seq, ffn) in enumerate(zip(self.seqs, self.ffns, strict=True)):
      h = h + seq(self.norms[2 * index](h), mask=mask)  # [B, T, D]
      h = h + ffn(self.norms[2 * index + 1](h))
    return zero_padding(self.norms[-1](h), keep)
