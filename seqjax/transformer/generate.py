"""Autoregressive generation with a key/value cache: prefill the prompt, then one token a step.

Works for any model with `init_cache(batch, max_length)` and
`decode_step(tokens, caches, **context) -> (logits, caches)`: `GPT` (no context) and
`EncoderDecoder` (context: memory=model.encode(src), src_mask). The whole loop is one
jitted function of the model's state (`nnx.split`); its length is fixed, run by `lax.scan`.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.decoding.sampling import check_sampling, sample_logits


@functools.partial(
  jax.jit, static_argnames=("graphdef", "max_new_tokens", "cache_length", "temperature", "top_k", "top_p")
)
def _generate(graphdef, state, prompt, context, key, *, max_new_tokens, cache_length, temperature, top_k, top_p):
  model = nnx.merge(graphdef, state)
  caches = model.init_cache(prompt.shape[0], cache_length)
  logits, caches = model.decode_step(prompt, caches, **context)  # prefill: [B, P, V]
  keys = jax.random.split(key, max_new_tokens)
  first = sample_logits(logits[:, -1], keys[0], temperature=temperature, top_k=top_k, top_p=top_p)

  def step(carry, step_key):
    token, caches = carry
    logits, caches = model.decode_step(token[:, None], caches, **context)
    return (sample_logits(logits[:, -1], step_key, temperature=temperature, top_k=top_k, top_p=top_p), caches), token

  (last, _), tokens = jax.lax.scan(step, (first, caches), keys[1:])
  return jnp.concatenate([tokens.T, last[:, None]], axis=1)  # [B, max_new_tokens]


def generate(
  model,
  prompt: jax.Array,
  max_new_tokens: int,
  *,
  temperature: float = 0.0,
  top_k: int | None = None,
  top_p: float | None = None,
  key: jax.Array | None = None,
  **context,
) -> jax.Array:
  """Continue prompt [B, P] (int) by max_new_tokens tokens -> [B, max_new_tokens].

  temperature 0 is greedy; temperature > 0 samples (needs `key`), from the top_k tokens and the
  top_p nucleus if given.
  """
  _validate.positive_int("max_new_tokens", max_new_tokens)
  vocab_size = model.config.vocab_size
  _validate.token_ids("prompt", prompt, vocab_size)  # here, outside jit, where the ids are known
  check_sampling(temperature, top_k, vocab_size, allow_greedy=True, top_p=top_p)
  if temperature > 0 and key is None:
    raise ValueError("sampling (temperature > 0) needs a key")
  cache_length = prompt.shape[1] + max_new_tokens
  if cache_length > model.config.max_length:
    raise ValueError(
      f"prompt length {prompt.shape[1]} + max_new_tokens {max_new_tokens} = {cache_length} exceeds the "
      f"model's max_length {model.config.max_length}"
    )
  graphdef, state = nnx.split(model)
  key = jax.random.key(0) if key is None else key  # unused when greedy
  return _generate(
    graphdef,
    state,
    prompt,
    context,
    key,
    max_new_tokens=max_new_tokens,
    cache_length=cache_length,
    temperature=float(temperature),
    top_k=top_k,
    top_p=None if top_p is None else float(top_p),
  )
