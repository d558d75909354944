"""One decoding protocol for every model kind: GPT, EncoderDecoder, Seq2Seq, RNN language model.

References: the argmax of a full forward pass (no cache), exhaustive enumeration for beam search,
each row decoded alone for left-padded batches, NumPy for the nucleus."""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax import decoding
from seqjax.attention import MultiHeadAttention
from seqjax.recurrent import RNNLanguageModel
from seqjax.seq2seq import Seq2Seq, Seq2SeqConfig
from seqjax.transformer import GPT, EncoderDecoder, EncoderDecoderConfig, GPTConfig
from tests.helpers import forward, randomize

V = 23
TINY = dict(dim=16, num_heads=2, ff_dim=32, dropout_rate=0.0)


def gpt(position="learned", vocab_size=V):
  config = GPTConfig(vocab_size=vocab_size, max_length=16, num_layers=2, position=position, **TINY)
  return GPT(config, rngs=nnx.Rngs(0))


def encdec(position="relative", norm="pre"):
  config = EncoderDecoderConfig(
    vocab_size=V, max_length=16, num_encoder_layers=1, num_decoder_layers=2, position=position, norm=norm, **TINY
  )
  return EncoderDecoder(config, rngs=nnx.Rngs(0))


def rnn_lm(kind="lstm"):
  return randomize(RNNLanguageModel(V, 8, 16, kind=kind, num_layers=2, rngs=nnx.Rngs(0)), 0, scale=0.5)


def seq2seq():
  config = Seq2SeqConfig(V, V, embed_dim=8, hidden_features=16, attention="luong")
  return randomize(Seq2Seq(config, rngs=nnx.Rngs(0)), 0, scale=0.3)


def tokens(seed, *shape):
  return jnp.asarray(np.random.default_rng(seed).integers(0, V, shape), jnp.int32)


SRC = tokens(9, 2, 7)
SRC_MASK = jnp.arange(7)[None, :] < jnp.array([[7], [4]])
BOS = jnp.ones((2, 1), jnp.int32)
# every model kind with its decoder prompt, its context, and its full (uncached) forward pass
KINDS = {
  "gpt": lambda: (gpt("rope"), tokens(5, 2, 3), {}, lambda m, t: m(t)),
  "rnn_lm": lambda: (rnn_lm(), tokens(5, 2, 3), {}, lambda m, t: m(t)),
  "encoder_decoder": lambda: (
    encdec(),
    BOS,
    {"src": SRC, "src_mask": SRC_MASK},
    lambda m, t: m(SRC, t, src_mask=SRC_MASK),
  ),
  "seq2seq": lambda: (seq2seq(), BOS, {"src": SRC, "src_mask": SRC_MASK}, lambda m, t: m(SRC, t, SRC_MASK)[0]),
  "uncached": lambda: (decoding.Uncached(gpt("rope"), V), tokens(5, 2, 3), {}, lambda m, t: m.lm(t)),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_greedy_equals_the_argmax_of_the_full_forward_pass(kind):
  model, prompt, context, full_pass = KINDS[kind]()
  got, scores = decoding.greedy(model, prompt, max_new_tokens=5, **context)
  # one uncached, teacher-forced pass over prompt + output: each new token is the argmax after its prefix
  logits = nnx.jit(full_pass)(model, jnp.concatenate([prompt, got], 1))  # one compile, not one per op
  log_p = jax.nn.log_softmax(logits[:, prompt.shape[1] - 1 : -1], -1)
  np.testing.assert_array_equal(got, jnp.argmax(log_p, -1))
  np.testing.assert_allclose(scores, jnp.take_along_axis(log_p, got[..., None], -1)[..., 0].sum(-1), rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_beam_of_one_is_greedy_for_every_model_kind(kind):
  model, prompt, context, _ = KINDS[kind]()
  tokens_, scores = decoding.greedy(model, prompt, max_new_tokens=5, **context)
  beam, beam_scores = decoding.beam_search(model, prompt, beam_size=1, max_new_tokens=5, **context)
  np.testing.assert_array_equal(beam[:, 0], tokens_)
  np.testing.assert_allclose(beam_scores[:, 0], scores, rtol=1e-5)


@pytest.mark.parametrize(
  "make",
  [lambda: gpt("learned"), lambda: gpt("rope"), rnn_lm, lambda: rnn_lm("gru"), lambda: decoding.Uncached(rnn_lm(), V)],
)
def test_left_padded_prompts_decode_as_each_row_alone(make):
  model = make()
  prompts = [tokens(1, 1, 4), tokens(2, 1, 2), tokens(3, 1, 1)]  # three lengths
  padded = jnp.concatenate([jnp.pad(p, ((0, 0), (4 - p.shape[1], 0)), constant_values=7) for p in prompts])
  mask = jnp.arange(4)[None, :] >= jnp.array([[0], [2], [3]])  # [3, 4]: the real tokens last
  batch, batch_scores = decoding.greedy(model, padded, mask, max_new_tokens=5)
  for row, prompt in enumerate(prompts):
    alone, alone_score = decoding.greedy(model, prompt, max_new_tokens=5)
    np.testing.assert_array_equal(batch[row], alone[0])
    np.testing.assert_allclose(batch_scores[row], alone_score[0], rtol=1e-5)


def test_uncached_decoding_samples_what_the_models_own_cache_samples():
  model, prompt = rnn_lm("gru"), tokens(4, 2, 3)
  cached = decoding.sample(model, prompt, key=jax.random.key(3), max_new_tokens=9, top_k=5)
  uncached = decoding.sample(decoding.Uncached(model, V), prompt, key=jax.random.key(3), max_new_tokens=9, top_k=5)
  np.testing.assert_array_equal(uncached[0], cached[0])
  np.testing.assert_allclose(uncached[1], cached[1], rtol=1e-5)


def test_gpt_beam_search_finds_the_most_likely_continuation_by_enumeration():
  vocab, steps = 5, 3
  model, prompt = gpt("learned", vocab_size=vocab), jnp.array([[1, 3], [4, 0]], jnp.int32)
  tokens_, scores = decoding.beam_search(model, prompt, beam_size=vocab ** (steps - 1), max_new_tokens=steps)
  for row in range(2):
    candidates = jnp.asarray(list(itertools.product(range(vocab), repeat=steps)), jnp.int32)  # [125, 3]
    sequences = jnp.concatenate([jnp.broadcast_to(prompt[row], (len(candidates), 2)), candidates], 1)
    log_p = jax.nn.log_softmax(forward(model, sequences)[:, 1:-1], -1)  # [125, 3, V]: each new token's distribution
    totals = jnp.take_along_axis(log_p, candidates[..., None], -1)[..., 0].sum(-1)
    best = int(jnp.argmax(totals))
    np.testing.assert_array_equal(tokens_[row, 0], candidates[best])
    np.testing.assert_allclose(scores[row, 0], totals[best], rtol=1e-5)
    np.testing.assert_allclose(scores[row], jnp.sort(totals)[::-1][: scores.shape[1]], rtol=1e-5)


def test_rnn_lm_samples_in_one_compiled_loop(monkeypatch):
  model, prompt = rnn_lm(), tokens(4, 2, 3)
  traced = []
  step = RNNLanguageModel.step
  monkeypatch.setattr(RNNLanguageModel, "step", lambda self, *a: traced.append(1) or step(self, *a))
  first, _ = decoding.sample(model, prompt, key=jax.random.key(0), max_new_tokens=12)
  assert len(traced) == 2  # once in the prompt's scan, once in the decoding scan: not once per token
  again, _ = decoding.sample(model, prompt, key=jax.random.key(0), max_new_tokens=12)
  np.testing.assert_array_equal(first, again)
  with jax.disable_jit():
    eager, _ = decoding.sample(model, prompt, key=jax.random.key(0), max_new_tokens=12)
  np.testing.assert_array_equal(first, eager)


def test_cross_attention_keys_and_values_are_projected_once_per_sequence(monkeypatch):
  model = encdec()
  projected = []
  project = MultiHeadAttention.project_context
  monkeypatch.setattr(MultiHeadAttention, "project_context", lambda self, c: projected.append(1) or project(self, c))
  decoding.greedy(model, BOS, max_new_tokens=6, src=SRC, src_mask=SRC_MASK)
  assert len(projected) == 2  # one per decoder block, in init_state; every step reuses them


def draws(logits, count: int, **options) -> set[int]:
  """The tokens sample_logits draws from [1, V] logits with the keys key(0) ... key(count - 1): the keys
  vmapped in one compiled call (eagerly, each call runs its ops one by one)."""
  keys = jax.vmap(jax.random.key)(jnp.arange(count))
  drawn = jax.jit(jax.vmap(lambda key: decoding.sample_logits(logits, key, **options)))(keys)  # [count, 1]
  return set(np.asarray(drawn)[:, 0].tolist())


def test_sampling_respects_top_k_and_temperature_zero():
  logits = jnp.asarray(normal_logits := np.random.default_rng(0).standard_normal((1, 20)), jnp.float32)
  top3 = set(np.argsort(normal_logits[0])[-3:])
  assert draws(logits, 100, temperature=1.0, top_k=3) == top3
  assert int(decoding.sample_logits(logits, None, temperature=0.0, top_k=None)[0]) == int(np.argmax(normal_logits))
  model, prompt = gpt(), tokens(7, 2, 2)
  one, _ = decoding.sample(model, prompt, key=jax.random.key(0), temperature=0.7, top_k=1, max_new_tokens=4)
  np.testing.assert_array_equal(one, decoding.greedy(model, prompt, max_new_tokens=4)[0])


def nucleus(logits: np.ndarray, top_p: float) -> set[int]:
  """NumPy reference: the fewest most likely tokens whose probabilities sum to at least top_p."""
  p = np.exp(logits - logits.max())
  p /= p.sum()
  order = np.argsort(-p)
  count = int(np.searchsorted(np.cumsum(p[order]), top_p) + 1)
  return set(order[:count].tolist())


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 1.0])
def test_top_p_samples_exactly_the_nucleus(top_p):
  normal_logits = 2.0 * np.random.default_rng(1).standard_normal((1, 12))
  logits = jnp.asarray(normal_logits, jnp.float32)
  assert draws(logits, 300, temperature=1.0, top_k=None, top_p=top_p) == nucleus(normal_logits[0], top_p)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_tiny_nucleus_samples_the_greedy_path(kind):
  model, prompt, context, _ = KINDS[kind]()
  greedy, _ = decoding.greedy(model, prompt, max_new_tokens=5, **context)  # 5, as above: compiled once
  sampled, _ = decoding.sample(model, prompt, key=jax.random.key(5), top_p=1e-6, max_new_tokens=5, **context)
  np.testing.assert_array_equal(sampled, greedy)


@pytest.mark.parametrize(
  "prompt,mask,options,match",
  [
    ([[1, 25]], None, {}, r"prompt ids must lie in \[0, 23\)"),
    ([[1, 2]], None, {"temperature": float("nan")}, "temperature must be a finite number > 0"),
    ([[1, 2]], None, {"temperature": 1.0, "top_k": 50}, "top_k must be at most the vocabulary size 23"),
    ([[1, 2]], None, {"top_p": 1.5}, r"top_p must be in \(0, 1\], got 1.5"),
    ([[1, 2]], None, {"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ([[1, 2]], None, {"max_new_tokens": 16}, r"decoding needs 17 positions \(prompt length - 1 \+ max_new_tokens\)"),
    ([[1, 2]], [[True, False]], {}, r"prompt_mask must mark each row's real tokens as a suffix"),
    ([[1, 2]], [[1, 1]], {}, r"prompt_mask must be a bool array \[B, P\] = \[1, 2\], got int32\[1, 2\]"),
    (np.zeros((0, 3), np.int32), None, {}, "prompt must hold at least one sequence"),
  ],
)
def test_decoding_checks_prompt_and_sampling_before_any_work(prompt, mask, options, match):
  options = {"max_new_tokens": 3, "key": jax.random.key(0), **options}
  mask = None if mask is None else jnp.asarray(mask)
  with pytest.raises(ValueError, match=match):
    decoding.sample(gpt(), jnp.asarray(prompt, jnp.int32), mask, **options)


def test_context_is_checked_against_the_prompt():
  with pytest.raises(ValueError, match="src batch 2 must equal the prompt's batch 1"):
    decoding.greedy(encdec(), BOS[:1], max_new_tokens=2, src=SRC)
  with pytest.raises(ValueError, match=r"src is no context of this model: GPT decodes from the prompt alone"):
    decoding.greedy(gpt(), BOS, max_new_tokens=2, src=SRC)  # a language model takes no source


@pytest.mark.parametrize("make,name", [(encdec, "EncoderDecoder"), (seq2seq, "Seq2Seq")])
def test_a_missing_source_is_named(make, name):
  takes = f"src is required: {name} decodes with the context src, src_mask; given"
  with pytest.raises(ValueError, match=f"{takes} none"):
    decoding.greedy(make(), BOS, max_new_tokens=4)
  with pytest.raises(ValueError, match=f"{takes} src_mask"):
    decoding.beam_search(make(), BOS, beam_size=2, max_new_tokens=4, src_mask=SRC_MASK)
  with pytest.raises(ValueError, match="mask is no context of this model"):
    decoding.greedy(make(), BOS, max_new_tokens=4, src=SRC, mask=SRC_MASK)


@pytest.mark.parametrize("key,got", [(None, "None"), (0, "0"), (jax.random.split(jax.random.key(0), 2), "key<fry>[2]")])
def test_sampling_needs_one_random_key(key, got):
  with pytest.raises(
    ValueError, match=re.escape(f"key must be one random key, jax.random.key(seed), to sample with; got {got}")
  ):
    decoding.sample(gpt(), tokens(5, 2, 3), key=key, max_new_tokens=2)


def test_a_legacy_uint32_key_samples_as_its_typed_twin():
  sample = lambda key: decoding.sample(gpt(), tokens(5, 2, 3), key=key, max_new_tokens=2)[0]  # noqa: E731
  np.testing.assert_array_equal(sample(jax.random.PRNGKey(3)), sample(jax.random.key(3)))
