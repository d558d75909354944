"""The shared parts of every Transformer here: feed-forward, residual sublayers, blocks, stacks.

A sublayer f (attention or feed-forward) is wrapped with a residual connection, dropout and a
norm N (LayerNorm, or RMSNorm with norm_type="rms" as T5) in one of two arrangements:

    post-LN (Vaswani et al. 2017, BERT):   x <- N(x + Dropout(f(x)))
    pre-LN  (GPT-2, ViT, T5):              x <- x + Dropout(f(N(x)))    (and a final N on the stack)

head_dim sets the per-head size apart from dim / num_heads (T5-3B/11B); gated_feed_forward makes
the feed-forward a GLU variant (T5 v1.1); attention_logit_scale replaces 1 / sqrt(Dh) (T5: 1.0).

A block is self-attention [+ cross-attention to an encoder's output] + feed-forward: the
encoder block, the decoder block and the GPT/BERT/ViT blocks are this one class, their options
one value, `TransformerBlockConfig` (each model config embeds it as `block`).
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.dispatch import IMPLEMENTATIONS, resolve_implementation
from seqjax.attention.multihead import ContextKV, KVCache, MultiHeadAttention
from seqjax.attention.positional import AbsolutePositions, RelativePositionBias
from seqjax.attention.visibility import Visibility, take
from seqjax.dropout import dropout, split_key
from seqjax.logical_axes import EMBED, MLP, axes
from seqjax.transformer.norms import NORM_TYPES, make_norm

ACTIVATIONS = {
  "relu": jax.nn.relu,
  "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # BERT, ViT
  "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),  # GPT-2
}
NORMS = ("post", "pre")


class FeedForward(nnx.Module):
  """Position-wise FFN(x) = act(x W_1 + b_1) W_2 + b_2, [B, T, D] -> [B, T, D]; with `gated`
  (Shazeer 2020, GEGLU in T5 v1.1): (act(x W_1) * (x W_g)) W_2."""

  def __init__(
    self,
    dim: int,
    ff_dim: int,
    *,
    activation: str,
    dropout_rate: float,
    use_bias: bool,
    gated: bool = False,
    rngs: nnx.Rngs,
  ):
    _validate.choice("activation", activation, ACTIVATIONS)

    def inner():
      return nnx.Linear(
        dim, ff_dim, use_bias=use_bias, kernel_metadata=axes(EMBED, MLP), bias_metadata=axes(MLP), rngs=rngs
      )

    self.inner = inner()
    self.gate = inner() if gated else None
    self.outer = nnx.Linear(
      ff_dim, dim, use_bias=use_bias, kernel_metadata=axes(MLP, EMBED), bias_metadata=axes(EMBED), rngs=rngs
    )
    self.activation = activation
    self.dropout_rate = dropout_rate

  def __call__(self, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
    h = ACTIVATIONS[self.activation](self.inner(x))  # [B, T, D_ff]
    h = h if self.gate is None else h * self.gate(x)
    return self.outer(dropout(h, self.dropout_rate, dropout_key))


@dataclasses.dataclass(frozen=True)
class TransformerBlockConfig:
  """The options of a Transformer block, for every block of a stack (see the module docstring)."""

  dim: int
  num_heads: int
  ff_dim: int
  norm: str = "post"  # "post" (2017, BERT) or "pre" (GPT-2, ViT, T5)
  activation: str = "relu"  # one of ACTIVATIONS
  dropout_rate: float = 0.0  # on every sublayer's output and the feed-forward's hidden layer
  attention_dropout_rate: float = 0.0  # on the attention weights
  use_bias: bool = True
  layer_norm_epsilon: float = 1e-6
  attention_implementation: str = "dense"  # self-attention's (`MultiHeadAttention`); cross-attention is dense
  norm_type: str = "layer"  # or "rms" (T5)
  head_dim: int | None = None  # per head; None: dim // num_heads
  gated_feed_forward: bool = False
  attention_logit_scale: float | None = None  # None: 1 / sqrt(head dim)

  def check(self) -> "TransformerBlockConfig":
    _validate.fields(
      self,
      positive=("dim", "num_heads", "ff_dim", "head_dim"),
      optional=("head_dim",),
      probabilities=("dropout_rate", "attention_dropout_rate"),
      booleans=("use_bias", "gated_feed_forward"),
      norm=NORMS,
      activation=ACTIVATIONS,
      attention_implementation=IMPLEMENTATIONS,
      norm_type=NORM_TYPES,
    )
    _validate.finite_number("layer_norm_epsilon", self.layer_norm_epsilon, low=0.0, inclusive=False)
    if self.attention_logit_scale is not None:
      _validate.finite_number("attention_logit_scale", self.attention_logit_scale, low=0.0, inclusive=False)
    if self.head_dim is None and self.dim % self.num_heads:
      raise ValueError(f"dim {self.dim} must be divisible by num_heads {self.num_heads} (or set head_dim)")
    return self

  def self_attention_implementation(self) -> str:
    """What the blocks' self-attention runs (`dispatch.resolve_implementation`)."""
    return resolve_implementation(self.attention_implementation, attention_dropout=self.attention_dropout_rate > 0)


class TransformerBlock(nnx.Module):
  """Self-attention, optional cross-attention (a decoder block), feed-forward; each residual.

  TransformerBlock(dim, num_heads, ff_dim, *, cross_attention, rope, rngs, **options): options are
  the other fields of `TransformerBlockConfig`, with its defaults; rope rotates queries and keys
  of self-attention (RoPE) at the call's positions."""

  def __init__(
    self,
    dim: int,
    num_heads: int,
    ff_dim: int,
    *,
    cross_attention: bool = False,
    rope: bool = False,
    rngs: nnx.Rngs,
    **options,
  ):
    config = TransformerBlockConfig(dim, num_heads, ff_dim, **options).check()

    def attention(implementation="dense"):
      return MultiHeadAttention(
        num_heads,
        dim,
        head_dim=config.head_dim,
        logit_scale=config.attention_logit_scale,
        use_bias=config.use_bias,
        dropout_rate=config.attention_dropout_rate,
        rope=rope,
        implementation=implementation,
        rngs=rngs,
      )

    def norm_layer():
      return make_norm(config.norm_type, dim, epsilon=config.layer_norm_epsilon, use_bias=config.use_bias, rngs=rngs)

    self.self_attention = attention(config.attention_implementation)
    self.self_attention_norm = norm_layer()
    self.cross_attention = attention() if cross_attention else None
    self.cross_attention_norm = norm_layer() if cross_attention else None
    self.feed_forward = FeedForward(
      dim,
      ff_dim,
      activation=config.activation,
      dropout_rate=config.dropout_rate,
      use_bias=config.use_bias,
      gated=config.gated_feed_forward,
      rngs=rngs,
    )
    self.feed_forward_norm = norm_layer()
    self.norm = config.norm
    self.dropout_rate = config.dropout_rate

  def _sublayer_input(self, x: jax.Array, norm: nnx.LayerNorm) -> jax.Array:
    return norm(x) if self.norm == "pre" else x

  def _add(self, x: jax.Array, y: jax.Array, norm: nnx.LayerNorm, key) -> jax.Array:
    """The residual around a sublayer's output y: pre-LN x + y, post-LN norm(x + y) (dropout on y)."""
    y = dropout(y, self.dropout_rate, key)
    return x + y if self.norm == "pre" else norm(x + y)

  def __call__(
    self,
    x: jax.Array,
    *,
    key_mask: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    is_causal: bool = False,
    visibility: Visibility | None = None,
    positions: jax.Array | None = None,
    bias: jax.Array | None = None,
    memory: jax.Array | ContextKV | None = None,
    memory_mask: jax.Array | None = None,
    memory_segment_ids: jax.Array | None = None,
    memory_visibility: Visibility | None = None,
    dropout_key: jax.Array | None = None,
    cache: KVCache | None = None,
    return_weights: bool = False,
  ) -> tuple:
    """x [B, T, D] -> ([B, T, D], updated cache or None), and with return_weights a third element:
    the attention weights {"self": [B, N, T, T], "cross": [B, N, T, S] (cross-attention blocks)}.

    key_mask [B, T] bool: x's padding (False), never attended to; segment_ids [B, T] int: packed
    sequences, each attending to itself only, with `positions` [B, T] for RoPE; is_causal: each
    position reads itself and earlier ones only. Or, checked once by the model for all its
    blocks, `visibility` (`seqjax.attention.visibility`) in their place. bias [1 or B, N, T, T] is
    added to the self-attention logits. memory [B, S, D] (or its keys and values,
    `cross_attention.project_context`) for cross-attention, with memory_mask [B, S] bool, its
    padding, and memory_segment_ids [B, S] int, memory's packed sequences (each query of
    segment_ids reads the memory of its own id); or `memory_visibility` in their place. Padding
    and segments keep the fast attention paths (`fused_attention`). With a cache, self-attention
    is causal over the cached positions (`MultiHeadAttention.cached`) and takes no masks.
    """
    if (memory is None) != (self.cross_attention is None):
      raise ValueError("memory must be given exactly when the block has cross-attention")
    if return_weights and cache is not None:
      raise ValueError("return_weights is for a full forward pass, not for cached decoding (cache given)")
    B, T = x.shape[:2]
    if cache is None:
      visibility = take(
        visibility, B, T, T, what="TransformerBlock", key_mask=key_mask, segment_ids=segment_ids, causal=is_causal
      )
    elif key_mask is not None or segment_ids is not None or visibility is not None:
      raise ValueError(
        "with a cache, self-attention reads the cached positions: give no key_mask, segment_ids or visibility"
      )
    if memory is not None:
      memory_visibility = _memory_visibility(
        memory_visibility,
        B,
        T,
        memory,
        memory_mask=memory_mask,
        segment_ids=segment_ids,
        key_segment_ids=memory_segment_ids,
      )
    elif memory_mask is not None or memory_segment_ids is not None or memory_visibility is not None:
      raise ValueError("memory_mask, memory_segment_ids and memory_visibility need memory [B, S, D]")
    keys = split_key(dropout_key, 6)
    weights = {}
    h = self._sublayer_input(x, self.self_attention_norm)
    if cache is None:
      y = self.self_attention(
        h,
        visibility=visibility,
        positions=positions,
        bias=bias,
        dropout_key=keys[0],
        return_weights=return_weights,
      )
      y = _keep_weights(y, weights, "self", return_weights)
    else:
      y, cache = self.self_attention.cached(h, cache, bias=bias)
    x = self._add(x, y, self.self_attention_norm, keys[1])
    if self.cross_attention is not None:
      h = self._sublayer_input(x, self.cross_attention_norm)
      y = self.cross_attention(
        h, memory, visibility=memory_visibility, dropout_key=keys[2], return_weights=return_weights
      )
      y = _keep_weights(y, weights, "cross", return_weights)
      x = self._add(x, y, self.cross_attention_norm, keys[3])
    h = self._sublayer_input(x, self.feed_forward_norm)
    x = self._add(x, self.feed_forward(h, keys[4]), self.feed_forward_norm, keys[5])
    return (x, cache, weights) if return_weights else (x, cache)


def _memory_visibility(given, batch, length, memory, memory_mask, *, segment_ids, key_segment_ids) -> Visibility:
  """Cross-attention's Visibility over memory [B, S, D] (or its ContextKV): `given`, or memory's
  padding and segment ids (each query of segment_ids reading the memory of its own id) checked now."""
  if key_segment_ids is not None and segment_ids is None:
    raise ValueError("memory_segment_ids [B, S] needs segment_ids (the queries' [B, T] ids)")
  return take(
    given,
    batch,
    length,
    (memory.key if isinstance(memory, ContextKV) else memory).shape[1],
    what="TransformerBlock's cross-attention",
    key_mask=memory_mask,
    segment_ids=None if key_segment_ids is None else segment_ids,
    key_segment_ids=key_segment_ids,
    names={"key_mask": "memory_mask", "key_segment_ids": "memory_segment_ids"},
  )


def _keep_weights(result, weights: dict, name: str, returned: bool) -> jax.Array:
  """An attention call's output; its weights (when it returned them) go to weights[name]."""
  if not returned:
    return result
  out, weights[name] = result
  return out


class TransformerStack(nnx.Module):
  """`num_layers` blocks of one configuration, `block` (a TransformerBlockConfig, or its fields as
  keywords: `block_options`), then (pre-LN stacks, or `final_norm`) a norm of the blocks'
  norm_type; a sequence mixer (`seqjax.zoo`):

      stack(x [B, T, D], *, mask [B, T] bool | None = None, dropout_key=None, **run_options) -> [B, T, D]
      stack.run(x, *, key_mask=None, caches=None, memory=None, return_weights=False, ...) -> (x, caches[, weights])

  causal (fixed at construction): every block's self-attention reads positions <= t only (a
  decoder, GPT); otherwise it reads the whole sequence (an encoder, BERT). cross_attention: every
  block also attends to a memory (an encoder-decoder's decoder). mask (`run`: key_mask): x's
  padding (False), never attended to; segment_ids [B, T]: packed sequences. They are checked once
  per call into a `Visibility` that every block takes as it is; a model that checked its own
  passes that instead (`visibility`, and `memory_visibility` for cross-attention).

  Positions: `rope=True` rotates queries and keys inside attention; position= "sinusoidal" or
  "learned" (a table of max_length) adds absolute positions 0..T-1 to x, and "relative" adds T5's
  bucketed bias (bidirectional unless causal) to every block's logits (its self-attention must
  run dense); None: the stack adds none (the caller's embedding may). The stack-level ones serve
  full sequences (`__call__`, `run` without caches)."""

  positions_kinds = ("sinusoidal", "learned", "relative")

  def __init__(
    self,
    num_layers: int,
    *,
    rngs: nnx.Rngs,
    block: TransformerBlockConfig | None = None,
    causal: bool = False,
    cross_attention: bool = False,
    rope: bool = False,
    final_norm: bool | None = None,
    position: str | None = None,
    max_length: int | None = None,
    **block_options,
  ):
    """final_norm: a norm after the last block; None: exactly for pre-LN stacks (True on a post-LN
    stack is what torch.nn.Transformer's encoder and decoder `norm` add)."""
    _validate.positive_int("num_layers", num_layers)
    if block is None:
      block = TransformerBlockConfig(**block_options)
    elif block_options:
      raise ValueError(f"give block (a TransformerBlockConfig) or its fields {sorted(block_options)}, not both")
    block.check()
    if not isinstance(causal, bool):
      raise ValueError(f"causal must be True or False, got {causal!r}")
    if position is not None:
      _validate.choice("position", position, self.positions_kinds)
    if position == "learned":
      _validate.positive_int("max_length", max_length)
    if position == "relative" and block.self_attention_implementation() != "dense":
      raise ValueError(
        f"position='relative' adds a bias to the attention logits, which only the dense attention serves; "
        f"attention_implementation={block.attention_implementation!r} runs "
        f"{block.self_attention_implementation()!r} here: use 'dense'"
      )
    absolute = position in AbsolutePositions.kinds
    self.absolute = AbsolutePositions(position, max_length, block.dim, rngs=rngs) if absolute else None
    relative = position == "relative"
    self.relative = RelativePositionBias(block.num_heads, bidirectional=not causal, rngs=rngs) if relative else None
    fields = dataclasses.asdict(block)
    self.blocks = nnx.List(
      [TransformerBlock(cross_attention=cross_attention, rope=rope, rngs=rngs, **fields) for _ in range(num_layers)]
    )
    pre = block.norm == "pre" if final_norm is None else final_norm
    eps, use_bias = block.layer_norm_epsilon, block.use_bias
    self.final_norm = make_norm(block.norm_type, block.dim, epsilon=eps, use_bias=use_bias, rngs=rngs) if pre else None
    self.causal = causal
    self.in_features = self.out_features = block.dim

  def __call__(
    self, x: jax.Array, *, mask=None, segment_ids=None, visibility=None, dropout_key=None, **run_options
  ) -> jax.Array:
    """x [B, T, D] -> [B, T, D]; run_options (positions, bias, memory, ...) as `run`'s."""
    visibility = self._visibility(x, visibility, mask, segment_ids, mask_name="mask")
    return self.run(x, visibility=visibility, dropout_key=dropout_key, **run_options)[0]

  def run(
    self,
    x: jax.Array,
    *,
    key_mask: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    visibility: Visibility | None = None,
    positions: jax.Array | None = None,
    bias: jax.Array | None = None,
    memory: jax.Array | None = None,
    block_memories: tuple[ContextKV, ...] | None = None,
    memory_mask: jax.Array | None = None,
    memory_segment_ids: jax.Array | None = None,
    memory_visibility: Visibility | None = None,
    dropout_key: jax.Array | None = None,
    caches: tuple[KVCache, ...] | None = None,
    return_weights: bool = False,
  ):
    """x [B, T, D] -> ([B, T, D], per-block caches or None). The masks as `TransformerBlock`'s,
    checked here once for every block; positions [B, T] (RoPE) and bias [1 or B, N, T, T] go to
    every block. Cross-attention reads memory [B, S, D] in every block, or block_memories, each
    block's own keys and values of it (`project_memory`); not both. return_weights: a third
    element, each block's attention weights (`TransformerBlock`), first block first."""
    if memory is not None and block_memories is not None:
      raise ValueError("give memory [B, S, D] or block_memories (project_memory's, one per block), not both")
    if block_memories is not None and len(block_memories) != len(self.blocks):
      raise ValueError(f"block_memories must hold one per block ({len(self.blocks)}), got {len(block_memories)}")
    if caches is None:
      visibility = self._visibility(x, visibility, key_mask, segment_ids, mask_name="key_mask")
      self_masks = {"visibility": visibility}
      segment_ids = visibility.segment_ids
    else:  # cached decoding: the blocks refuse any of these
      self_masks = {"key_mask": key_mask, "segment_ids": segment_ids, "visibility": visibility}
    first_memory = memory if block_memories is None else block_memories[0]
    if first_memory is not None and self.blocks[0].cross_attention is not None:
      memory_visibility = _memory_visibility(
        memory_visibility,
        *x.shape[:2],
        first_memory,
        memory_mask,
        segment_ids=segment_ids,
        key_segment_ids=memory_segment_ids,
      )
      memory_mask = memory_segment_ids = None
    if self.absolute is not None or self.relative is not None:
      x, bias = self._positioned(x, caches, bias)
    keys = split_key(dropout_key, len(self.blocks))
    new_caches, weights = [], []
    for index, block in enumerate(self.blocks):
      out = block(
        x,
        **self_masks,
        positions=positions,
        bias=bias,
        memory=memory if block_memories is None else block_memories[index],
        memory_mask=memory_mask,
        memory_segment_ids=memory_segment_ids,
        memory_visibility=memory_visibility,
        dropout_key=keys[index],
        cache=None if caches is None else caches[index],
        return_weights=return_weights,
      )
      x, cache = out[:2]
      new_caches.append(cache)
      weights.extend(out[2:])
    x = x if self.final_norm is None else self.final_norm(x)
    caches = None if caches is None else tuple(new_caches)
    return (x, caches, weights) if return_weights else (x, caches)

  def _visibility(self, x, given, key_mask, segment_ids, *, mask_name: str) -> Visibility:
    """The blocks' self-attention Visibility: `given` (the model's, checked where it took its
    input, and causal as this stack), or key_mask and segment_ids [B, T] checked now."""
    B, T = x.shape[:2]
    visibility = take(
      given,
      B,
      T,
      T,
      what="TransformerStack",
      key_mask=key_mask,
      segment_ids=segment_ids,
      causal=self.causal and given is None,
      names={"key_mask": mask_name},
      mask_axes="[B, T]",
    )
    if visibility.causal != self.causal:
      raise ValueError(f"the visibility given has causal={visibility.causal}, but this stack has causal={self.causal}")
    return visibility

  def _positioned(self, x: jax.Array, caches, bias) -> tuple[jax.Array, jax.Array | None]:
    """x with absolute positions 0..T-1 added, or the relative bias as the attention bias."""
    if caches is not None:
      raise ValueError("a stack with position='sinusoidal', 'learned' or 'relative' serves full sequences, not caches")
    positions = jnp.arange(x.shape[1], dtype=jnp.int32)  # [T]
    if self.absolute is not None:
      if self.absolute.kind == "learned" and x.shape[1] > self.absolute.max_length:
        raise ValueError(f"x has {x.shape[1]} positions, more than max_length {self.absolute.max_length}")
      return x + self.absolute(positions).astype(x.dtype)[None], bias
    if bias is not None:
      raise ValueError("position='relative' makes the attention bias itself: give no bias")
    return x, self.relative(positions, positions)  # [1, N, T, T]

  def init_caches(self, batch: int, max_length: int, dtype=jnp.float32) -> tuple[KVCache, ...]:
    return tuple(block.self_attention.init_cache(batch, max_length, dtype) for block in self.blocks)

  def project_memory(self, memory: jax.Array) -> tuple[ContextKV, ...]:
    """memory [B, S, D] -> each block's cross-attention keys and values, computed once for decoding."""
    return tuple(block.cross_attention.project_context(memory) for block in self.blocks)
