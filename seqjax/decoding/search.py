"""One decoding API for every sequence-to-sequence model here (`Seq2Seq`, `EncoderDecoder`):
greedy, sampling (temperature, top-k, top-p) and beam search (length penalty, EOS handling), batched
and jitted, each a `lax.scan` over a fixed maximum length.

A model provides `target_vocab` (the size of the vocabulary it decodes into), `check_source(src,
src_mask)` (raises on bad input; run before jit, where the ids are known), `start(src, src_mask,
max_length) -> (memory, state)` and
`step(state, tokens [B], memory) -> (logits [B, V], state)`. Outputs are [B, L] token ids (or
[B, K, L] for beams, best first) with `pad_id` after each hypothesis's EOS, and scores: the sum
of log-probabilities of the tokens up to and including EOS (beams: divided by the GNMT length
penalty ((5 + length) / 6) ** alpha). The PAD and BOS ids are never generated.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax import _validate
from seqjax.decoding.sampling import check_sampling, sample_logits


def _log_probs(logits: jax.Array, forbidden: tuple[int, ...]) -> jax.Array:
  logits = logits.astype(jnp.float32).at[:, jnp.asarray(forbidden)].set(-jnp.inf)
  return jax.nn.log_softmax(logits, axis=-1)


def _check(model, src, src_mask, max_length: int, bos_id: int, eos_id: int, pad_id: int):
  """Everything checked here, outside jit, where src's ids and mask are known."""
  model.check_source(src, src_mask)
  vocab = model.target_vocab
  _validate.positive_int("max_length", max_length)
  for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or not 0 <= value < vocab:
      raise ValueError(f"{name} must be a token id in [0, {vocab}) (the target vocabulary), got {value!r}")
  if len({bos_id, eos_id, pad_id}) != 3:
    raise ValueError(f"bos_id, eos_id and pad_id must differ, got {bos_id}, {eos_id}, {pad_id}")


@functools.partial(
  jax.jit, static_argnames=("graphdef", "max_length", "bos_id", "eos_id", "pad_id", "temperature", "top_k", "top_p")
)
def _sequential(graphdef, params, src, src_mask, key, *, max_length, bos_id, eos_id, pad_id, temperature, top_k, top_p):
  model = nnx.merge(graphdef, params)
  memory, state = model.start(src, src_mask, max_length)
  B = src.shape[0]

  def body(carry, step_key):
    state, previous, done, score = carry
    logits, state = model.step(state, previous, memory)
    log_p = _log_probs(logits, (pad_id, bos_id))
    token = sample_logits(log_p, step_key, temperature=temperature, top_k=top_k, top_p=top_p)
    token = jnp.where(done, pad_id, token)
    score = score + jnp.where(done, 0.0, jnp.take_along_axis(log_p, token[:, None], axis=-1)[:, 0])
    return (state, token, done | (token == eos_id), score), token

  start = (state, jnp.full((B,), bos_id, jnp.int32), jnp.zeros((B,), jnp.bool_), jnp.zeros((B,)))
  (_, _, _, score), tokens = jax.lax.scan(body, start, jax.random.split(key, max_length))
  return tokens.T, score  # [B, L], [B]


def _split_and_check(model, src, src_mask, max_length, bos_id, eos_id, pad_id):
  _check(model, src, src_mask, max_length, bos_id, eos_id, pad_id)
  return nnx.split(model)


def _decode_sequentially(model, src, src_mask, key, *, temperature, top_k, top_p, **ids):
  graphdef, params = _split_and_check(model, src, src_mask, **ids)
  return _sequential(graphdef, params, src, src_mask, key, temperature=temperature, top_k=top_k, top_p=top_p, **ids)


def greedy(model, src, src_mask=None, *, max_length: int, bos_id: int, eos_id: int, pad_id: int = 0):
  """Most likely token at each step -> (tokens [B, L], scores [B])."""
  ids = {"max_length": max_length, "bos_id": bos_id, "eos_id": eos_id, "pad_id": pad_id}
  return _decode_sequentially(model, src, src_mask, jax.random.key(0), temperature=0.0, top_k=None, top_p=None, **ids)


def sample(
  model,
  src,
  src_mask=None,
  *,
  key,
  max_length: int,
  bos_id: int,
  eos_id: int,
  pad_id: int = 0,
  temperature: float = 1.0,
  top_k: int | None = None,
  top_p: float | None = None,
):
  """Draws from softmax(logits / temperature), from the top_k tokens and the top_p nucleus if given
  -> (tokens, scores); scores are log-probabilities under the model itself (temperature 1)."""
  check_sampling(temperature, top_k, model.target_vocab, allow_greedy=False, top_p=top_p)
  ids = {"max_length": max_length, "bos_id": bos_id, "eos_id": eos_id, "pad_id": pad_id}
  top_p = None if top_p is None else float(top_p)
  return _decode_sequentially(
    model, src, src_mask, key, temperature=float(temperature), top_k=top_k, top_p=top_p, **ids
  )


def _repeat_batch(tree, batch: int, times: int):
  """Leaves with a leading batch axis [B, ...] -> [B * times, ...] (each row `times` in a row)."""
  return jax.tree.map(lambda x: jnp.repeat(x, times, axis=0) if x.ndim and x.shape[0] == batch else x, tree)


def _gather_rows(tree, rows: jax.Array):
  """Reorder the [B*K, ...] leaves by rows [B*K]; scalars (e.g. a cache length) stay."""
  return jax.tree.map(lambda x: x[rows] if x.ndim and x.shape[0] == rows.shape[0] else x, tree)


@functools.partial(
  jax.jit, static_argnames=("graphdef", "beam_size", "max_length", "bos_id", "eos_id", "pad_id", "length_penalty")
)
def _beam(graphdef, params, src, src_mask, *, beam_size, max_length, bos_id, eos_id, pad_id, length_penalty):
  model = nnx.merge(graphdef, params)
  memory, state = model.start(src, src_mask, max_length)
  B, K = src.shape[0], beam_size
  memory, state = _repeat_batch(memory, B, K), _repeat_batch(state, B, K)
  offsets = (jnp.arange(B) * K)[:, None]  # [B, 1]: first row of each example's beams

  def body(carry, t):
    state, previous, scores, done, lengths, tokens = carry
    logits, state = model.step(state, previous, memory)
    V = logits.shape[-1]
    log_p = _log_probs(logits, (pad_id, bos_id)).reshape(B, K, V)
    finished = jnp.full((V,), -jnp.inf).at[pad_id].set(0.0)  # a finished beam only extends with PAD, free
    log_p = jnp.where(done[..., None], finished, log_p)
    top_scores, flat = jax.lax.top_k((scores[..., None] + log_p).reshape(B, K * V), K)  # [B, K]
    beam, token = flat // V, (flat % V).astype(jnp.int32)
    lengths = jnp.take_along_axis(lengths, beam, 1) + (~jnp.take_along_axis(done, beam, 1)).astype(jnp.int32)
    done = jnp.take_along_axis(done, beam, 1) | (token == eos_id)
    tokens = jnp.take_along_axis(tokens, beam[..., None], 1).at[:, :, t].set(token)  # [B, K, L]
    state = _gather_rows(state, (offsets + beam).reshape(-1))
    return (state, token.reshape(-1), top_scores, done, lengths, tokens), None

  scores = jnp.full((B, K), -jnp.inf).at[:, 0].set(0.0)  # one live beam at first: no duplicates
  start = (
    state,
    jnp.full((B * K,), bos_id, jnp.int32),
    scores,
    jnp.zeros((B, K), jnp.bool_),
    jnp.zeros((B, K), jnp.int32),
    jnp.full((B, K, max_length), pad_id, jnp.int32),
  )
  (_, _, scores, _, lengths, tokens), _ = jax.lax.scan(body, start, jnp.arange(max_length))
  penalty = ((5.0 + lengths.astype(jnp.float32)) / 6.0) ** length_penalty
  normalized = jnp.where(jnp.isfinite(scores), scores / penalty, -jnp.inf)
  order = jnp.argsort(-normalized, axis=1)
  return jnp.take_along_axis(tokens, order[..., None], 1), jnp.take_along_axis(normalized, order, 1)


def beam_search(
  model,
  src,
  src_mask=None,
  *,
  beam_size: int,
  max_length: int,
  bos_id: int,
  eos_id: int,
  pad_id: int = 0,
  length_penalty: float = 0.0,
):
  """Keeps the beam_size best partial hypotheses by total log-probability; a hypothesis that emits
  EOS stays in the beam with its score frozen. Returns (tokens [B, K, L], scores [B, K]) ranked by
  score / ((5 + length) / 6) ** length_penalty (Wu et al. 2016), best first. Beam size 1 is greedy."""
  _validate.positive_int("beam_size", beam_size)
  if length_penalty < 0:
    raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
  graphdef, params = _split_and_check(model, src, src_mask, max_length, bos_id, eos_id, pad_id)
  return _beam(
    graphdef,
    params,
    src,
    src_mask,
    beam_size=beam_size,
    max_length=max_length,
    bos_id=bos_id,
    eos_id=eos_id,
    pad_id=pad_id,
    length_penalty=float(length_penalty),
  )
