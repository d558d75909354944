"""Decoder-only Transformer language model (GPT; Radford et al. 2018, 2019): causal self-attention blocks."""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.multihead import KVCache
from seqjax.dropout import split_key
from seqjax.transformer.blocks import TransformerStack
from seqjax.transformer.embedding import TextEmbedding


@dataclasses.dataclass(frozen=True)
class GPTConfig:
  """Defaults are GPT-2 small (124,439,808 parameters with tied embeddings)."""

  vocab_size: int = 50257
  max_length: int = 1024
  dim: int = 768
  num_heads: int = 12
  num_layers: int = 12
  ff_dim: int = 3072
  dropout_rate: float = 0.1
  position: str = "learned"  # "learned", "sinusoidal" or "rope"
  tie_embeddings: bool = True
  activation: str = "gelu_tanh"
  layer_norm_epsilon: float = 1e-5
  attention_implementation: str = "dense"  # or "auto": cuDNN flash on GPUs in bf16 (seqjax.attention.dispatch)


class GPT(nnx.Module):
  """gpt(tokens [B, T]) -> next-token logits [B, T, V]; pre-LN blocks, causal self-attention."""

  def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs):
    _validate.choice("position", config.position, ("learned", "sinusoidal", "rope"))
    rope = config.position == "rope"
    self.config = config
    self.embed = TextEmbedding(
      config.vocab_size,
      config.dim,
      max_length=config.max_length,
      position=None if rope else config.position,
      dropout_rate=config.dropout_rate,
      rngs=rngs,
    )
    self.stack = TransformerStack(
      config.num_layers,
      dim=config.dim,
      num_heads=config.num_heads,
      ff_dim=config.ff_dim,
      norm="pre",
      activation=config.activation,
      dropout_rate=config.dropout_rate,
      attention_dropout_rate=config.dropout_rate,
      rope=rope,
      layer_norm_epsilon=config.layer_norm_epsilon,
      attention_implementation=config.attention_implementation,
      rngs=rngs,
    )
    self.head = None if config.tie_embeddings else nnx.Linear(config.dim, config.vocab_size, use_bias=False, rngs=rngs)

  def _logits(self, x):
    return self.embed.attend(x) if self.head is None else self.head(x)

  def __call__(self, tokens: jax.Array, *, dropout_key: jax.Array | None = None) -> jax.Array:
    keys = split_key(dropout_key)
    x = self.embed(tokens, dropout_key=keys[0])  # [B, T, D]
    x, _ = self.stack(x, is_causal=True, dropout_key=keys[1])
    return self._logits(x)  # [B, T, V]

  def init_cache(self, batch: int, max_length: int | None = None, dtype=jnp.float32) -> tuple[KVCache, ...]:
    max_length = max_length or self.config.max_length
    if max_length > self.config.max_length:
      raise ValueError(f"cache max_length {max_length} exceeds the model's max_length {self.config.max_length}")
    return self.stack.init_caches(batch, max_length, dtype)

  def decode_step(self, tokens: jax.Array, caches: tuple[KVCache, ...]) -> tuple[jax.Array, tuple[KVCache, ...]]:
    """Next-token logits for tokens [B, T] following what `caches` hold (T = prompt length, then 1)."""
    x = self.embed(tokens, start=caches[0].length)
    x, caches = self.stack(x, caches=caches)
    return self._logits(x), caches
