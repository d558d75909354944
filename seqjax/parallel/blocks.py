"""A residual stack of parallel-scan recurrences, the layout minGRU and LRU are used in (Feng et
al. 2024; Orvieto et al. 2023): each block is h += seq(norm(h)); h += ffn(norm(h)), with a
final norm, [B, T, D] -> [B, T, D]. Causal: position t reads positions <= t only."""

import jax
from flax import nnx

from seqjax import _validate
from seqjax.parallel.layers import LRU, MinGRU
from seqjax.transformer.blocks import FeedForward

KINDS = ("mingru", "lru")


class ScanBlockStack(nnx.Module):
  def __init__(self, kind: str, width: int, num_layers: int = 2, *, ff_factor: int = 2, rngs: nnx.Rngs):
    _validate.choice("kind", kind, KINDS)
    _validate.positive_int("width", width)
    _validate.positive_int("num_layers", num_layers)
    _validate.positive_int("ff_factor", ff_factor)
    make = {"mingru": lambda: MinGRU(width, width, rngs=rngs), "lru": lambda: LRU(width, width, rngs=rngs)}[kind]
    self.seqs = nnx.List([make() for _ in range(num_layers)])
    self.ffns = nnx.List(
      [
        FeedForward(width, ff_factor * width, activation="gelu", dropout_rate=0.0, use_bias=True, rngs=rngs)
        for _ in range(num_layers)
      ]
    )
    self.norms = nnx.List([nnx.LayerNorm(width, rngs=rngs) for _ in range(2 * num_layers + 1)])

  def __call__(self, h: jax.Array) -> jax.Array:
    _validate.float_array("h", h, "[B, T, D]", 3)
    for index, (seq, ffn) in enumerate(zip(self.seqs, self.ffns, strict=True)):
      h = h + seq(self.norms[2 * index](h))  # [B, T, D]
      h = h + ffn(self.norms[2 * index + 1](h))
    return self.norms[-1](h)
