"""`fused_attention`: plain, key-padded and/or causal attention by the fastest path the backend has.

    dense      the vmapped one-head core (`core.dot_product_attention`)
    blockwise  `blockwise.blockwise_attention`: online softmax, memory linear in T
    cudnn      jax.nn.dot_product_attention(implementation="cudnn") (NVIDIA GPUs, bf16/fp16)
    pallas     the Pallas TPU flash-attention kernel (jax.experimental.pallas.ops.tpu)
    auto       `auto_implementation`'s pick for the backend, dtype and key length

Shapes as `core.dot_product_attention`: query [B, T, N, D], key [B, S, N, D], value [B, S, N, Dv];
key_mask [B, S] bool: False marks key padding (anywhere in a row); segment_ids [B, T] int >= 0
(self-attention): packed sequences, a query attends to its own segment only. Every path takes
both, so padded and packed batches keep the fast path.
"""

import jax
import jax.numpy as jnp

from seqjax import _validate
from seqjax.attention.blockwise import attend_blocks, block_segment_ids, pad_to
from seqjax.attention.core import check_inputs, check_key_mask, check_segment_ids, dot_product_attention, segment_mask

IMPLEMENTATIONS = ("auto", "dense", "blockwise", "cudnn", "pallas")
PALLAS_BLOCK = 128  # the TPU kernel's default block sizes: T and S are padded to multiples of it


def auto_implementation(backend: str, dtype, key_length: int) -> str:
  """What implementation="auto" runs: cudnn on a GPU for bf16/fp16, pallas on a TPU, blockwise on a
  CPU (faster than dense at every T measured in benchmarks/attention.py, and linear in memory); on
  a GPU in float32 (unmeasured) dense while the S columns of scores stay small (S <= 1024), then
  blockwise."""
  if backend == "gpu" and dtype in (jnp.bfloat16, jnp.float16):
    return "cudnn"
  if backend == "tpu":
    return "pallas"
  if backend == "gpu":
    return "dense" if key_length <= 1024 else "blockwise"
  return "blockwise"


def resolve_implementation(implementation: str, *, attention_dropout: bool, backend: str | None = None) -> str:
  """What `MultiHeadAttention(implementation=...)` runs, decided when it is built (`backend`:
  None, JAX's default). A named path is itself. "auto" is "dense" for a layer that drops
  attention weights (attention_dropout: no fused path drops them), else the backend's fused path:
  "blockwise" on a CPU, "pallas" on a TPU, and on a GPU "auto" still: `fused_attention` picks
  cuDNN, dense or blockwise by the dtype and key length of what it is called with
  (`auto_implementation`), not by the call's options."""
  _validate.choice("implementation", implementation, IMPLEMENTATIONS)
  if implementation != "auto":
    return implementation
  if attention_dropout:
    return "dense"
  backend = jax.default_backend() if backend is None else backend
  return "auto" if backend == "gpu" else auto_implementation(backend, None, 0)  # off a GPU: whatever dtype and S


def pallas_flash_attention(query, key, value, key_mask, segment_ids, is_causal: bool) -> jax.Array:
  """The Pallas TPU flash-attention kernel in seqjax's [B, T, N, D] layout. T and S are padded to
  its blocks; padded and key-padding positions are masked by the kernel's segment ids
  (`blockwise.block_segment_ids`: padding in segment -1), so any T, S, key_mask and segment_ids work."""
  from jax.experimental.pallas.ops.tpu import flash_attention as tpu_flash

  B, T, _, D = query.shape
  S = key.shape[1]
  q = pad_to(query, 1, PALLAS_BLOCK)  # [B, Tp, N, D]
  k, v = pad_to(key, 1, PALLAS_BLOCK), pad_to(value, 1, PALLAS_BLOCK)  # [B, Sp, N, D], [B, Sp, N, Dv]
  ids = None
  if key_mask is not None or segment_ids is not None or k.shape[1] != S:
    ids = block_segment_ids(key_mask, segment_ids, B, S, q.shape[1], k.shape[1])  # [B, Tp], [B, Sp]
    ids = tpu_flash.SegmentIds(*ids)
  q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))  # the kernel's layout [B, N, T, D]
  out = tpu_flash.flash_attention(q, k, v, segment_ids=ids, causal=is_causal, sm_scale=D**-0.5)
  return jnp.swapaxes(out, 1, 2)[:, :T]  # [B, T, N, Dv]


def fused_attention(
  query, key, value, *, key_mask=None, segment_ids=None, is_causal: bool = False, implementation: str = "auto"
):
  """Attention -> [B, T, N, Dv] by `implementation` (see the module docstring); all paths agree
  with the dense core in values and gradients (tested; cudnn only on a GPU)."""
  _validate.choice("implementation", implementation, IMPLEMENTATIONS)
  B, _, T, S = check_inputs(query, key, value, None, None)  # [B, N, T, S]
  check_key_mask(key_mask, B, S)
  check_segment_ids(segment_ids, B, T, S)
  return attend_fused(query, key, value, key_mask, segment_ids, is_causal, implementation)


def attend_fused(query, key, value, key_mask, segment_ids, is_causal: bool, implementation: str) -> jax.Array:
  """`fused_attention` of inputs its caller has checked (it, or `MultiHeadAttention` holding a
  checked `Visibility`)."""
  backend = jax.default_backend()
  if implementation == "auto":
    implementation = auto_implementation(backend, query.dtype, key.shape[1])
  if implementation == "cudnn" and backend != "gpu":
    raise ValueError(f"implementation='cudnn' needs an NVIDIA GPU, but JAX runs on {backend!r}: use 'auto' or 'dense'")
  if implementation in ("cudnn", "pallas") and key_mask is not None:  # padding is read as zeros, as on the others
    real = key_mask[:, :, None, None]  # [B, S, 1, 1]
    key, value = jnp.where(real, key, jnp.zeros((), key.dtype)), jnp.where(real, value, jnp.zeros((), value.dtype))
  if implementation == "blockwise":
    return attend_blocks(query, key, value, key_mask, segment_ids, None, is_causal=is_causal)
  if implementation == "pallas":
    return pallas_flash_attention(query, key, value, key_mask, segment_ids, is_causal)
  mask = None if key_mask is None else key_mask[:, None, None, :]  # [B, 1, 1, S]
  if segment_ids is not None:  # [B, 1, T, T]: T x T, the memory the other paths avoid
    mask = segment_mask(segment_ids) if mask is None else mask & segment_mask(segment_ids)
  if implementation == "cudnn":  # the mask enters cuDNN's kernel as a bias of 0 / a large negative number
    return jax.nn.dot_product_attention(query, key, value, mask=mask, is_causal=is_causal, implementation="cudnn")
  return dot_product_attention(query, key, value, mask=mask, is_causal=is_causal)
