"""Token embedding with absolute positions, token types and the tied output projection."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax import _validate
from seqjax.attention.positional import AbsolutePositions
from seqjax.dropout import dropout
from seqjax.logical_axes import EMBED, VOCAB, axes
from seqjax.transformer.norms import layer_norm


class TextEmbedding(nnx.Module):
  """tokens [B, T] -> [B, T, D]: E[token] * (sqrt(D) if scale) + PE(position) [+ type emb] [-> LN] -> dropout.

  position: "sinusoidal", "learned" or None (positions enter inside attention: RoPE, T5 bias).
  """

  def __init__(
    self,
    vocab_size: int,
    dim: int,
    *,
    max_length: int,
    position: str | None,
    scale: bool = False,
    type_vocab_size: int = 0,
    layer_norm_epsilon: float | None = None,
    dropout_rate: float = 0.0,
    rngs: nnx.Rngs,
  ):
    _validate.positive_int("vocab_size", vocab_size)
    _validate.positive_int("max_length", max_length)
    self.tokens = nnx.Embed(
      vocab_size, dim, embedding_init=nnx.initializers.normal(0.02), embedding_metadata=axes(VOCAB, EMBED), rngs=rngs
    )
    self.positions = None if position is None else AbsolutePositions(position, max_length, dim, rngs=rngs)
    self.types = nnx.Embed(type_vocab_size, dim, rngs=rngs) if type_vocab_size else None
    self.norm = None if layer_norm_epsilon is None else layer_norm(dim, epsilon=layer_norm_epsilon, rngs=rngs)
    self.vocab_size = vocab_size
    self.max_length = max_length
    self.scale = float(np.sqrt(dim)) if scale else 1.0
    self.dropout_rate = dropout_rate

  def __call__(self, tokens, *, positions=None, token_types=None, dropout_key=None) -> jax.Array:
    """positions: [T] or [B, T] int (default 0..T-1); past 0 when decoding, per row for left-padded prompts."""
    _validate.token_ids("tokens", tokens, self.vocab_size)
    T = tokens.shape[1]
    if T > self.max_length:
      raise ValueError(f"sequence length {T} exceeds max_length {self.max_length}")
    x = self.tokens(tokens) * self.scale  # [B, T, D]
    if self.positions is not None:
      positions = jnp.arange(T, dtype=jnp.int32) if positions is None else positions
      encoding = self.positions(positions).astype(x.dtype)  # [T, D] or [B, T, D]
      x = x + (encoding if encoding.ndim == 3 else encoding[None])
    if token_types is not None:
      if self.types is None:
        raise ValueError("token_types were given, but this embedding has no token types (type_vocab_size=0)")
      _validate.token_ids("token_types", token_types, self.types.num_embeddings)
      if token_types.shape != tokens.shape:
        raise ValueError(f"token_types must have the shape of tokens [B, T] = {tokens.shape}, got {token_types.shape}")
    if self.types is not None:
      types = jnp.zeros_like(tokens) if token_types is None else token_types
      x = x + self.types(types)
    if self.norm is not None:
      x = self.norm(x)
    return dropout(x, self.dropout_rate, dropout_key)

  def attend(self, x: jax.Array) -> jax.Array:
    """The tied output projection: [B, T, D] -> logits [B, T, V] = x E^T."""
    return x @ self.tokens.embedding[...].T
