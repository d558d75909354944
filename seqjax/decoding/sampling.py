"""Choosing the next token from logits: greedy, temperature, top-k and top-p (nucleus) sampling."""

import jax
import jax.numpy as jnp

from seqjax import _validate


def check_sampling(
  temperature, top_k: int | None, vocab_size: int, *, allow_greedy: bool, top_p: float | None = None
) -> None:
  """temperature must be a finite number > 0 (>= 0 where 0 means greedy); top_k in [1, vocab_size];
  top_p in (0, 1]."""
  if not allow_greedy and temperature == 0:
    raise ValueError(f"temperature must be > 0 for sampling (greedy is temperature 0), got {temperature}")
  _validate.finite_number("temperature", temperature, low=0.0, inclusive=allow_greedy)
  if top_k is not None:
    _validate.positive_int("top_k", top_k)
    if top_k > vocab_size:
      raise ValueError(f"top_k must be at most the vocabulary size {vocab_size}, got {top_k}")
  if top_p is not None:
    _validate.finite_number("top_p", top_p, low=0.0, inclusive=False)
    if top_p > 1:
      raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def sample_logits(
  logits: jax.Array, key: jax.Array | None, *, temperature: float, top_k: int | None, top_p: float | None = None
) -> jax.Array:
  """[B, V] -> [B] token ids: argmax at temperature 0, else a draw from softmax(logits / temperature)
  restricted to the top_k most likely tokens and to the nucleus: the fewest most likely tokens whose
  probability (after temperature and top_k) reaches top_p (Holtzman et al. 2020)."""
  if temperature == 0.0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_k is not None:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # [B, 1]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p is not None:
    ranked = jnp.sort(logits, axis=-1)[:, ::-1]  # [B, V], most likely first
    before = jnp.cumsum(jax.nn.softmax(ranked, axis=-1), axis=-1) - jax.nn.softmax(ranked, axis=-1)
    count = jnp.sum(before < top_p, axis=-1, keepdims=True)  # [B, 1]: tokens kept, >= 1
    cutoff = jnp.take_along_axis(ranked, count - 1, axis=-1)  # the least likely kept logit
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
