"""Attention: the one-head core vmapped over heads and batch, multi-head attention, positions."""

from seqjax.attention.core import attend_one_head, causal_mask, dot_product_attention, padding_mask
from seqjax.attention.multihead import KVCache, MultiHeadAttention
from seqjax.attention.positional import (
  AbsolutePositions,
  RelativePositionBias,
  apply_rope,
  relative_position_bucket,
  sinusoidal_encoding,
)

__all__ = [
  "AbsolutePositions",
  "KVCache",
  "MultiHeadAttention",
  "RelativePositionBias",
  "apply_rope",
  "attend_one_head",
  "causal_mask",
  "dot_product_attention",
  "padding_mask",
  "relative_position_bucket",
  "sinusoidal_encoding",
]
