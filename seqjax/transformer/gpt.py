"""Decoder-only Transformer language model (GPT; Radford et al. 2018, 2019): causal self-attention blocks."""

import dataclasses
import typing
from typing import NamedTuple

import jax
from flax import nnx

from seqjax import _validate
from seqjax.attention.multihead import KVCache
from seqjax.attention.positional import segment_positions
from seqjax.attention.visibility import Visibility
from seqjax.dropout import split_key
from seqjax.transformer.blocks import TransformerBlockConfig, TransformerStack
from seqjax.transformer.embedding import TextEmbedding
from seqjax.transformer.model_config import check_model, embeds_block


@embeds_block
@dataclasses.dataclass(frozen=True)
class GPTConfig:
  """Defaults are GPT-2 small (124,439,808 parameters with tied embeddings). The block's fields may
  be given flat (`model_config.embeds_block`): GPTConfig(dim=32, num_heads=4, ff_dim=64, ...);
  dropout_rate (the embedding's, and every block's) then sets attention_dropout_rate too."""

  vocab_size: int = 50257
  max_length: int = 1024
  num_layers: int = 12
  position: str = "learned"  # "learned", "sinusoidal" or "rope"
  tie_embeddings: bool = True
  block: TransformerBlockConfig = TransformerBlockConfig(
    dim=768,
    num_heads=12,
    ff_dim=3072,
    norm="pre",
    activation="gelu_tanh",
    dropout_rate=0.1,
    attention_dropout_rate=0.1,
    layer_norm_epsilon=1e-5,
    # "auto" (blockwise on a CPU without attention dropout, dense with it) measured 3% faster than "dense"
    # at benchmarks.gpt's CPU shapes on an idle machine (30 of 31 rounds): results/bench/gpt_attention.md
    attention_implementation="auto",
  )
  flat_aliases: typing.ClassVar = {"dropout_rate": ("dropout_rate", "attention_dropout_rate")}

  def check(self) -> "GPTConfig":
    check_model(self, positive=("vocab_size", "max_length", "num_layers"), position=("learned", "sinusoidal", "rope"))
    return self


class GPTState(NamedTuple):
  """Decoding state: one key/value cache per block."""

  caches: tuple[KVCache, ...]


class GPT(nnx.Module):
  """gpt(tokens [B, T]) -> next-token logits [B, T, V]; pre-LN blocks, causal self-attention."""

  def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs):
    config.check()
    rope = config.position == "rope"
    self.config = config
    self.embed = TextEmbedding(
      config.vocab_size,
      config.block.dim,
      max_length=config.max_length,
      position=None if rope else config.position,
      dropout_rate=config.block.dropout_rate,
      rngs=rngs,
    )
    self.stack = TransformerStack(config.num_layers, block=config.block, causal=True, rope=rope, rngs=rngs)
    dim = config.block.dim
    self.head = None if config.tie_embeddings else nnx.Linear(dim, config.vocab_size, use_bias=False, rngs=rngs)

  def _logits(self, x):
    return self.embed.attend(x) if self.head is None else self.head(x)

  def __call__(
    self, tokens: jax.Array, *, segment_ids: jax.Array | None = None, dropout_key: jax.Array | None = None
  ) -> jax.Array:
    """segment_ids [B, T] int >= 0: several sequences packed in a row, each a contiguous run that
    attends to itself alone and is positioned from 0, as if alone."""
    _validate.token_ids("tokens", tokens, self.config.vocab_size)
    keys = split_key(dropout_key)
    B, T = tokens.shape
    masks = Visibility.checked(B, T, T, segment_ids=segment_ids, causal=True)  # checked once, for every block
    positions = None if segment_ids is None else segment_positions(segment_ids)  # [B, T]
    x = self.embed(tokens, positions=positions, dropout_key=keys[0])  # [B, T, D]
    x = self.stack(x, visibility=masks, positions=positions, dropout_key=keys[1])
    return self._logits(x)  # [B, T, V]

  # ---- the decoding protocol (seqjax.decoding.protocol) ----------------------------------------

  @property
  def decode_vocab(self) -> int:
    return self.config.vocab_size

  def check_decode_inputs(self, batch: int) -> None:
    """A language model takes no context: only the prompt, checked by the decoder."""

  def init_state(self, batch: int, max_length: int) -> GPTState:
    """Empty key/value caches for max_length positions (the prompt's and the new tokens')."""
    if max_length > self.config.max_length:
      raise ValueError(
        f"decoding needs {max_length} positions (prompt length - 1 + max_new_tokens) but the model's "
        f"max_length is {self.config.max_length}"
      )
    return GPTState(self.stack.init_caches(batch, max_length))

  def prefill(self, state: GPTState, tokens: jax.Array, mask: jax.Array) -> GPTState:
    """Reads a prompt [B, P] into empty caches in one parallel pass; rows left-padded (mask False)
    start at their first real token, at position 0."""
    _, state = self._extend(GPTState(tuple(cache.left_padded(mask) for cache in state.caches)), tokens)
    return state

  def step(self, state: GPTState, tokens: jax.Array) -> tuple[jax.Array, GPTState]:
    """tokens [B] -> (next-token logits [B, V], state)."""
    logits, state = self._extend(state, tokens[:, None])
    return logits[:, 0], state

  def _extend(self, state: GPTState, tokens: jax.Array) -> tuple[jax.Array, GPTState]:
    """tokens [B, T] following what the caches hold -> (logits [B, T, V], state)."""
    x = self.embed(tokens, positions=state.caches[0].positions(tokens.shape[1]))
    x, caches = self.stack.run(x, caches=state.caches)
    return self._logits(x), GPTState(caches)
