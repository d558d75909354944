"""Encoder-decoder Transformer (Vaswani et al. 2017), configurable down to a T5-like text-to-text model."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.core import check_key_mask
from seqjax.attention.multihead import ContextKV, KVCache
from seqjax.attention.positional import RelativePositionBias, segment_positions
from seqjax.attention.visibility import Visibility
from seqjax.dropout import split_key
from seqjax.transformer.blocks import TransformerBlockConfig, TransformerStack
from seqjax.transformer.embedding import TextEmbedding
from seqjax.transformer.model_config import check_model, embeds_block


@embeds_block
@dataclasses.dataclass(frozen=True)
class EncoderDecoderConfig:
  """Defaults are the 2017 base model (about 63M parameters with a 37,000-token shared vocabulary).
  The block's fields (norm, activation, dropout_rate, ...) may be given flat
  (`model_config.embeds_block`); dropout_rate is also the embeddings'."""

  vocab_size: int = 37000
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  max_length: int = 512
  position: str = "sinusoidal"  # "sinusoidal", "learned" or "relative" (T5's bucketed bias)
  # embeddings times sqrt(dim) (Vaswani et al. 2017, section 3.4); None: True exactly for sinusoidal positions
  scale_embeddings: bool | None = None
  tie_embeddings: bool = True  # one matrix for source, target and pre-softmax projection
  separate_head: bool = False  # with tie_embeddings: source and target share the embedding, the output layer is its own
  scale_decoder_output: bool = False  # the decoder's output times dim^-0.5 before the output layer (T5 v1.0)
  relative_buckets: int = 32  # position "relative": T5's bucket count and largest distance told apart
  relative_max_distance: int = 128
  final_norm: bool | None = None  # a norm after each stack; None: pre-LN only (post-LN + True: torch's)
  # attention_implementation is the self-attention's: with "auto", padding keeps the fused path
  # (seqjax.attention.fused_attention); cross-attention is dense
  block: TransformerBlockConfig = TransformerBlockConfig(
    dim=512, num_heads=8, ff_dim=2048, norm="post", activation="relu", dropout_rate=0.1, layer_norm_epsilon=1e-6
  )

  def __post_init__(self):
    if self.scale_embeddings is None:  # the field always holds what the model does
      object.__setattr__(self, "scale_embeddings", self.position == "sinusoidal")

  def check(self) -> "EncoderDecoderConfig":
    check_model(
      self,
      positive=("vocab_size", "max_length", "num_encoder_layers", "num_decoder_layers", "relative_buckets",
                "relative_max_distance"),
      position=("sinusoidal", "learned", "relative"),
    )  # fmt: skip
    _validate.fields(self, booleans=("scale_embeddings", "tie_embeddings", "separate_head", "scale_decoder_output"))
    runs = self.block.self_attention_implementation()
    if self.position == "relative" and runs != "dense":
      raise ValueError(
        "position='relative' adds a bias to the attention logits, which only the dense attention serves; "
        f"attention_implementation={self.block.attention_implementation!r} runs {runs!r} here: use 'dense'"
      )
    return self


def t5_like(**overrides) -> EncoderDecoderConfig:
  """T5-style: relative position bias, pre-norm with RMSNorm, no biases, unscaled embeddings and
  unscaled attention logits (attention_logit_scale 1.0).
  T5 v1.0 adds scale_decoder_output=True; v1.1 gated_feed_forward=True, activation="gelu_tanh",
  separate_head=True (seqjax.interop.from_pretrained sets these from a checkpoint's config)."""
  t5 = {"position": "relative", "scale_embeddings": False}
  t5 |= {"norm": "pre", "norm_type": "rms", "use_bias": False, "attention_logit_scale": 1.0}  # the block's
  return EncoderDecoderConfig(**t5 | overrides)


def check_source_mask(src_mask: jax.Array | None, shape: tuple[int, int]) -> None:
  """src_mask: None or [B, S] bool, True on real tokens, at least one in every row."""
  check_key_mask(src_mask, *shape, name="src_mask")


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
        config.block.dim,
        max_length=config.max_length,
        position=None if relative else config.position,
        scale=config.scale_embeddings,
        dropout_rate=config.block.dropout_rate,
        rngs=rngs,
      )

    def stack(num_layers, decoder):
      return TransformerStack(
        num_layers, block=config.block, causal=decoder, cross_attention=decoder, final_norm=config.final_norm, rngs=rngs
      )

    def relative_bias(bidirectional):
      if not relative:
        return None
      return RelativePositionBias(
        config.block.num_heads,
        bidirectional=bidirectional,
        num_buckets=config.relative_buckets,
        max_distance=config.relative_max_distance,
        rngs=rngs,
      )

    self.source_embed = embedding()
    self.target_embed = None if config.tie_embeddings else embedding()
    self.encoder = stack(config.num_encoder_layers, decoder=False)
    self.decoder = stack(config.num_decoder_layers, decoder=True)
    self.encoder_bias = relative_bias(bidirectional=True)
    self.decoder_bias = relative_bias(bidirectional=False)
    own_head = config.separate_head or not config.tie_embeddings
    dim = config.block.dim
    self.head = nnx.Linear(dim, config.vocab_size, use_bias=False, rngs=rngs) if own_head else None

  def _target_embed(self):
    return self.source_embed if self.target_embed is None else self.target_embed

  def _logits(self, x):
    x = x * self.config.block.dim**-0.5 if self.config.scale_decoder_output else x
    return self.source_embed.attend(x) if self.head is None else self.head(x)

  def encode(self, src: jax.Array, *, src_mask=None, src_segment_ids=None, dropout_key=None) -> jax.Array:
    """src [B, S] -> memory [B, S, D]; padding (src_mask False) is never attended to."""
    return self._encoder_pass(src, self._source_visibility(src, src_mask, src_segment_ids), dropout_key)[0]

  def decode(self, tgt, memory, *, src_mask=None, src_segment_ids=None, tgt_segment_ids=None, dropout_key=None):
    """tgt [B, T] (shifted right) attending causally to itself and to memory -> logits [B, T, V].
    Packed pairs need both segment ids (see the class)."""
    masks = self._target_visibility(tgt, memory, src_mask, src_segment_ids, tgt_segment_ids)
    return self._logits(self._decoder_pass(tgt, memory, *masks, dropout_key)[0])

  def attention_weights(self, src: jax.Array, tgt: jax.Array, *, src_mask: jax.Array | None = None) -> dict:
    """The attention weights of a teacher-forced pass (no dropout), per layer, first layer first:
    {"encoder": [L_enc, B, N, S, S], "decoder": [L_dec, B, N, T, T] (causal),
    "cross": [L_dec, B, N, T, S] (zero on the source's padding)}. The attention must run dense
    (attention_implementation "dense", or "auto" resolved to it): no fused path returns weights."""
    memory, _, encoder = self._encoder_pass(src, self._source_visibility(src, src_mask, None), None, True)
    masks = self._target_visibility(tgt, memory, src_mask, None, None)
    _, _, decoder = self._decoder_pass(tgt, memory, *masks, None, True)
    stacked = lambda name, blocks: jnp.stack([w[name] for w in blocks])  # noqa: E731
    return {
      "encoder": stacked("self", encoder),
      "decoder": stacked("self", decoder),
      "cross": stacked("cross", decoder),
    }

  def _source_visibility(self, src, src_mask, src_segment_ids) -> Visibility:
    """The encoder's masks, checked once for all its blocks."""
    _validate.token_ids("src", src, self.config.vocab_size)
    names = {"key_mask": "src_mask", "segment_ids": "src_segment_ids"}
    return Visibility.checked(*src.shape, src.shape[1], key_mask=src_mask, segment_ids=src_segment_ids, names=names)

  def _target_visibility(self, tgt, memory, src_mask, src_ids, tgt_ids) -> tuple[Visibility, Visibility]:
    """The decoder's masks, checked once for all its blocks: (self-attention's, causal;
    cross-attention's, over memory)."""
    _validate.token_ids("tgt", tgt, self.config.vocab_size)
    B, T = tgt.shape
    if B != memory.shape[0]:
      raise ValueError(f"tgt batch {B} must equal the source batch {memory.shape[0]}")
    if (src_ids is None) != (tgt_ids is None):
      raise ValueError("packed pairs need both src_segment_ids [B, S] and tgt_segment_ids [B, T], or neither")
    own = Visibility.checked(B, T, T, segment_ids=tgt_ids, causal=True, names={"segment_ids": "tgt_segment_ids"})
    names = {"key_mask": "src_mask", "segment_ids": "tgt_segment_ids", "key_segment_ids": "src_segment_ids"}
    S = memory.shape[1]
    cross = Visibility.checked(B, T, S, key_mask=src_mask, segment_ids=tgt_ids, key_segment_ids=src_ids, names=names)
    return own, cross

  def _encoder_pass(self, src, masks: Visibility, dropout_key, return_weights=False) -> tuple:
    """The encoder stack's output on src: (memory [B, S, D], None[, per-block weights])."""
    keys = split_key(dropout_key)
    segment_ids = masks.segment_ids
    within = None if segment_ids is None else segment_positions(segment_ids)  # [B, S]
    x = self.source_embed(src, positions=within, dropout_key=keys[0])
    positions = jnp.arange(src.shape[1])  # relative bias: distances within a run are the row's
    bias = None if self.encoder_bias is None else self.encoder_bias(positions, positions)
    return self.encoder.run(x, visibility=masks, bias=bias, dropout_key=keys[1], return_weights=return_weights)

  def _decoder_pass(self, tgt, memory, own: Visibility, cross: Visibility, dropout_key, return_weights=False):
    """The decoder stack's output on tgt over memory: ([B, T, D], None[, per-block weights])."""
    keys = split_key(dropout_key)
    within = None if own.segment_ids is None else segment_positions(own.segment_ids)  # [B, T]
    x = self._target_embed()(tgt, positions=within, dropout_key=keys[0])
    positions = jnp.arange(tgt.shape[1])
    bias = None if self.decoder_bias is None else self.decoder_bias(positions, positions)
    return self.decoder.run(
      x,
      visibility=own,
      bias=bias,
      memory=memory,
      memory_visibility=cross,
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
