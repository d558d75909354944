"""Scaled dot-product attention, written for one example and one head, vmapped over heads and batch.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + bias, masked) V        (Vaswani et al. 2017)

Shapes follow `jax.nn.dot_product_attention`: query [B, T, N, D], key [B, S, N, D],
value [B, S, N, Dv]; mask (bool, True = may attend) and bias (added to the logits) are
rank 4 with each axis either 1 or full, i.e. broadcastable to [B, N, T, S].
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import _validate


def causal_mask(query_length: int, key_length: int) -> jax.Array:
  """[1, 1, T, S] bool, True where s <= t (top-left aligned, as jax.nn.dot_product_attention)."""
  t = jnp.arange(query_length)[:, None]
  s = jnp.arange(key_length)[None, :]
  return (s <= t)[None, None]


def padding_mask(key_lengths: jax.Array, key_length: int) -> jax.Array:
  """[B] lengths -> [B, 1, 1, S] bool, True on the first `length` keys of each example."""
  return (jnp.arange(key_length, dtype=key_lengths.dtype)[None, :] < key_lengths[:, None])[:, None, None, :]


def attend_one_head(q, k, v, mask, bias, keep, dropout_rate: float):
  """One example, one head: q [T, D], k [S, D], v [S, Dv], mask/bias/keep [T, S] -> ([T, Dv], [T, S]).

  A row with no key to attend to gets zero weights (and a zero output), never NaN. A key slot
  that no query may attend to (padding) is read as zeros, so whatever it holds (NaN included)
  reaches neither the outputs nor the gradients; a slot masked only for some queries (causal)
  must hold finite values, as its value enters the others' weighted sum.
  Softmax runs in at least float32 (bf16/fp16 inputs are upcast), in the bias's dtype.
  """
  reachable = jnp.any(mask, axis=0)[:, None]  # [S, 1]: some query may attend to this key
  k, v = jnp.where(reachable, k, jnp.zeros((), k.dtype)), jnp.where(reachable, v, jnp.zeros((), v.dtype))
  logits = (q @ k.T).astype(bias.dtype) / jnp.sqrt(jnp.asarray(q.shape[-1], bias.dtype)) + bias  # [T, S]
  logits = jnp.where(mask, logits, jnp.finfo(bias.dtype).min)
  weights = jnp.where(mask, jax.nn.softmax(logits, axis=-1), 0.0)  # fully masked rows -> 0
  attended = weights if keep is None else jnp.where(keep, weights / (1.0 - dropout_rate), 0.0)
  return attended.astype(v.dtype) @ v, weights


def check_key_mask(key_mask, batch: int, key_length: int, *, name="key_mask", axes="[B, S]") -> None:
  """key_mask: None or [B, S] bool, False on key padding, with at least one real key in every row
  (checked when the values are concrete, outside jit). name, axes: the caller's argument and its
  axes, for the messages."""
  if key_mask is None:
    return
  _validate.bool_mask(name, key_mask, (batch, key_length), axes=axes)
  if _validate.concrete(key_mask) and not np.asarray(key_mask).any(axis=-1).all():
    rows = np.flatnonzero(~np.asarray(key_mask).any(axis=-1)).tolist()
    raise ValueError(f"{name} must mark at least one real key in every row; rows {rows} have none")


def check_segment_ids(segment_ids, batch: int, query_length: int, key_length: int, *, name="segment_ids") -> None:
  """segment_ids: None or [B, T] int >= 0 for self-attention (T = S), one id per packed sequence
  (values checked when concrete). name: the caller's argument, for the messages."""
  if segment_ids is None:
    return
  if query_length != key_length:
    raise ValueError(f"{name} are for self-attention: T = {query_length} and S = {key_length} must be equal")
  if not hasattr(segment_ids, "shape") or tuple(segment_ids.shape) != (batch, query_length):
    got = tuple(segment_ids.shape) if hasattr(segment_ids, "shape") else type(segment_ids).__name__
    raise ValueError(f"{name} must be an integer array [B, T] = {[batch, query_length]}, got {got}")
  if not jnp.issubdtype(segment_ids.dtype, jnp.integer):
    raise ValueError(f"{name} must be an integer array [B, T], got dtype {segment_ids.dtype}")
  if _validate.concrete(segment_ids) and int(np.asarray(segment_ids).min()) < 0:
    raise ValueError(f"{name} must be >= 0, got min {int(np.asarray(segment_ids).min())}")


def check_cross_segment_ids(
  query_ids, key_ids, batch: int, query_length: int, key_length: int, *, names=("segment_ids", "key_segment_ids")
) -> None:
  """Packed cross-attention: query_ids [B, T] and key_ids [B, S], int >= 0, a query attending to the
  keys of its own id. Every query id must occur among its row's key ids (checked when concrete):
  a query with none would read a zero attention output. names: the caller's arguments."""
  for name, ids, length in ((names[0], query_ids, query_length), (names[1], key_ids, key_length)):
    check_segment_ids(ids, batch, length, length, name=name)
  if _validate.concrete(query_ids) and _validate.concrete(key_ids):
    for row, (queries, keys) in enumerate(zip(np.asarray(query_ids), np.asarray(key_ids), strict=True)):
      missing = sorted(set(queries.tolist()) - set(keys.tolist()))
      if missing:
        raise ValueError(
          f"{names[0]} {missing} of row {row} do not occur in that row's {names[1]} {sorted(set(keys.tolist()))}: "
          "every query segment must have keys of its id"
        )


def segment_mask(segment_ids: jax.Array, key_segment_ids: jax.Array | None = None) -> jax.Array:
  """[B, T] segment ids (and the keys' [B, S]; None: the same, self-attention) -> [B, 1, T, S]
  bool, True where query and key share a segment."""
  keys = segment_ids if key_segment_ids is None else key_segment_ids
  return (segment_ids[:, :, None] == keys[:, None, :])[:, None]


def check_inputs(query, key, value, mask, bias) -> tuple[int, ...]:
  for name, x, spell in (
    ("query", query, "[B, T, N, D]"),
    ("key", key, "[B, S, N, D]"),
    ("value", value, "[B, S, N, Dv]"),
  ):
    _validate.float_array(name, x, spell, 4)
  B, T, N, D = query.shape
  S = key.shape[1]
  if min(B, T, N, D, S) == 0:
    raise ValueError(
      f"query [B, T, N, D] and key [B, S, N, D] need every axis >= 1, got query {query.shape} and key {key.shape}"
    )
  if key.shape != (B, S, N, D):
    raise ValueError(f"key must have shape [B, S, N, D] = [{B}, S, {N}, {D}] to match query, got {key.shape}")
  if value.shape[:3] != (B, S, N):
    raise ValueError(f"value must have shape [B, S, N, Dv] = [{B}, {S}, {N}, Dv], got {value.shape}")
  full = (B, N, T, S)
  for name, x in (("mask", mask), ("bias", bias)):
    if x is None:
      continue
    if x.ndim != 4 or any(d not in (1, f) for d, f in zip(x.shape, full, strict=True)):
      raise ValueError(
        f"{name} must be broadcastable to [B, N, T, S] = {list(full)} (rank 4, each axis 1 or full), got {x.shape}"
      )
  if mask is not None and mask.dtype != jnp.bool_:
    raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
  return full


@functools.partial(jax.jit, static_argnames=("is_causal", "return_weights", "dropout_rate"))
def dot_product_attention(
  query: jax.Array,
  key: jax.Array,
  value: jax.Array,
  *,
  mask: jax.Array | None = None,
  bias: jax.Array | None = None,
  is_causal: bool = False,
  return_weights: bool = False,
  dropout_rate: float = 0.0,
  dropout_key: jax.Array | None = None,
):
  """Multi-head scaled dot-product attention -> out [B, T, N, Dv] (and weights [B, N, T, S]).

  is_causal: also mask keys after the query position (s > t). dropout_rate with a
  dropout_key drops attention weights (training); without a key, none (evaluation).
  The returned weights are the softmax before dropout, on the same numerical path.
  """
  full = check_inputs(query, key, value, mask, bias)
  _validate.probability("dropout_rate", dropout_rate)
  T, S = full[2:]
  allowed = jnp.ones(full, jnp.bool_) if mask is None else jnp.broadcast_to(mask, full)
  if is_causal:
    allowed = allowed & causal_mask(T, S)
  softmax_dtype = query.dtype if jnp.finfo(query.dtype).bits >= 32 else jnp.float32  # never below float32
  logit_bias = jnp.zeros(full, softmax_dtype) if bias is None else jnp.broadcast_to(bias.astype(softmax_dtype), full)
  keep = None
  if dropout_rate > 0 and dropout_key is not None:
    keep = jax.random.bernoulli(dropout_key, 1.0 - dropout_rate, full)

  per_head = functools.partial(attend_one_head, dropout_rate=dropout_rate)
  # q, k, v carry heads on axis 1 ([T, N, D] per example); mask, bias, keep on axis 0 ([N, T, S]).
  over_heads = jax.vmap(per_head, in_axes=(1, 1, 1, 0, 0, None if keep is None else 0), out_axes=(1, 0))
  over_batch = jax.vmap(over_heads, in_axes=(0, 0, 0, 0, 0, None if keep is None else 0))
  out, weights = over_batch(query, key, value, allowed, logit_bias, keep)
  return (out, weights) if return_weights else out
