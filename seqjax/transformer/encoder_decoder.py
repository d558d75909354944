"""Encoder-decoder Transformer (Vaswani et al. 2017), configurable down to a T5-like text-to-text model."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.core import check_cross_segment_ids, check_segment_ids
from seqjax.attention.multihead import ContextKV, KVCache
from seqjax.attention.positional import RelativePositionBias, segment_positions
from seqjax.dropout import split_key
from seqjax.transformer.blocks import TransformerStack
from seqjax.transformer.config_checks import check_transformer
from seqjax.transformer.embedding import TextEmbedding
from seqjax.transformer.norms import NORM_TYPES


@dataclasses.dataclass(frozen=True)
class EncoderDecoderConfig:
  """Defaults are the 2017 base model (about 63M parameters with a 37,000-token shared vocabulary)."""

  vocab_size: int = 37000
  dim: int = 512
  num_heads: int = 8
  ff_dim: int = 2048
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  max_length: int = 512
  position: str = "sinusoidal"  # "sinusoidal", "learned" or "relative" (T5's bucketed bias)
  norm: str = "post"  # "post" (2017) or "pre" (T5)
  activation: str = "relu"
  dropout_rate: float = 0.1
  use_bias: bool = True
  tie_embeddings: bool = True  # one matrix for source, target and pre-softmax projection
  layer_norm_epsilon: float = 1e-6
  attention_implementation: str = "dense"  # self-attention: or "auto" (seqjax.attention.fused_attention), padding kept
  norm_type: str = "layer"  # or "rms" (T5)
  head_dim: int | None = None  # per head; None: dim // num_heads (T5-3B/11B set it apart)
  gated_feed_forward: bool = False  # GLU feed-forward (T5 v1.1, mT5; with activation "gelu_tanh": GEGLU)
  separate_head: bool = False  # with tie_embeddings: source and target share the embedding, the output layer is its own
  scale_decoder_output: bool = False  # the decoder's output times dim^-0.5 before the output layer (T5 v1.0)
  relative_buckets: int = 32  # position "relative": T5's bucket count and largest distance told apart
  relative_max_distance: int = 128
  attention_logit_scale: float | None = None  # None: 1 / sqrt(head dim); T5: 1.0 (unscaled)
  final_norm: bool | None = None  # a norm after each stack; None: pre-LN only (post-LN + True: torch's)

  def check(self) -> "EncoderDecoderConfig":
    check_transformer(
      self,
      positive=("vocab_size", "max_length", "num_encoder_layers", "num_decoder_layers", "relative_buckets",
                "relative_max_distance"),
      position=("sinusoidal", "learned", "relative"),
      norm=("post", "pre"),
      norm_type=NORM_TYPES,
    )  # fmt: skip
    if self.head_dim is not None:
      _validate.positive_int("head_dim", self.head_dim)
    return self


def t5_like(**overrides) -> EncoderDecoderConfig:
  """T5-style: relative position bias, pre-norm with RMSNorm, no biases, unscaled embeddings and
  unscaled attention logits (attention_logit_scale 1.0).
  T5 v1.0 adds scale_decoder_output=True; v1.1 gated_feed_forward=True, activation="gelu_tanh",
  separate_head=True (seqjax.interop.from_pretrained sets these from a checkpoint's config)."""
  return EncoderDecoderConfig(
    **{"position": "relative", "norm": "pre", "norm_type": "rms", "use_bias": False, "attention_logit_scale": 1.0}
    | overrides
  )


def check_source_mask(src_mask: jax.Array | None, shape: tuple[int, int]) -> None:
  """src_mask: None or [B, S] bool, True on real tokens."""
  if src_mask is not None:
    _validate.bool_mask("src_mask", src_mask, shape)


class EncoderDecoderState(NamedTuple):
  """Decoding state: the decoder's self-attention caches, and the encoded source as each decoder
  block's cross-attention keys and values (computed once per sequence)."""

  caches: tuple[KVCache, ...]
  memory: tuple[ContextKV, ...]
  memory_mask: jax.Array  # [B, S] bool: the source's real tokens


class EncoderDecoder(nnx.Module):
  """model(src [B, S], tgt [B, T], *, src_mask [B, S] bool) -> logits [B, T, V] (teacher forcing).

  Packed pairs: src_segment_ids [B, S] and tgt_segment_ids [B, T] (int >= 0, each sequence a
  contiguous run, a target attending to the source of its own id) run several (source, target)
  pairs in one row as if each were alone: positions restart at each run, self-attention stays in
  the run, cross-attention reads only the matching source.

  `encode` and the decoding protocol (`init_state`, `prefill`, `step`) split it for generation
  with key/value caches.
  """

  def __init__(self, config: EncoderDecoderConfig, *, rngs: nnx.Rngs):
    config.check()
    relative = config.position == "relative"
    self.config = config

    def embedding():
      return TextEmbedding(
        config.vocab_size,
        config.dim,
        max_length=config.max_length,
        position=None if relative else config.position,
        scale=config.position == "sinusoidal",
        dropout_rate=config.dropout_rate,
        rngs=rngs,
      )

    def stack(num_layers, cross_attention):
      return TransformerStack(
        num_layers,
        causal=cross_attention,  # the decoder
        dim=config.dim,
        num_heads=config.num_heads,
        ff_dim=config.ff_dim,
        cross_attention=cross_attention,
        norm=config.norm,
        activation=config.activation,
        dropout_rate=config.dropout_rate,
        use_bias=config.use_bias,
        layer_norm_epsilon=config.layer_norm_epsilon,
        attention_implementation=config.attention_implementation,
        norm_type=config.norm_type,
        head_dim=config.head_dim,
        gated=config.gated_feed_forward,
        final_norm=config.final_norm,
        attention_logit_scale=config.attention_logit_scale,
        rngs=rngs,
      )

    def relative_bias(bidirectional):
      if not relative:
        return None
      return RelativePositionBias(
        config.num_heads,
        bidirectional=bidirectional,
        num_buckets=config.relative_buckets,
        max_distance=config.relative_max_distance,
        rngs=rngs,
      )

    self.source_embed = embedding()
    self.target_embed = None if config.tie_embeddings else embedding()
    self.encoder = stack(config.num_encoder_layers, cross_attention=False)
    self.decoder = stack(config.num_decoder_layers, cross_attention=True)
    self.encoder_bias = relative_bias(bidirectional=True)
    self.decoder_bias = relative_bias(bidirectional=False)
    own_head = config.separate_head or not config.tie_embeddings
    self.head = nnx.Linear(config.dim, config.vocab_size, use_bias=False, rngs=rngs) if own_head else None

  def _target_embed(self):
    return self.source_embed if self.target_embed is None else self.target_embed

  def _logits(self, x):
    x = x * self.config.dim**-0.5 if self.config.scale_decoder_output else x
    return self.source_embed.attend(x) if self.head is None else self.head(x)

  def encode(self, src: jax.Array, *, src_mask=None, src_segment_ids=None, dropout_key=None) -> jax.Array:
    """src [B, S] -> memory [B, S, D]; padding (src_mask False) is never attended to."""
    return self._encoder_pass(src, src_mask, dropout_key, segment_ids=src_segment_ids)[0]

  def decode(self, tgt, memory, *, src_mask=None, src_segment_ids=None, tgt_segment_ids=None, dropout_key=None):
    """tgt [B, T] (shifted right) attending causally to itself and to memory -> logits [B, T, V].
    Packed pairs need both segment ids (see the class)."""
    segment_ids = (src_segment_ids, tgt_segment_ids)
    return self._logits(self._decoder_pass(tgt, memory, src_mask, dropout_key, segment_ids=segment_ids)[0])

  def attention_weights(self, src: jax.Array, tgt: jax.Array, *, src_mask: jax.Array | None = None) -> dict:
    """The attention weights of a teacher-forced pass (no dropout), per layer, first layer first:
    {"encoder": [L_enc, B, N, S, S], "decoder": [L_dec, B, N, T, T] (causal),
    "cross": [L_dec, B, N, T, S] (zero on the source's padding)}."""
    memory, _, encoder = self._encoder_pass(src, src_mask, None, return_weights=True)
    _, _, decoder = self._decoder_pass(tgt, memory, src_mask, None, return_weights=True)
    stacked = lambda name, blocks: jnp.stack([w[name] for w in blocks])  # noqa: E731
    return {
      "encoder": stacked("self", encoder),
      "decoder": stacked("self", decoder),
      "cross": stacked("cross", decoder),
    }

  def _encoder_pass(self, src, src_mask, dropout_key, *, segment_ids=None, return_weights=False) -> tuple:
    """The encoder stack's output on src: (memory [B, S, D], None[, per-block weights])."""
    check_segment_ids(segment_ids, *src.shape, src.shape[1], name="src_segment_ids")
    keys = split_key(dropout_key)
    within = None if segment_ids is None else segment_positions(segment_ids)  # [B, S]
    x = self.source_embed(src, positions=within, dropout_key=keys[0])
    positions = jnp.arange(src.shape[1])  # relative bias: distances within a run are the row's
    bias = None if self.encoder_bias is None else self.encoder_bias(positions, positions)
    check_source_mask(src_mask, src.shape)
    return self.encoder.run(
      x, mask=src_mask, segment_ids=segment_ids, bias=bias, dropout_key=keys[1], return_weights=return_weights
    )

  def _decoder_pass(self, tgt, memory, src_mask, dropout_key, *, segment_ids=(None, None), return_weights=False):
    """The decoder stack's output on tgt over memory: ([B, T, D], None[, per-block weights]).
    segment_ids: (source's [B, S], target's [B, T]), both or neither."""
    _validate.token_ids("tgt", tgt, self.config.vocab_size)
    if tgt.shape[0] != memory.shape[0]:
      raise ValueError(f"tgt batch {tgt.shape[0]} must equal the source batch {memory.shape[0]}")
    check_source_mask(src_mask, memory.shape[:2])
    src_ids, tgt_ids = segment_ids
    if (src_ids is None) != (tgt_ids is None):
      raise ValueError("packed pairs need both src_segment_ids [B, S] and tgt_segment_ids [B, T], or neither")
    if tgt_ids is not None:
      check_cross_segment_ids(
        tgt_ids, src_ids, tgt.shape[0], tgt.shape[1], memory.shape[1], names=("tgt_segment_ids", "src_segment_ids")
      )
    keys = split_key(dropout_key)
    within = None if tgt_ids is None else segment_positions(tgt_ids)  # [B, T]
    x = self._target_embed()(tgt, positions=within, dropout_key=keys[0])
    positions = jnp.arange(tgt.shape[1])
    bias = None if self.decoder_bias is None else self.decoder_bias(positions, positions)
    return self.decoder.run(
      x,
      segment_ids=tgt_ids,
      bias=bias,
      memory=memory,
      memory_mask=src_mask,
      memory_segment_ids=src_ids,
      dropout_key=keys[1],
      return_weights=return_weights,
    )

  def __call__(self, src, tgt, *, src_mask=None, src_segment_ids=None, tgt_segment_ids=None, dropout_key=None):
    keys = split_key(dropout_key)
    if (src_segment_ids is None) != (tgt_segment_ids is None):  # before the encoder runs
      raise ValueError("packed pairs need both src_segment_ids [B, S] and tgt_segment_ids [B, T], or neither")
    memory = self.encode(src, src_mask=src_mask, src_segment_ids=src_segment_ids, dropout_key=keys[0])
    return self.decode(
      tgt,
      memory,
      src_mask=src_mask,
      src_segment_ids=src_segment_ids,
      tgt_segment_ids=tgt_segment_ids,
      dropout_key=keys[1],
    )

  def teacher_forced_logits(self, src, tgt_in, *, src_mask=None, dropout_key=None) -> jax.Array:
    """[B, T, V] of a teacher-forced pass: the model itself (`seqjax.seq2seq.teacher_forced_loss`'s protocol)."""
    return self(src, tgt_in, src_mask=src_mask, dropout_key=dropout_key)

  # ---- the decoding protocol (seqjax.decoding.protocol) ----------------------------------------

  @property
  def decode_vocab(self) -> int:
    return self.config.vocab_size

  def check_decode_inputs(self, batch: int, *, src, src_mask=None) -> None:
    """src: ids [B, S] in the vocabulary (checked when concrete); src_mask: [B, S] bool or None."""
    _validate.token_ids("src", src, self.config.vocab_size)
    if src.shape[0] != batch:
      raise ValueError(f"src batch {src.shape[0]} must equal the prompt's batch {batch}")
    check_source_mask(src_mask, src.shape)

  def init_state(self, batch: int, max_length: int, *, src, src_mask=None) -> EncoderDecoderState:
    """Encodes src once and projects each decoder block's cross-attention keys and values of it;
    empty self-attention caches for max_length target positions."""
    if max_length > self.config.max_length:
      raise ValueError(
        f"decoding needs {max_length} target positions (prompt length - 1 + max_new_tokens) but the model's "
        f"max_length is {self.config.max_length}"
      )
    memory = self.encode(src, src_mask=src_mask)  # [B, S, D]
    mask = jnp.ones(src.shape, jnp.bool_) if src_mask is None else src_mask
    return EncoderDecoderState(self.decoder.init_caches(batch, max_length), self.decoder.project_memory(memory), mask)

  def prefill(self, state: EncoderDecoderState, tokens: jax.Array, mask: jax.Array) -> EncoderDecoderState:
    """Reads target tokens [B, P] (left-padded where mask is False) into empty caches in one pass."""
    _, state = self._extend(state._replace(caches=tuple(cache.left_padded(mask) for cache in state.caches)), tokens)
    return state

  def step(self, state: EncoderDecoderState, tokens: jax.Array) -> tuple[jax.Array, EncoderDecoderState]:
    """tokens [B] -> (next-token logits [B, V], state)."""
    logits, state = self._extend(state, tokens[:, None])
    return logits[:, 0], state

  def _extend(self, state: EncoderDecoderState, tokens: jax.Array) -> tuple[jax.Array, EncoderDecoderState]:
    """Target tokens [B, T] following what the caches hold -> (logits [B, T, V], state)."""
    caches = state.caches
    T = tokens.shape[1]
    x = self._target_embed()(tokens, positions=caches[0].positions(T))
    bias = None
    if self.decoder_bias is not None:  # relative positions: slots serve, a row's padding offset cancels
      queries = caches[0].length + jnp.arange(T, dtype=jnp.int32)  # [T] slots
      bias = self.decoder_bias(queries, jnp.arange(caches[0].key.shape[1], dtype=jnp.int32))
    x, caches = self.decoder.run(
      x, bias=bias, block_memories=state.memory, memory_mask=state.memory_mask, caches=caches
    )
    return self._logits(x), state._replace(caches=caches)
