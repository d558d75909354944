"""Encoder-only Transformer (BERT; Devlin et al. 2019): bidirectional encoder, masked-LM and next-sentence heads."""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.core import check_segment_ids
from seqjax.attention.positional import segment_positions
from seqjax.dropout import split_key
from seqjax.transformer.blocks import ACTIVATIONS, TransformerStack
from seqjax.transformer.config_checks import check_transformer
from seqjax.transformer.embedding import TextEmbedding
from seqjax.transformer.norms import layer_norm


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """Defaults are BERT-base (109,482,240 parameters for the encoder with pooler)."""

  vocab_size: int = 30522
  max_length: int = 512
  type_vocab_size: int = 2
  dim: int = 768
  num_heads: int = 12
  num_layers: int = 12
  ff_dim: int = 3072
  dropout_rate: float = 0.1
  layer_norm_epsilon: float = 1e-12
  # or "auto": the fastest path of seqjax.attention.fused_attention, padded batches included
  # (calls with attention dropout, i.e. training with a dropout key, stay dense)
  attention_implementation: str = "dense"

  def check(self) -> "BertConfig":
    check_transformer(self, positive=("vocab_size", "max_length", "num_layers"))
    _validate.nonnegative_int("type_vocab_size", self.type_vocab_size)
    return self


class BertModel(nnx.Module):
  """bert(tokens [B, T], *, token_types, attention_mask [B, T] bool) -> (sequence [B, T, D], pooled [B, D])."""

  def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
    self.config = config.check()
    self.embed = TextEmbedding(
      config.vocab_size,
      config.dim,
      max_length=config.max_length,
      position="learned",
      type_vocab_size=config.type_vocab_size,
      layer_norm_epsilon=config.layer_norm_epsilon,
      dropout_rate=config.dropout_rate,
      rngs=rngs,
    )
    self.encoder = TransformerStack(
      config.num_layers,
      dim=config.dim,
      num_heads=config.num_heads,
      ff_dim=config.ff_dim,
      norm="post",
      activation="gelu",
      dropout_rate=config.dropout_rate,
      attention_dropout_rate=config.dropout_rate,
      layer_norm_epsilon=config.layer_norm_epsilon,
      attention_implementation=config.attention_implementation,
      rngs=rngs,
    )
    self.pooler = nnx.Linear(config.dim, config.dim, rngs=rngs)

  def __call__(self, tokens, *, token_types=None, attention_mask=None, segment_ids=None, dropout_key=None):
    """segment_ids [B, T] int >= 0: several sequences packed in a row, each a contiguous run that
    attends to itself alone and is positioned from 0, as if alone (pooled reads position 0 only:
    the first sequence's [CLS])."""
    keys = split_key(dropout_key)
    positions = None
    if segment_ids is not None:
      check_segment_ids(segment_ids, *tokens.shape, tokens.shape[1])
      positions = segment_positions(segment_ids)  # [B, T]
    x = self.embed(tokens, positions=positions, token_types=token_types, dropout_key=keys[0])
    if attention_mask is not None:
      _validate.bool_mask("attention_mask", attention_mask, tokens.shape, axes="[B, T]")
    x = self.encoder(x, mask=attention_mask, segment_ids=segment_ids, dropout_key=keys[1])
    return x, jnp.tanh(self.pooler(x[:, 0]))  # pooled: the [CLS] position


class BertForPreTraining(nnx.Module):
  """BERT with the masked-LM head (tied to the token embedding) and an optional next-sentence head.

  model(tokens, ...) -> (mlm_logits [B, T, V], nsp_logits [B, 2] or None)
  """

  def __init__(self, config: BertConfig, *, next_sentence: bool = True, rngs: nnx.Rngs):
    self.bert = BertModel(config, rngs=rngs)
    self.transform = nnx.Linear(config.dim, config.dim, rngs=rngs)
    self.transform_norm = layer_norm(config.dim, epsilon=config.layer_norm_epsilon, rngs=rngs)
    self.mlm_bias = nnx.Param(jnp.zeros((config.vocab_size,)))
    self.next_sentence = nnx.Linear(config.dim, 2, rngs=rngs) if next_sentence else None

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
