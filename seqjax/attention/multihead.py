"""Multi-head attention (separate q/k/v/output projections) with a functional key/value cache."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.attention.core import dot_product_attention
from seqjax.attention.dispatch import attend_fused, resolve_implementation
from seqjax.attention.positional import apply_rope
from seqjax.attention.visibility import Visibility, take
from seqjax.logical_axes import EMBED, HEAD_DIM, HEADS, axes


class KVCache(NamedTuple):
  """Keys and values of the positions decoded so far, for one self-attention layer.

  Slots are shared by the batch; a row whose prompt was left-padded starts at slot `start[b]`:
  its slots before that are padding no query attends to, and its positions count from there.
  """

  key: jax.Array  # [B, S_max, N, Dh]
  value: jax.Array  # [B, S_max, N, Dh]
  length: jax.Array  # [] int32: slots [0, length) are filled
  start: jax.Array  # [B] int32: each row's first real slot

  def positions(self, count: int) -> jax.Array:
    """[B, count]: each row's positions for the next `count` slots (padding slots at 0)."""
    slots = self.length + jnp.arange(count, dtype=jnp.int32)  # [count]
    return jnp.maximum(slots[None, :] - self.start[:, None], 0)

  def left_padded(self, mask: jax.Array) -> "KVCache":
    """An empty cache about to read a prompt whose mask [B, P] is False on each row's left padding:
    each row starts at its first real token."""
    return self._replace(start=mask.shape[1] - jnp.sum(mask, axis=-1).astype(jnp.int32))


class ContextKV(NamedTuple):
  """Keys and values of a cross-attention's context, projected once per sequence for decoding."""

  key: jax.Array  # [B, S, N, Dh]
  value: jax.Array  # [B, S, N, Dh]


class MultiHeadAttention(nnx.Module):
  """Projections to N heads of Dh, attention per head, and an output projection.

  Weights have flax.nnx.MultiHeadAttention's layout: query/key/value kernels
  [D_in, N, Dh], output kernel [N, Dh, D_out].

  mha(x [B, T, D], context [B, S, D_kv] | ContextKV | None, *, key_mask, segment_ids,
      key_segment_ids, is_causal, visibility, bias, positions, dropout_key, return_weights)
      -> [B, T, D_out] (and weights [B, N, T, S])
  Self-attention when context is None; context may be given already projected
  (`project_context`). key_mask [B, S] bool is the keys' padding (False: never attended to);
  segment_ids [B, T] int, for packed sequences, keeps each query to the keys of its own segment:
  self-attention's keys carry the same ids, cross-attention's are `key_segment_ids` [B, S];
  is_causal hides the keys after each query's position. These are checked at every call; a
  model passes them checked once instead, as `visibility` (`seqjax.attention.visibility`). bias
  [1 or B, N, T, S] is added to the logits. With rope=True, queries and keys are rotated at
  `positions` (default 0..T-1 and 0..S-1). logit_scale: the logits' factor on q k^T; None is
  1 / sqrt(Dh) (Vaswani et al.), T5 uses 1.0 (its scale folded into the trained weights).

  implementation: "dense" (the vmapped one-head core, everything above), a path of
  `seqjax.attention.fused_attention` ("blockwise", "cudnn", "pallas"), or "auto", resolved here,
  when the layer is built (`dispatch.resolve_implementation`: "dense" when dropout_rate > 0, else
  blockwise on a CPU, pallas on a TPU, fused_attention's own pick by dtype and length on a GPU);
  `implementation` holds the result. The fused paths serve key padding, segment ids and causal
  masking; a call they cannot serve (a bias, key_segment_ids, returned weights, or a dropout_key
  with dropout_rate > 0) is refused, never sent elsewhere.
  """

  def __init__(
    self,
    num_heads: int,
    in_features: int,
    *,
    head_dim: int | None = None,
    kv_features: int | None = None,
    out_features: int | None = None,
    use_bias: bool = True,
    dropout_rate: float = 0.0,
    rope: bool = False,
    implementation: str = "dense",
    logit_scale: float | None = None,
    rngs: nnx.Rngs,
  ):
    if logit_scale is not None:
      _validate.finite_number("logit_scale", logit_scale, low=0.0, inclusive=False)
    _validate.positive_int("num_heads", num_heads)
    _validate.positive_int("in_features", in_features)
    _validate.probability("dropout_rate", dropout_rate)
    implementation = resolve_implementation(implementation, attention_dropout=dropout_rate > 0)
    if head_dim is None:
      if in_features % num_heads:
        raise ValueError(f"model dim in_features={in_features} must be divisible by num_heads={num_heads}")
      head_dim = in_features // num_heads
    kv_features = kv_features or in_features
    out_features = out_features or in_features

    def project(features):
      return nnx.LinearGeneral(
        features,
        (num_heads, head_dim),
        use_bias=use_bias,
        kernel_metadata=axes(EMBED, HEADS, HEAD_DIM),
        bias_metadata=axes(HEADS, HEAD_DIM),
        rngs=rngs,
      )

    self.query, self.key, self.value = project(in_features), project(kv_features), project(kv_features)
    self.out = nnx.LinearGeneral(
      (num_heads, head_dim),
      out_features,
      axis=(-2, -1),
      use_bias=use_bias,
      kernel_metadata=axes(HEADS, HEAD_DIM, EMBED),
      bias_metadata=axes(EMBED),
      rngs=rngs,
    )
    self.in_features, self.kv_features = in_features, kv_features
    self.num_heads = num_heads
    self.head_dim = head_dim
    self.dropout_rate = dropout_rate
    self.rope = rope
    self.implementation = implementation
    # the logits are q k^T * logit_scale; every attention path divides by sqrt(Dh), so q carries the rest
    self.query_scale = None if logit_scale is None else logit_scale * head_dim**0.5

  @property
  def zero_gradient_params(self) -> tuple[tuple[str, ...], ...]:
    """Parameters whose gradient is exactly zero by construction: the key bias adds q . b_k to
    every logit of a query alike, and softmax is shift-invariant (not so under RoPE, which
    rotates b_k by position). The gradient-health monitor does not call them vanishing."""
    has_key_bias = self.key.bias is not None
    return (("key", "bias"),) if has_key_bias and not self.rope else ()

  def _keys_values(self, context, positions):
    k, v = self.key(context), self.value(context)  # [B, S, N, Dh]
    return (apply_rope(k, positions), v) if self.rope else (k, v)

  def _queries(self, x, positions):
    q = self.query(x)  # [B, T, N, Dh]
    q = apply_rope(q, positions) if self.rope else q
    return q if self.query_scale is None else q * self.query_scale

  def project_context(self, context: jax.Array) -> ContextKV:
    """context [B, S, D_kv] -> its keys and values (at positions 0..S-1 under RoPE): what
    cross-attention computes once per source sequence when decoding."""
    _validate.float_array("context", context, "[B, S, D_kv]", 3)
    _validate.axis_size("context", context, 2, self.kv_features, f"[B, S, D_kv={self.kv_features}]")
    return ContextKV(*self._keys_values(context, jnp.arange(context.shape[1])))

  def __call__(
    self,
    x: jax.Array,
    context: jax.Array | ContextKV | None = None,
    *,
    key_mask: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    key_segment_ids: jax.Array | None = None,
    is_causal: bool = False,
    visibility: Visibility | None = None,
    bias: jax.Array | None = None,
    positions: jax.Array | None = None,
    dropout_key: jax.Array | None = None,
    return_weights: bool = False,
  ):
    _validate.float_array("x", x, "[B, T, D]", 3)
    _validate.axis_size("x", x, 2, self.in_features, f"[B, T, D={self.in_features}]")
    B, T = x.shape[:2]
    S = T
    if context is not None:
      if not isinstance(context, ContextKV):
        _validate.float_array("context", context, "[B, S, D_kv]", 3)
      keys = context.key if isinstance(context, ContextKV) else context  # [B, S, ...]
      if keys.shape[0] != B:
        raise ValueError(f"context batch {keys.shape[0]} must equal x batch {B}")
      S = keys.shape[1]
    visibility = take(
      visibility,
      B,
      T,
      S,
      what="MultiHeadAttention",
      key_mask=key_mask,
      segment_ids=segment_ids,
      key_segment_ids=key_segment_ids,
      causal=is_causal,
    )
    self._check_served(visibility, bias, dropout_key, return_weights)
    q_pos = jnp.arange(T) if positions is None else positions
    if context is None:  # self-attention
      k, v = self._keys_values(x, q_pos)
    else:
      k, v = context if isinstance(context, ContextKV) else self.project_context(context)
    q = self._queries(x, q_pos)
    if self.implementation != "dense":
      out = attend_fused(q, k, v, visibility.key_mask, visibility.segment_ids, visibility.causal, self.implementation)
      return self.out(out)
    result = dot_product_attention(
      q,
      k,
      v,
      mask=visibility.dense_mask(),
      bias=bias,
      is_causal=visibility.causal,
      return_weights=return_weights,
      dropout_rate=self.dropout_rate,
      dropout_key=dropout_key,
    )
    if return_weights:
      out, weights = result
      return self.out(out), weights
    return self.out(result)

  def _check_served(self, visibility: Visibility, bias, dropout_key, return_weights: bool) -> None:
    """A fused path serves padding, segment ids and causality alone: anything else is refused."""
    if self.implementation == "dense":
      return
    unserved = [
      name
      for name, asked in (
        ("bias", bias is not None),
        ("key_segment_ids", visibility.key_segment_ids is not None),
        ("return_weights", return_weights),
        ("attention dropout (a dropout_key with dropout_rate > 0)", self.dropout_rate > 0 and dropout_key is not None),
      )
      if asked
    ]
    if unserved:
      raise ValueError(
        f"this attention runs implementation={self.implementation!r}, which serves key padding, segment ids and "
        f"causal masking alone, not {unserved}: build it with implementation='dense' for such calls"
      )

  def init_cache(self, batch: int, max_length: int, dtype=jnp.float32) -> KVCache:
    shape = (batch, max_length, self.num_heads, self.head_dim)
    zeros = jnp.zeros(shape, dtype)
    return KVCache(zeros, zeros, jnp.zeros((), jnp.int32), jnp.zeros((batch,), jnp.int32))

  def cached(self, x: jax.Array, cache: KVCache, *, bias: jax.Array | None = None) -> tuple[jax.Array, KVCache]:
    """Causal self-attention of new positions x [B, T, D] (T >= 1: a prompt, or one token) in
    slots cache.length + 0..T-1 over everything cached so far, each row at its own positions
    (`KVCache.positions`).

    bias, if given, is [1 or B, N, T, S_max] for those query positions against all cache slots.
    Returns ([B, T, D_out], cache with the T new keys and values written in).
    The cache must have room: cache.length + T <= S_max, checked when cache.length is concrete.
    Under jit it is not known, and an overflowing write would land on the last slots: the
    decoding loops (`seqjax.decoding`) size the cache for the prompt and every new token beforehand.
    """
    _validate.float_array("x", x, "[B, T, D]", 3)
    _validate.axis_size("x", x, 2, self.in_features, f"[B, T, D={self.in_features}]")
    B, T, _ = x.shape
    S_max = cache.key.shape[1]
    if cache.key.shape[0] != B:
      raise ValueError(f"cache batch {cache.key.shape[0]} must equal x batch {B}")
    filled = int(cache.length) if _validate.concrete(cache.length) else 0
    if filled + T > S_max:
      raise ValueError(
        f"x has {T} new positions but the cache holds {S_max} and {filled} are filled: "
        f"size the cache for max_length >= {filled + T}"
      )
    slots = cache.length + jnp.arange(T, dtype=jnp.int32)  # [T]
    positions = cache.positions(T)  # [B, T]
    k_new, v_new = self._keys_values(x, positions)
    corner = (0, cache.length, 0, 0)
    cache = cache._replace(
      key=jax.lax.dynamic_update_slice(cache.key, k_new.astype(cache.key.dtype), corner),
      value=jax.lax.dynamic_update_slice(cache.value, v_new.astype(cache.value.dtype), corner),
      length=cache.length + T,
    )
    # the query in slot q sees its row's real slots s <= q (unfilled slots lie beyond every q);
    # a padding query sees itself alone, so its (unused) output stays finite
    s = jnp.arange(S_max, dtype=jnp.int32)[None, None, :]  # [1, 1, S_max]
    q = slots[None, :, None]  # [1, T, 1]
    visible = (s <= q) & ((s >= cache.start[:, None, None]) | (s == q))  # [B, T, S_max]
    out = dot_product_attention(self._queries(x, positions), cache.key, cache.value, mask=visible[:, None], bias=bias)
    return self.out(out), cache
