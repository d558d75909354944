"""The shared parts of every Transformer here: feed-forward, residual sublayers, blocks, stacks.

A sublayer f (attention or feed-forward) is wrapped with a residual connection, dropout and a
norm N (LayerNorm, or RMSNorm with norm_type="rms" as T5) in one of two arrangements:

    post-LN (Vaswani et al. 2017, BERT):   x <- N(x + Dropout(f(x)))
    pre-LN  (GPT-2, ViT, T5):              x <- x + Dropout(f(N(x)))    (and a final N on the stack)

head_dim sets the per-head size apart from dim / num_heads (T5-3B/11B); gated makes the
feed-forward a GLU variant (T5 v1.1); attention_logit_scale replaces 1 / sqrt(Dh) (T5: 1.0).

A block is self-attention [+ cross-attention to an encoder's output] + feed-forward: the
encoder block, the decoder block and the GPT/BERT/ViT blocks are this one class.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.multihead import ContextKV, KVCache, MultiHeadAttention
from seqjax.attention.positional import AbsolutePositions, RelativePositionBias
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


class TransformerBlock(nnx.Module):
  """Self-attention, optional cross-attention (a decoder block), feed-forward; each residual."""

  def __init__(
    self,
    dim: int,
    num_heads: int,
    ff_dim: int,
    *,
    cross_attention: bool = False,
    norm: str = "post",
    activation: str = "relu",
    dropout_rate: float = 0.0,
    attention_dropout_rate: float = 0.0,
    use_bias: bool = True,
    rope: bool = False,
    layer_norm_epsilon: float = 1e-6,
    attention_implementation: str = "dense",
    norm_type: str = "layer",
    head_dim: int | None = None,
    gated: bool = False,
    attention_logit_scale: float | None = None,
    rngs: nnx.Rngs,
  ):
    _validate.choice("norm", norm, NORMS)
    _validate.choice("norm_type", norm_type, NORM_TYPES)
    _validate.probability("dropout_rate", dropout_rate)

    def attention(implementation="dense"):
      return MultiHeadAttention(
        num_heads,
        dim,
        head_dim=head_dim,
        logit_scale=attention_logit_scale,
        use_bias=use_bias,
        dropout_rate=attention_dropout_rate,
        rope=rope,
        implementation=implementation,
        rngs=rngs,
      )

    def norm_layer():
      return make_norm(norm_type, dim, epsilon=layer_norm_epsilon, use_bias=use_bias, rngs=rngs)

    self.self_attention, self.self_attention_norm = attention(attention_implementation), norm_layer()
    self.cross_attention = attention() if cross_attention else None
    self.cross_attention_norm = norm_layer() if cross_attention else None
    self.feed_forward = FeedForward(
      dim, ff_dim, activation=activation, dropout_rate=dropout_rate, use_bias=use_bias, gated=gated, rngs=rngs
    )
    self.feed_forward_norm = norm_layer()
    self.norm = norm
    self.dropout_rate = dropout_rate

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
    mask: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    positions: jax.Array | None = None,
    bias: jax.Array | None = None,
    is_causal: bool = False,
    memory: jax.Array | ContextKV | None = None,
    memory_mask: jax.Array | None = None,
    memory_segment_ids: jax.Array | None = None,
    dropout_key: jax.Array | None = None,
    cache: KVCache | None = None,
    return_weights: bool = False,
  ) -> tuple:
    """x [B, T, D] -> ([B, T, D], updated cache or None), and with return_weights a third element:
    the attention weights {"self": [B, N, T, T], "cross": [B, N, T, S] (cross-attention blocks)}.

    mask [B, T] bool: x's padding (False), never attended to; segment_ids [B, T] int: packed
    sequences, each attending to itself only, with `positions` [B, T] for RoPE; bias
    [1 or B, N, T, T] is added to the self-attention logits. memory [B, S, D] (or its keys and values,
    `cross_attention.project_context`) and memory_mask [B, S] bool, its padding, for
    cross-attention; memory_segment_ids [B, S] int, memory's packed sequences, keep each query of
    segment_ids to the memory of its own id. Padding masks keep the fast attention paths (`fused_attention`). With a
    cache, self-attention is causal over the cached positions (`MultiHeadAttention.cached`) and
    mask is not used.
    """
    if (memory is None) != (self.cross_attention is None):
      raise ValueError("memory must be given exactly when the block has cross-attention")
    if memory_segment_ids is not None and (memory is None or segment_ids is None):
      raise ValueError("memory_segment_ids [B, S] needs memory and segment_ids (the queries' [B, T] ids)")
    if return_weights and cache is not None:
      raise ValueError("return_weights is for a full forward pass, not for cached decoding (cache given)")
    keys = split_key(dropout_key, 6)
    weights = {}
    h = self._sublayer_input(x, self.self_attention_norm)
    if cache is None:
      y = self.self_attention(
        h,
        key_mask=mask,
        segment_ids=segment_ids,
        positions=positions,
        bias=bias,
        is_causal=is_causal,
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
        h,
        memory,
        key_mask=memory_mask,
        segment_ids=None if memory_segment_ids is None else segment_ids,
        key_segment_ids=memory_segment_ids,
        dropout_key=keys[2],
        return_weights=return_weights,
      )
      y = _keep_weights(y, weights, "cross", return_weights)
      x = self._add(x, y, self.cross_attention_norm, keys[3])
    h = self._sublayer_input(x, self.feed_forward_norm)
    x = self._add(x, self.feed_forward(h, keys[4]), self.feed_forward_norm, keys[5])
    return (x, cache, weights) if return_weights else (x, cache)


def _keep_weights(result, weights: dict, name: str, returned: bool) -> jax.Array:
  """An attention call's output; its weights (when it returned them) go to weights[name]."""
  if not returned:
    return result
  out, weights[name] = result
  return out


class TransformerStack(nnx.Module):
  """`num_layers` blocks of one configuration, then (pre-LN stacks, or `final_norm`) a norm of the
  blocks' norm_type; a sequence mixer (`seqjax.zoo`):

      stack(x [B, T, D], *, mask [B, T] bool | None = None, dropout_key=None, **block_kwargs) -> [B, T, D]
      stack.run(x, *, caches=None, memory=None, return_weights=False, ...) -> (x, caches[, weights])

  causal (fixed at construction): every block's self-attention reads positions <= t only (a
  decoder, GPT); otherwise it reads the whole sequence (an encoder, BERT). mask: x's padding
  (False), never attended to.

  Positions: `rope=True` (a block option) rotates queries and keys inside attention; position=
  "sinusoidal" or "learned" (a table of max_length) adds absolute positions 0..T-1 to x, and
  "relative" adds T5's bucketed bias (bidirectional unless causal) to every block's logits; None:
  the stack adds none (the caller's embedding may). The stack-level ones serve full sequences
  (`__call__`, `run` without caches)."""

  positions_kinds = ("sinusoidal", "learned", "relative")

  def __init__(
    self,
    num_layers: int,
    *,
    rngs: nnx.Rngs,
    causal: bool = False,
    final_norm: bool | None = None,
    position: str | None = None,
    max_length: int | None = None,
    **block_options,
  ):
    """final_norm: a norm after the last block; None: exactly for pre-LN stacks (True on a post-LN
    stack is what torch.nn.Transformer's encoder and decoder `norm` add)."""
    _validate.positive_int("num_layers", num_layers)
    if not isinstance(causal, bool):
      raise ValueError(f"causal must be True or False, got {causal!r}")
    if position is not None:
      _validate.choice("position", position, self.positions_kinds)
    if position == "learned":
      _validate.positive_int("max_length", max_length)
    absolute = position in AbsolutePositions.kinds
    dim = block_options["dim"]
    self.absolute = AbsolutePositions(position, max_length, dim, rngs=rngs) if absolute else None
    heads = block_options["num_heads"]
    self.relative = RelativePositionBias(heads, bidirectional=not causal, rngs=rngs) if position == "relative" else None
    self.blocks = nnx.List([TransformerBlock(rngs=rngs, **block_options) for _ in range(num_layers)])
    pre = block_options.get("norm", "post") == "pre" if final_norm is None else final_norm
    eps = block_options.get("layer_norm_epsilon", 1e-6)
    use_bias = block_options.get("use_bias", True)
    norm_type = block_options.get("norm_type", "layer")
    self.final_norm = make_norm(norm_type, dim, epsilon=eps, use_bias=use_bias, rngs=rngs) if pre else None
    self.causal = causal
    self.in_features = self.out_features = dim

  def __call__(self, x: jax.Array, *, mask=None, dropout_key=None, **block_kwargs) -> jax.Array:
    """x [B, T, D] -> [B, T, D]; block_kwargs (segment_ids, positions, bias, memory, ...) go to every block."""
    return self.run(x, mask=mask, dropout_key=dropout_key, **block_kwargs)[0]

  def run(
    self, x, *, dropout_key=None, caches=None, memory=None, block_memories=None, return_weights=False, **block_kwargs
  ):
    """x [B, T, D] -> ([B, T, D], per-block caches or None); block_kwargs go to every block.
    Cross-attention reads memory [B, S, D] in every block, or block_memories, each block's own keys
    and values of it (`project_memory`); not both. return_weights: a third element, each block's
    attention weights (`TransformerBlock`), first block first."""
    if memory is not None and block_memories is not None:
      raise ValueError("give memory [B, S, D] or block_memories (project_memory's, one per block), not both")
    if block_memories is not None and len(block_memories) != len(self.blocks):
      raise ValueError(f"block_memories must hold one per block ({len(self.blocks)}), got {len(block_memories)}")
    if self.absolute is not None or self.relative is not None:
      x, block_kwargs = self._positioned(x, caches, block_kwargs)
    keys = split_key(dropout_key, len(self.blocks))
    new_caches, weights = [], []
    for index, block in enumerate(self.blocks):
      cache = None if caches is None else caches[index]
      block_memory = memory if block_memories is None else block_memories[index]
      out = block(
        x,
        is_causal=self.causal,
        dropout_key=keys[index],
        cache=cache,
        memory=block_memory,
        return_weights=return_weights,
        **block_kwargs,
      )
      x, cache = out[:2]
      new_caches.append(cache)
      weights.extend(out[2:])
    x = x if self.final_norm is None else self.final_norm(x)
    caches = None if caches is None else tuple(new_caches)
    return (x, caches, weights) if return_weights else (x, caches)

  def _positioned(self, x: jax.Array, caches, block_kwargs: dict) -> tuple[jax.Array, dict]:
    """x with absolute positions 0..T-1 added, or block_kwargs with the relative bias."""
    if caches is not None:
      raise ValueError("a stack with position='sinusoidal', 'learned' or 'relative' serves full sequences, not caches")
    positions = jnp.arange(x.shape[1], dtype=jnp.int32)  # [T]
    if self.absolute is not None:
      if self.absolute.kind == "learned" and x.shape[1] > self.absolute.max_length:
        raise ValueError(f"x has {x.shape[1]} positions, more than max_length {self.absolute.max_length}")
      return x + self.absolute(positions).astype(x.dtype)[None], block_kwargs
    if block_kwargs.get("bias") is not None:
      raise ValueError("position='relative' makes the attention bias itself: give no bias")
    return x, {**block_kwargs, "bias": self.relative(positions, positions)}  # [1, N, T, T]

  def init_caches(self, batch: int, max_length: int, dtype=jnp.float32) -> tuple[KVCache, ...]:
    return tuple(block.self_attention.init_cache(batch, max_length, dtype) for block in self.blocks)

  def project_memory(self, memory: jax.Array) -> tuple[ContextKV, ...]:
    """memory [B, S, D] -> each block's cross-attention keys and values, computed once for decoding."""
    return tuple(block.cross_attention.project_context(memory) for block in self.blocks)
