"""Encoder-only Transformer (BERT; Devlin et al. 2019): bidirectional encoder, masked-LM and next-sentence heads."""

import dataclasses
import typing

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.positional import segment_positions
from seqjax.attention.visibility import Visibility
from seqjax.dropout import split_key
from seqjax.transformer.blocks import ACTIVATIONS, TransformerBlockConfig, TransformerStack
from seqjax.transformer.embedding import TextEmbedding
from seqjax.transformer.model_config import check_model, embeds_block
from seqjax.transformer.norms import layer_norm


@embeds_block
@dataclasses.dataclass(frozen=True)
class BertConfig:
  """Defaults are BERT-base (109,482,240 parameters for the encoder with pooler). The block's fields
  may be given flat (`model_config.embeds_block`); dropout_rate (the embedding's, and every
  block's) then sets attention_dropout_rate too."""

  vocab_size: int = 30522
  max_length: int = 512
  type_vocab_size: int = 2
  num_layers: int = 12
  block: TransformerBlockConfig = TransformerBlockConfig(
    dim=768,
    num_heads=12,
    ff_dim=3072,
    norm="post",
    activation="gelu",
    dropout_rate=0.1,
    attention_dropout_rate=0.1,
    layer_norm_epsilon=1e-12,
    # or "auto": the fastest path of seqjax.attention.fused_attention, padded batches included
    # (resolved to dense while attention_dropout_rate > 0: MultiHeadAttention)
    attention_implementation="dense",
  )
  flat_aliases: typing.ClassVar = {"dropout_rate": ("dropout_rate", "attention_dropout_rate")}

  def check(self) -> "BertConfig":
    check_model(self, positive=("vocab_size", "max_length", "num_layers"))
    _validate.nonnegative_int("type_vocab_size", self.type_vocab_size)
    return self


class BertModel(nnx.Module):
  """bert(tokens [B, T], *, token_types, attention_mask [B, T] bool) -> (sequence [B, T, D], pooled [B, D])."""

  def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
    self.config = config.check()
    block = config.block
    self.embed = TextEmbedding(
      config.vocab_size,
      block.dim,
      max_length=config.max_length,
      position="learned",
      type_vocab_size=config.type_vocab_size,
      layer_norm_epsilon=block.layer_norm_epsilon,
      dropout_rate=block.dropout_rate,
      rngs=rngs,
    )
    self.encoder = TransformerStack(config.num_layers, block=block, rngs=rngs)
    self.pooler = nnx.Linear(block.dim, block.dim, rngs=rngs)

  def __call__(self, tokens, *, token_types=None, attention_mask=None, segment_ids=None, dropout_key=None):
    """attention_mask [B, T] bool: False on padding, never attended to. segment_ids [B, T] int >= 0:
    several sequences packed in a row, each a contiguous run that attends to itself alone and is
    positioned from 0, as if alone (pooled reads position 0 only: the first sequence's [CLS])."""
    _validate.token_ids("tokens", tokens, self.config.vocab_size)
    keys = split_key(dropout_key)
    B, T = tokens.shape
    masks = Visibility.checked(  # once, for every block
      B,
      T,
      T,
      key_mask=attention_mask,
      segment_ids=segment_ids,
      names={"key_mask": "attention_mask"},
      mask_axes="[B, T]",
    )
    positions = None if segment_ids is None else segment_positions(segment_ids)  # [B, T]
    x = self.embed(tokens, positions=positions, token_types=token_types, dropout_key=keys[0])
    x = self.encoder(x, visibility=masks, dropout_key=keys[1])
    return x, jnp.tanh(self.pooler(x[:, 0]))  # pooled: the [CLS] position


class BertForPreTraining(nnx.Module):
  """BERT with the masked-LM head (tied to the token embedding) and an optional next-sentence head.

  model(tokens, ...) -> (mlm_logits [B, T, V], nsp_logits [B, 2] or None)
  """

  def __init__(self, config: BertConfig, *, next_sentence: bool = True, rngs: nnx.Rngs):
    self.bert = BertModel(config, rngs=rngs)
    dim = config.block.dim
    self.transform = nnx.Linear(dim, dim, rngs=rngs)
    self.transform_norm = layer_norm(dim, epsilon=config.block.layer_norm_epsilon, rngs=rngs)
    self.mlm_bias = nnx.Param(jnp.zeros((config.vocab_size,)))
    self.next_sentence = nnx.Linear(dim, 2, rngs=rngs) if next_sentence else None

  @property
  def zero_gradient_params(self) -> tuple[tuple[str, ...], ...]:
    """Without the next-sentence head nothing reads the pooler: its gradient is zero by
    construction, and the gradient-health monitor does not call it vanishing."""
    return () if self.next_sentence is not None else (("bert", "pooler", "kernel"), ("bert", "pooler", "bias"))

  def __call__(self, tokens, *, token_types=None, attention_mask=None, segment_ids=None, dropout_key=None):
    sequence, pooled = self.bert(
      tokens, token_types=token_types, attention_mask=attention_mask, segment_ids=segment_ids, dropout_key=dropout_key
    )
    h = self.transform_norm(ACTIVATIONS["gelu"](self.transform(sequence)))
    logits = self.bert.embed.attend(h) + self.mlm_bias[...][None, None, :]  # [B, T, V]
    return logits, None if self.next_sentence is None else self.next_sentence(pooled)


def mask_tokens(
  key: jax.Array,
  tokens: jax.Array,
  *,
  maskable: jax.Array,
  mask_id: int,
  vocab_size: int,
  rate: float = 0.15,
) -> tuple[jax.Array, jax.Array]:
  """BERT's masking procedure: choose `rate` of the maskable positions; of those, 80% become
  [MASK], 10% a random token, 10% stay as they are. Returns (inputs, selected [B, T] bool);
  the masked-LM loss is taken at `selected` positions against the original tokens.

  maskable [B, T] bool excludes [CLS], [SEP] and padding.
  """
  _validate.bool_mask("maskable", maskable, tokens.shape, axes="[B, T]")
  if not 0.0 < rate < 1.0:
    raise ValueError(f"rate must be in (0, 1), got {rate}")
  choose, action, replacement = jax.random.split(key, 3)
  selected = maskable & jax.random.bernoulli(choose, rate, tokens.shape)
  u = jax.random.uniform(action, tokens.shape)
  random_tokens = jax.random.randint(replacement, tokens.shape, 0, vocab_size, dtype=tokens.dtype)
  inputs = jnp.where(selected & (u < 0.8), jnp.asarray(mask_id, tokens.dtype), tokens)
  inputs = jnp.where(selected & (u >= 0.8) & (u < 0.9), random_tokens, inputs)
  return inputs, selected
