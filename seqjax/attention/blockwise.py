"""Memory-efficient attention: blockwise with an online softmax (Milakov & Gimelshein 2018;
Rabe & Staats 2021 for JAX; the idea of FlashAttention).

For each block of queries, key blocks are visited in turn keeping a running max m, normalizer
l and weighted sum o. The backward pass is FlashAttention-2's (a custom VJP): it keeps only the
output and each row's log-sum-exp and recomputes the block weights, so nothing of size T x S is
ever stored: memory grows linearly in T for fixed block sizes. With is_causal, key blocks wholly
above the diagonal are skipped in both passes, about half the work.
Equal to the dense core (`core.dot_product_attention`) in values and gradients, masks included;
T and S need not be multiples of the block sizes (they are padded, and padding masked).
"""

import functools

import jax
import jax.numpy as jnp

from seqjax import _validate, defaults
from seqjax.attention.core import check_inputs, check_key_mask, check_segment_ids


def pad_to(x: jax.Array, axis: int, multiple: int) -> jax.Array:
  extra = -x.shape[axis] % multiple
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, extra)
  return jnp.pad(x, widths)


def block_segment_ids(key_mask, segment_ids, batch: int, length: int, padded_q: int, padded_k: int):
  """-> (query segments [B, Tp], key segments [B, Sp]) int32 for keys of `length` S padded to Sp
  (and, with segment_ids, queries of the same length padded to Tp): a query attends to the keys of its
  own segment. Without segment_ids every position is in segment 0; key padding (key_mask False)
  and the block padding of keys past S are in segment -1, which no query has (padded query rows
  are discarded)."""
  if segment_ids is None:
    queries, keys = jnp.zeros((batch, padded_q), jnp.int32), jnp.zeros((batch, length), jnp.int32)
  else:  # self-attention: T = S = length
    keys = segment_ids.astype(jnp.int32)
    queries = jnp.pad(keys, ((0, 0), (0, padded_q - length)))  # [B, Tp]
  keys = keys if key_mask is None else jnp.where(key_mask, keys, -1)
  return queries, jnp.pad(keys, ((0, 0), (0, padded_k - length)), constant_values=-1)  # [B, Sp]


class _Blocks:
  """One head's q [Tp, D], k [Sp, D], v [Sp, Dv] seen as blocks, with what both passes share:
  the scaled scores of a block pair, which of its pairs may attend, and whether the causal mask
  hides the whole key block from the query block (then its work is skipped)."""

  def __init__(self, q, k, v, segment_ids, mask, *, is_causal: bool, block_q: int, block_k: int):
    self.dtype = jnp.float32 if jnp.finfo(q.dtype).bits < 32 else q.dtype  # softmax math in >= f32
    self.mask, self.is_causal, self.block_q, self.block_k = mask, is_causal, block_q, block_k
    self.scale = 1.0 / jnp.sqrt(jnp.asarray(q.shape[-1], self.dtype))
    nk = k.shape[0] // block_k
    self.query_segments, key_segments = segment_ids  # [Tp], [Sp]
    self.key_blocks = (
      jnp.arange(nk),  # key block index
      k.reshape(nk, block_k, -1).astype(self.dtype),  # [nk, bk, D]
      v.reshape(nk, block_k, -1).astype(self.dtype),  # [nk, bk, Dv]
      key_segments.reshape(nk, block_k),  # [nk, bk]
    )
    self.query_starts = jnp.arange(0, q.shape[0], block_q)  # [nq]

  def rows(self, x: jax.Array, start) -> jax.Array:
    """The block_q rows of x [Tp, ...] from `start`, in the softmax dtype."""
    return jax.lax.dynamic_slice_in_dim(x, start, self.block_q).astype(self.dtype)

  def scores(self, q_block, start, index, k_block, k_segments):
    """-> scaled scores [bq, bk] and the boolean [bq, bk] of pairs allowed to attend: same
    segment (`segments`), and the causal and full masks where given."""
    bq, bk = self.block_q, self.block_k
    q_segments = jax.lax.dynamic_slice_in_dim(self.query_segments, start, bq)  # [bq]
    allowed = q_segments[:, None] == k_segments[None, :]
    if self.is_causal:
      rows, cols = start + jnp.arange(bq), index * bk + jnp.arange(bk)
      allowed = allowed & (cols[None, :] <= rows[:, None])
    if self.mask is not None:
      allowed = allowed & jax.lax.dynamic_slice(self.mask, (start, index * bk), (bq, bk))
    return (q_block @ k_block.T) * self.scale, allowed

  def over_key_blocks(self, start, update, skipped, init):
    """lax.scan of update(carry, key_block) -> (carry, y) over the key blocks; with is_causal, a
    key block wholly after the query block's last row gives skipped(carry) instead. The predicate
    depends only on block indices, never on vmapped data, so it stays a real branch (not a
    select) under the head and batch vmaps."""
    if not self.is_causal:
      return jax.lax.scan(update, init, self.key_blocks)

    def visit(carry, key_block):
      visible = key_block[0] * self.block_k <= start + self.block_q - 1
      return jax.lax.cond(visible, update, lambda carry, _: skipped(carry), carry, key_block)

    return jax.lax.scan(visit, init, self.key_blocks)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _one_head(q, k, v, segment_ids, mask, is_causal: bool, block_q: int, block_k: int):
  """q [Tp, D], k/v [Sp, D], segment_ids ([Tp], [Sp]) int32, mask [Tp, Sp] bool or None -> [Tp, Dv]."""
  return _forward(q, k, v, segment_ids, mask, is_causal, block_q, block_k)[0]


def _forward(q, k, v, segment_ids, mask, is_causal, block_q, block_k):
  """-> out [Tp, Dv] and lse [Tp], each row's log-sum-exp of its allowed scores (0 if none)."""
  blocks = _Blocks(q, k, v, segment_ids, mask, is_causal=is_causal, block_q=block_q, block_k=block_k)

  def query_block(start):
    q_block = blocks.rows(q, start)  # [bq, D]

    def update(carry, key_block):
      m, l, o = carry  # running max [bq], normalizer [bq], weighted sum [bq, Dv]
      index, k_block, v_block, k_segments = key_block
      s, allowed = blocks.scores(q_block, start, index, k_block, k_segments)  # [bq, bk]
      m_new = jnp.maximum(m, jnp.max(jnp.where(allowed, s, -jnp.inf), axis=-1))
      m_safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)  # rows with nothing allowed yet
      p = jnp.where(allowed, jnp.exp(s - m_safe[:, None]), 0.0)
      correction = jnp.where(jnp.isfinite(m), jnp.exp(m - m_safe), 0.0)
      return (m_new, l * correction + p.sum(-1), o * correction[:, None] + p @ v_block), None

    init = (
      jnp.full((block_q,), -jnp.inf, blocks.dtype),
      jnp.zeros((block_q,), blocks.dtype),
      jnp.zeros((block_q, v.shape[-1]), blocks.dtype),
    )
    (m, l, o), _ = blocks.over_key_blocks(start, update, lambda carry: (carry, None), init)
    attended = l > 0  # a row with nothing to attend to gives 0
    l = jnp.where(attended, l, 1.0)
    return o / l[:, None], jnp.where(attended, m + jnp.log(l), 0.0)

  out, lse = jax.lax.map(query_block, blocks.query_starts)  # [nq, bq, Dv], [nq, bq]
  return out.reshape(q.shape[0], -1).astype(v.dtype), lse.reshape(-1)


def _forward_with_residuals(q, k, v, segment_ids, mask, is_causal, block_q, block_k):
  out, lse = _forward(q, k, v, segment_ids, mask, is_causal, block_q, block_k)
  return out, (q, k, v, segment_ids, mask, out, lse)


def _backward(is_causal, block_q, block_k, residuals, d_out):
  """FlashAttention-2's backward: each block's weights are recomputed from the saved row
  log-sum-exp, P = exp(S - lse); then dV = P^T dO, dS = P * (dO V^T - rowsum(dO * O)),
  dQ = dS K, dK = dS^T Q (scale folded into dS). Nothing T x S is stored."""
  q, k, v, segment_ids, mask, out, lse = residuals
  blocks = _Blocks(q, k, v, segment_ids, mask, is_causal=is_causal, block_q=block_q, block_k=block_k)
  delta = jnp.sum(d_out.astype(blocks.dtype) * out.astype(blocks.dtype), axis=-1)  # [Tp]

  def query_block(carry, start):
    dk, dv = carry  # [Sp, D], [Sp, Dv]
    q_block, do_block = blocks.rows(q, start), blocks.rows(d_out, start)  # [bq, D], [bq, Dv]
    lse_block, delta_block = blocks.rows(lse, start), blocks.rows(delta, start)  # [bq]

    def update(dq, key_block):
      index, k_block, v_block, k_segments = key_block
      s, allowed = blocks.scores(q_block, start, index, k_block, k_segments)
      p = jnp.where(allowed, jnp.exp(s - lse_block[:, None]), 0.0)  # [bq, bk], the forward's weights
      ds = p * (do_block @ v_block.T - delta_block[:, None]) * blocks.scale
      return dq + ds @ k_block, (ds.T @ q_block, p.T @ do_block)  # dk, dv of this key block

    def skipped(dq):
      return dq, (jnp.zeros((block_k, q.shape[-1]), blocks.dtype), jnp.zeros((block_k, v.shape[-1]), blocks.dtype))

    dq, (dk_blocks, dv_blocks) = blocks.over_key_blocks(start, update, skipped, jnp.zeros_like(q_block))
    return (dk + dk_blocks.reshape(dk.shape), dv + dv_blocks.reshape(dv.shape)), dq  # [nk, bk, D] -> [Sp, D]

  init = (jnp.zeros(k.shape, blocks.dtype), jnp.zeros(v.shape, blocks.dtype))
  (dk, dv), dq = jax.lax.scan(query_block, init, blocks.query_starts)  # dq [nq, bq, D]
  return dq.reshape(q.shape).astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None, None


_one_head.defvjp(_forward_with_residuals, _backward)


def blockwise_attention(
  query: jax.Array,
  key: jax.Array,
  value: jax.Array,
  *,
  key_mask: jax.Array | None = None,
  segment_ids: jax.Array | None = None,
  mask: jax.Array | None = None,
  is_causal: bool = False,
  block_q: int | None = None,
  block_k: int | None = None,
) -> jax.Array:
  """Attention in blocks -> [B, T, N, Dv]. Shapes as `dot_product_attention`.

  key_mask [B, S] bool: False marks key padding, anywhere in a row (linear memory); whatever
  padding holds (NaN included) reaches neither outputs nor gradients. segment_ids [B, T] int >= 0
  (self-attention, T = S): packed sequences, each query attends to its own segment only. mask: a full
  boolean mask broadcastable to [B, N, T, S] also works, but is itself T x S.
  block_q, block_k: block sizes (clipped to T and S); None takes the backend's measured choice
  (`seqjax.defaults.attention_block`).
  """
  B, _, T, S = check_inputs(query, key, value, mask, None)
  check_key_mask(key_mask, B, S)
  check_segment_ids(segment_ids, B, T, S)
  for name, size in (("block_q", block_q), ("block_k", block_k)):
    if size is not None:
      _validate.positive_int(name, size)
  return attend_blocks(
    query, key, value, key_mask, segment_ids, mask, is_causal=is_causal, block_q=block_q, block_k=block_k
  )


def attend_blocks(query, key, value, key_mask, segment_ids, mask, *, is_causal: bool, block_q=None, block_k=None):
  """`blockwise_attention` of inputs its caller has checked (it, or `fused_attention`'s callers)."""
  block_q = defaults.attention_block() if block_q is None else block_q
  block_k = defaults.attention_block() if block_k is None else block_k
  T, S = query.shape[1], key.shape[1]
  return _blockwise(
    query,
    key,
    value,
    key_mask,
    segment_ids,
    mask,
    is_causal=is_causal,
    block_q=min(block_q, T),
    block_k=min(block_k, S),
  )


@functools.partial(jax.jit, static_argnames=("is_causal", "block_q", "block_k"))
def _blockwise(query, key, value, key_mask, segment_ids, mask, *, is_causal: bool, block_q: int, block_k: int):
  B, T, N, _ = query.shape
  S = key.shape[1]
  q = pad_to(query, 1, block_q)
  k, v = pad_to(key, 1, block_k), pad_to(value, 1, block_k)
  q_segments, k_segments = block_segment_ids(key_mask, segment_ids, B, S, q.shape[1], k.shape[1])  # [B, Tp], [B, Sp]

  def one_head(q, k, v, q_segments, k_segments, mask):
    usable = k_segments >= 0  # [Sp]: real keys
    usable = usable if mask is None else usable & jnp.any(mask, axis=0)  # that some query may attend to
    k = jnp.where(usable[:, None], k, jnp.zeros((), k.dtype))  # padding is read as zeros: NaN there stays out
    v = jnp.where(usable[:, None], v, jnp.zeros((), v.dtype))
    return _one_head(q, k, v, (q_segments, k_segments), mask, is_causal, block_q, block_k)

  if mask is None:
    per_head = jax.vmap(lambda *a: one_head(*a, None), in_axes=(1, 1, 1, None, None), out_axes=1)
    out = jax.vmap(per_head)(q, k, v, q_segments, k_segments)
  else:
    full = jnp.broadcast_to(mask, (B, N, T, S))
    full = pad_to(pad_to(full, 2, block_q), 3, block_k)
    per_head = jax.vmap(one_head, in_axes=(1, 1, 1, None, None, 0), out_axes=1)
    out = jax.vmap(per_head)(q, k, v, q_segments, k_segments, full)
  return out[:, :T]
