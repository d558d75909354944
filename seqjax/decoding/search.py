"""Greedy decoding, sampling (temperature, top-k, top-p) and beam search (GNMT length penalty)
for every model of the protocol in `seqjax.decoding.protocol`: each a jitted `lax.scan` over a
fixed number of new tokens, batched.

The decoder first reads `prompt` [B, P]: the user's prompt for a language model (left-padded,
with `prompt_mask` False on the padding, when rows differ in length), BOS alone ([B, 1]) for a
sequence-to-sequence model, whose source comes as `context` (src=..., src_mask=...). Outputs are
the new tokens [B, L] (or [B, K, L] for beams, best first) and scores: the sum of the tokens'
log-probabilities, up to and including EOS when `eos_id` is given (beams: divided by the GNMT
length penalty ((5 + length) / 6) ** alpha). After a row's EOS come `pad_id`s. PAD and the ids in
`suppress` (e.g. BOS) are never generated.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax import _validate
from seqjax.decoding.sampling import check_sampling, sample_logits


def _log_probs(logits: jax.Array, forbidden: tuple[int, ...]) -> jax.Array:
  logits = logits.astype(jnp.float32)
  if forbidden:
    logits = logits.at[:, jnp.asarray(forbidden)].set(-jnp.inf)
  return jax.nn.log_softmax(logits, axis=-1)


def _token_id(name: str, value, vocab: int) -> None:
  if not isinstance(value, int | np.integer) or isinstance(value, bool) or not 0 <= value < vocab:
    raise ValueError(f"{name} must be a token id in [0, {vocab}) (the vocabulary decoded into), got {value!r}")


def _check_context(model, context: dict) -> None:
  """The context must be the keyword-only arguments the model's `check_decode_inputs` takes: every
  required one (an encoder-decoder's src), no other (a language model takes none) unless it takes
  **context."""
  signature = inspect.signature(model.check_decode_inputs)
  parameters = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
  names = [p.name for p in parameters]
  context_names = f"with the context {', '.join(names)}" if names else "from the prompt alone (no context)"
  takes = f"{type(model).__name__} decodes {context_names}"
  given = ", ".join(context) or "none"
  for p in parameters:
    if p.default is p.empty and p.name not in context:
      raise ValueError(f"{p.name} is required: {takes}; given {given}")
  unknown = [name for name in context if name not in names]
  if unknown and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
    raise ValueError(f"{', '.join(unknown)} is no context of this model: {takes}; given {given}")


def _check_key(key) -> None:
  """key: one JAX random key, jax.random.key(seed) (or a legacy uint32[2] jax.random.PRNGKey(seed))."""
  shape, dtype = getattr(key, "shape", None), getattr(key, "dtype", None)
  typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and shape == ()
  if not typed and not (dtype == jnp.uint32 and shape == (2,)):
    got = f"{dtype}{list(shape)}" if dtype is not None else repr(key)
    raise ValueError(f"key must be one random key, jax.random.key(seed), to sample with; got {got}")


def _check(model, prompt, prompt_mask, context, max_new_tokens, eos_id, pad_id, suppress) -> tuple[int, ...]:
  """Everything checked here, outside jit, where the ids and masks are known -> the forbidden ids."""
  vocab = model.decode_vocab
  _validate.token_ids("prompt", prompt, vocab)
  if prompt_mask is not None:
    _validate.bool_mask("prompt_mask", prompt_mask, prompt.shape, axes="[B, P]")
    _validate.prefix_mask("prompt_mask", prompt_mask, suffix=True)
  _check_context(model, context)
  model.check_decode_inputs(prompt.shape[0], **context)
  _validate.positive_int("max_new_tokens", max_new_tokens)
  for index, token in enumerate(suppress):
    _token_id(f"suppress[{index}]", token, vocab)
  if eos_id is None:
    if pad_id is not None:
      raise ValueError(f"pad_id fills the rows after EOS and needs an eos_id; got pad_id={pad_id} and no eos_id")
    return tuple(suppress)
  _token_id("eos_id", eos_id, vocab)
  if pad_id is None:
    raise ValueError("eos_id needs a pad_id to fill each row after its EOS")
  _token_id("pad_id", pad_id, vocab)
  if eos_id == pad_id or eos_id in suppress:
    raise ValueError(f"eos_id {eos_id} must differ from pad_id {pad_id} and from the suppressed ids {suppress}")
  return (pad_id, *suppress)


def _read_prompt(model, prompt, prompt_mask, context, max_new_tokens):
  """-> (state after all but the prompt's last token, that last token [B]: the first one stepped)."""
  B, P = prompt.shape
  state = model.init_state(B, P - 1 + max_new_tokens, **context)
  if P > 1:
    mask = jnp.ones((B, P - 1), jnp.bool_) if prompt_mask is None else prompt_mask[:, :-1]
    state = model.prefill(state, prompt[:, :-1], mask)
  return state, prompt[:, -1]


_IDS = ("max_new_tokens", "eos_id", "pad_id", "forbidden")


@functools.partial(jax.jit, static_argnames=("graphdef", *_IDS, "temperature", "top_k", "top_p"))
def _sequential(graphdef, params, prompt, prompt_mask, context, key, *, temperature, top_k, top_p, **ids):
  model = nnx.merge(graphdef, params)
  state, first = _read_prompt(model, prompt, prompt_mask, context, ids["max_new_tokens"])
  eos_id, pad_id = ids["eos_id"], ids["pad_id"]

  def body(carry, step_key):
    state, previous, done, score = carry
    logits, state = model.step(state, previous)
    log_p = _log_probs(logits, ids["forbidden"])
    token = sample_logits(log_p, step_key, temperature=temperature, top_k=top_k, top_p=top_p)
    if eos_id is not None:
      token = jnp.where(done, pad_id, token)
    score = score + jnp.where(done, 0.0, jnp.take_along_axis(log_p, token[:, None], axis=-1)[:, 0])
    done = done if eos_id is None else done | (token == eos_id)
    return (state, token, done, score), token

  B = prompt.shape[0]
  start = (state, first, jnp.zeros((B,), jnp.bool_), jnp.zeros((B,)))
  (_, _, _, score), tokens = jax.lax.scan(body, start, jax.random.split(key, ids["max_new_tokens"]))
  return tokens.T, score  # [B, L], [B]


def _checked_run(decoder, model, prompt, prompt_mask, context, *args, suppress, **options):
  """Checks every input outside jit (`_check`), then runs the jitted decoder on the model's
  (graphdef, params) with the forbidden ids; options: the ids (_IDS) and the decoder's own."""
  ids = {name: options[name] for name in ("max_new_tokens", "eos_id", "pad_id")}
  forbidden = _check(model, prompt, prompt_mask, context, suppress=tuple(suppress), **ids)
  graphdef, params = nnx.split(model)
  return decoder(graphdef, params, prompt, prompt_mask, context, *args, forbidden=forbidden, **options)


def greedy(
  model,
  prompt,
  prompt_mask=None,
  *,
  max_new_tokens: int,
  eos_id: int | None = None,
  pad_id: int | None = None,
  suppress: tuple[int, ...] = (),
  **context,
):
  """Most likely token at each step -> (tokens [B, L], scores [B])."""
  ids = {"max_new_tokens": max_new_tokens, "eos_id": eos_id, "pad_id": pad_id}
  sampling = {"temperature": 0.0, "top_k": None, "top_p": None}
  key = jax.random.key(0)
  return _checked_run(_sequential, model, prompt, prompt_mask, context, key, suppress=suppress, **sampling, **ids)


def sample(
  model,
  prompt,
  prompt_mask=None,
  *,
  key,
  max_new_tokens: int,
  temperature: float = 1.0,
  top_k: int | None = None,
  top_p: float | None = None,
  eos_id: int | None = None,
  pad_id: int | None = None,
  suppress: tuple[int, ...] = (),
  **context,
):
  """Draws from softmax(logits / temperature), from the top_k tokens and the top_p nucleus if given
  -> (tokens, scores); scores are log-probabilities under the model itself (temperature 1)."""
  check_sampling(temperature, top_k, model.decode_vocab, allow_greedy=False, top_p=top_p)
  _check_key(key)
  ids = {"max_new_tokens": max_new_tokens, "eos_id": eos_id, "pad_id": pad_id}
  sampling = {"temperature": float(temperature), "top_k": top_k, "top_p": None if top_p is None else float(top_p)}
  return _checked_run(_sequential, model, prompt, prompt_mask, context, key, suppress=suppress, **sampling, **ids)


def _repeat_rows(tree, times: int):
  """State leaves [B, ...] -> [B * times, ...], each row `times` in a row; scalars stay."""
  return jax.tree.map(lambda x: jnp.repeat(x, times, axis=0) if x.ndim else x, tree)


def _gather_rows(tree, rows: jax.Array):
  """Reorder the state's [B*K, ...] leaves by rows [B*K]; scalars (e.g. a cache length) stay."""
  return jax.tree.map(lambda x: x[rows] if x.ndim else x, tree)


@functools.partial(jax.jit, static_argnames=("graphdef", "beam_size", *_IDS, "length_penalty"))
def _beam(graphdef, params, prompt, prompt_mask, context, *, beam_size, length_penalty, **ids):
  model = nnx.merge(graphdef, params)
  state, first = _read_prompt(model, prompt, prompt_mask, context, ids["max_new_tokens"])
  eos_id, pad_id = ids["eos_id"], ids["pad_id"]
  B, K = prompt.shape[0], beam_size
  state, first = _repeat_rows(state, K), jnp.repeat(first, K)  # [B*K, ...]
  offsets = (jnp.arange(B) * K)[:, None]  # [B, 1]: first row of each example's beams

  def body(carry, t):
    state, previous, scores, done, lengths, tokens = carry
    logits, state = model.step(state, previous)
    V = logits.shape[-1]
    log_p = _log_probs(logits, ids["forbidden"]).reshape(B, K, V)
    if eos_id is not None:
      finished = jnp.full((V,), -jnp.inf).at[pad_id].set(0.0)  # a finished beam only extends with PAD, free
      log_p = jnp.where(done[..., None], finished, log_p)
    top_scores, flat = jax.lax.top_k((scores[..., None] + log_p).reshape(B, K * V), K)  # [B, K]
    beam, token = flat // V, (flat % V).astype(jnp.int32)
    lengths = jnp.take_along_axis(lengths, beam, 1) + (~jnp.take_along_axis(done, beam, 1)).astype(jnp.int32)
    done = jnp.take_along_axis(done, beam, 1)
    done = done if eos_id is None else done | (token == eos_id)
    tokens = jnp.take_along_axis(tokens, beam[..., None], 1).at[:, :, t].set(token)  # [B, K, L]
    state = _gather_rows(state, (offsets + beam).reshape(-1))
    return (state, token.reshape(-1), top_scores, done, lengths, tokens), None

  L = ids["max_new_tokens"]
  scores = jnp.full((B, K), -jnp.inf).at[:, 0].set(0.0)  # one live beam at first: no duplicates
  filler = 0 if pad_id is None else pad_id
  start = (
    state,
    first,
    scores,
    jnp.zeros((B, K), jnp.bool_),
    jnp.zeros((B, K), jnp.int32),
    jnp.full((B, K, L), filler, jnp.int32),
  )
  (_, _, scores, _, lengths, tokens), _ = jax.lax.scan(body, start, jnp.arange(L))
  penalty = ((5.0 + lengths.astype(jnp.float32)) / 6.0) ** length_penalty
  normalized = jnp.where(jnp.isfinite(scores), scores / penalty, -jnp.inf)
  order = jnp.argsort(-normalized, axis=1)
  return jnp.take_along_axis(tokens, order[..., None], 1), jnp.take_along_axis(normalized, order, 1)


def beam_search(
  model,
  prompt,
  prompt_mask=None,
  *,
  beam_size: int,
  max_new_tokens: int,
  length_penalty: float = 0.0,
  eos_id: int | None = None,
  pad_id: int | None = None,
  suppress: tuple[int, ...] = (),
  **context,
):
  """Keeps the beam_size best partial hypotheses by total log-probability; a hypothesis that emits
  EOS stays in the beam with its score frozen. Returns (tokens [B, K, L], scores [B, K]) ranked by
  score / ((5 + length) / 6) ** length_penalty (Wu et al. 2016), best first. Beam size 1 is greedy.
  Each state row is repeated K times: memory grows K-fold, and the state's rows are reordered at
  every step."""
  _validate.positive_int("beam_size", beam_size)
  _validate.finite_number("length_penalty", length_penalty, low=0.0)
  ids = {"max_new_tokens": max_new_tokens, "eos_id": eos_id, "pad_id": pad_id}
  penalty = float(length_penalty)
  return _checked_run(
    _beam, model, prompt, prompt_mask, context, suppress=suppress, beam_size=beam_size, length_penalty=penalty, **ids
  )
