"""Memory-efficient attention: blockwise with an online softmax (Milakov & Gimelshein 2018;
Rabe & Staats 2021 for JAX; the idea of FlashAttention), and the backend dispatch.

For each block of queries, key blocks are visited in turn keeping a running max m, normalizer
l and weighted sum o; each query block is rematerialized in the backward pass (jax.checkpoint),
so nothing of size T x S is ever stored: memory grows linearly in T for fixed block sizes.
Equal to the dense core (`core.dot_product_attention`) in values and gradients, masks included;
T and S need not be multiples of the block sizes (they are padded, and padding masked).
"""

import functools

import jax
import jax.numpy as jnp

from seqjax import _validate
from seqjax.attention.core import _check, dot_product_attention, padding_mask

IMPLEMENTATIONS = ("auto", "dense", "blockwise", "cudnn", "pallas")


def _pad_to(x: jax.Array, axis: int, multiple: int) -> jax.Array:
  extra = -x.shape[axis] % multiple
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, extra)
  return jnp.pad(x, widths)


def _one_head(q, k, v, key_valid, mask, *, is_causal: bool, block_q: int, block_k: int):
  """q [Tp, D], k/v [Sp, D], key_valid [Sp] bool, mask [Tp, Sp] bool or None -> [Tp, Dv]."""
  Tp, Sp = q.shape[0], k.shape[0]
  dtype = jnp.float32 if jnp.finfo(q.dtype).bits < 32 else q.dtype
  scale = 1.0 / jnp.sqrt(jnp.asarray(q.shape[-1], dtype))
  k_blocks = k.reshape(Sp // block_k, block_k, -1)  # [nk, bk, D]
  v_blocks = v.reshape(Sp // block_k, block_k, -1)
  valid_blocks = key_valid.reshape(Sp // block_k, block_k)

  @jax.checkpoint
  def query_block(start):
    q_block = jax.lax.dynamic_slice_in_dim(q, start, block_q).astype(dtype)  # [bq, D]
    rows = start + jnp.arange(block_q)  # query positions

    def visit(carry, inputs):
      m, l, o = carry  # [bq], [bq], [bq, Dv]
      index, k_block, v_block, valid = inputs
      cols = index * block_k + jnp.arange(block_k)
      allowed = jnp.broadcast_to(valid[None, :], (block_q, block_k))
      if is_causal:
        allowed = allowed & (cols[None, :] <= rows[:, None])
      if mask is not None:
        allowed = allowed & jax.lax.dynamic_slice(mask, (start, index * block_k), (block_q, block_k))
      s = (q_block @ k_block.astype(dtype).T) * scale  # [bq, bk]
      m_new = jnp.maximum(m, jnp.max(jnp.where(allowed, s, -jnp.inf), axis=-1))
      m_safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)  # rows with nothing allowed yet
      p = jnp.where(allowed, jnp.exp(s - m_safe[:, None]), 0.0)
      correction = jnp.where(jnp.isfinite(m), jnp.exp(m - m_safe), 0.0)
      l = l * correction + p.sum(-1)
      o = o * correction[:, None] + p @ v_block.astype(dtype)
      return (m_new, l, o), None

    init = (
      jnp.full((block_q,), -jnp.inf, dtype),  # running max m
      jnp.zeros((block_q,), dtype),  # normalizer l
      jnp.zeros((block_q, v.shape[-1]), dtype),  # weighted sum o
    )
    blocks = (jnp.arange(Sp // block_k), k_blocks, v_blocks, valid_blocks)
    (_, l, o), _ = jax.lax.scan(visit, init, blocks)
    return o / jnp.where(l > 0, l, 1.0)[:, None]  # a row with nothing to attend to stays 0

  out = jax.lax.map(query_block, jnp.arange(0, Tp, block_q))  # [nq, bq, Dv]
  return out.reshape(Tp, -1).astype(v.dtype)


@functools.partial(jax.jit, static_argnames=("is_causal", "block_q", "block_k"))
def blockwise_attention(
  query: jax.Array,
  key: jax.Array,
  value: jax.Array,
  *,
  key_lengths: jax.Array | None = None,
  mask: jax.Array | None = None,
  is_causal: bool = False,
  block_q: int = 128,
  block_k: int = 128,
) -> jax.Array:
  """Attention in blocks -> [B, T, N, Dv]. Shapes as `dot_product_attention`.

  key_lengths [B]: keys at positions >= length are padding (linear memory). mask: a full
  boolean mask broadcastable to [B, N, T, S] also works, but is itself T x S.
  """
  B, N, T, S = _check(query, key, value, mask, None)
  _validate.positive_int("block_q", block_q)
  _validate.positive_int("block_k", block_k)
  block_q, block_k = min(block_q, T), min(block_k, S)
  q = _pad_to(query, 1, block_q)
  k, v = _pad_to(key, 1, block_k), _pad_to(value, 1, block_k)
  Sp = k.shape[1]
  lengths = jnp.full((B,), S) if key_lengths is None else key_lengths
  key_valid = jnp.arange(Sp)[None, :] < lengths[:, None]  # [B, Sp]: real, unpadded keys
  one_head = functools.partial(_one_head, is_causal=is_causal, block_q=block_q, block_k=block_k)
  if mask is None:
    per_head = jax.vmap(lambda q, k, v, valid: one_head(q, k, v, valid, None), in_axes=(1, 1, 1, None), out_axes=1)
    out = jax.vmap(per_head)(q, k, v, key_valid)
  else:
    full = jnp.broadcast_to(mask, (B, N, T, S))
    full = _pad_to(_pad_to(full, 2, block_q), 3, block_k)
    per_head = jax.vmap(one_head, in_axes=(1, 1, 1, None, 0), out_axes=1)
    out = jax.vmap(per_head)(q, k, v, key_valid, full)
  return out[:, :T]


def attention(query, key, value, *, key_lengths=None, is_causal: bool = False, implementation: str = "auto"):
  """Attention with a key-padding mask and/or causal masking, by the fastest path the backend has:

  auto       cudnn on a GPU for bf16/fp16, pallas on a TPU, else dense for S <= 1024 and
             blockwise above (the CPU choice measured in benchmarks/attention.py)
  dense      the vmapped one-head core (`dot_product_attention`)
  blockwise  `blockwise_attention`, memory linear in T
  cudnn      jax.nn.dot_product_attention(implementation="cudnn") (NVIDIA GPUs)
  pallas     the Pallas TPU flash-attention kernel
  """
  _validate.choice("implementation", implementation, IMPLEMENTATIONS)
  if implementation == "auto":
    backend = jax.default_backend()
    if backend == "gpu" and query.dtype in (jnp.bfloat16, jnp.float16):
      implementation = "cudnn"
    elif backend == "tpu":
      implementation = "pallas"
    else:
      implementation = "dense" if key.shape[1] <= 1024 else "blockwise"
  S = key.shape[1]
  if implementation == "blockwise":
    return blockwise_attention(query, key, value, key_lengths=key_lengths, is_causal=is_causal)
  if implementation == "cudnn":
    lengths = None if key_lengths is None else key_lengths.astype(jnp.int32)
    return jax.nn.dot_product_attention(
      query, key, value, is_causal=is_causal, key_value_seq_lengths=lengths, implementation="cudnn"
    )
  mask = None
  if key_lengths is not None:
    mask = padding_mask(key_lengths, S)  # [B, 1, 1, S]
  if implementation == "pallas":
    from jax.experimental.pallas.ops.tpu import flash_attention as tpu_flash

    if mask is not None:
      raise ValueError("implementation='pallas' supports causal masking only here; pass key_lengths=None")
    q, k, v = (jnp.swapaxes(x, 1, 2) for x in (query, key, value))  # the kernel wants [B, N, T, D]
    scale = 1.0 / float(query.shape[-1]) ** 0.5
    return jnp.swapaxes(tpu_flash.flash_attention(q, k, v, causal=is_causal, sm_scale=scale), 1, 2)
  return dot_product_attention(query, key, value, mask=mask, is_causal=is_causal)
