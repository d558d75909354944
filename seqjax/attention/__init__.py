"""Attention: the one-head core vmapped over heads and batch (`dot_product_attention`: any mask or
bias, the attention weights), the fast paths behind one dispatcher (`fused_attention`: causal or
key-padded only, no weights; blockwise on CPU, cuDNN on GPU, Pallas on TPU), multi-head
attention, positions; `Visibility`: padding, segment ids and causality checked once for a model's layers."""

from seqjax.attention.blockwise import blockwise_attention
from seqjax.attention.core import attend_one_head, causal_mask, dot_product_attention, padding_mask
from seqjax.attention.dispatch import fused_attention
from seqjax.attention.multihead import KVCache, MultiHeadAttention
from seqjax.attention.positional import (
  AbsolutePositions,
  RelativePositionBias,
  apply_rope,
  relative_position_bucket,
  sinusoidal_encoding,
)
from seqjax.attention.visibility import Visibility

__all__ = [
  "AbsolutePositions",
  "KVCache",
  "MultiHeadAttention",
  "RelativePositionBias",
  "Visibility",
  "apply_rope",
  "attend_one_head",
  "blockwise_attention",
  "causal_mask",
  "dot_product_attention",
  "fused_attention",
  "padding_mask",
  "relative_position_bucket",
  "sinusoidal_encoding",
]
