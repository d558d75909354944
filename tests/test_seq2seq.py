"""Seq2seq models, their attention, one decoding API, metrics, and learning the reverse task."""

import itertools
import math
import subprocess
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from seqjax import decoding
from seqjax.data.batching import seq2seq_batch
from seqjax.data.synthetic import generate
from seqjax.data.vocab import BOS, EOS, PAD, Vocab
from seqjax.seq2seq.attention import Score, attend
from seqjax.seq2seq.metrics import bleu_by_length, corpus_bleu, corpus_chrf, exact_match
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import init_state, make_train_step, optimizer, split_model
from seqjax.transformer import EncoderDecoder, EncoderDecoderConfig
from tests.helpers import normal, randomize

V, S = 13, 7
SRC = jnp.asarray(np.random.default_rng(0).integers(4, V, (3, S)), jnp.int32)
MASK = jnp.arange(S)[None, :] < jnp.array([[7], [4], [6]])
ATTENTIONS = {
  "none": {},
  "bahdanau": {"attention": "bahdanau", "bidirectional_encoder": True},
  "luong_dot": {"attention": "luong", "score": "dot"},
  "luong_general": {"attention": "luong", "score": "general"},
  "luong_concat": {"attention": "luong", "score": "concat", "num_layers": 2},
  "luong_local_m": {"attention": "luong", "window": "local_m", "window_half_width": 2},
  "luong_local_p": {"attention": "luong", "window": "local_p", "window_half_width": 2},
}


def seq2seq(name, seed=0, **overrides):
  config = Seq2SeqConfig(V, V, embed_dim=8, hidden_features=16, **{**ATTENTIONS[name], **overrides})
  return randomize(Seq2Seq(config, rngs=nnx.Rngs(seed)), seed, scale=0.3)


# ---- attention ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bahdanau", "luong_dot", "luong_general", "luong_concat", "luong_local_m"])
def test_weights_sum_to_one_over_real_positions_and_zero_on_padding(name):
  _, weights = seq2seq(name)(SRC, SRC[:, :5], MASK)  # [B, T, S]
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(weights[1, :, 4:], 0.0)


def test_local_p_weights_stay_inside_the_window_and_off_padding():
  _, weights = seq2seq("luong_local_p")(SRC, SRC[:, :5], MASK)
  assert float(weights.sum(-1).max()) <= 1.0 + 1e-6  # the Gaussian factor scales the window's softmax down
  np.testing.assert_array_equal(weights[1, :, 4:], 0.0)
  assert int((np.asarray(weights) > 0).sum(-1).max()) <= 2 * 2 + 1


def test_local_m_equals_global_when_the_window_covers_the_source():
  local = seq2seq("luong_local_m", window_half_width=S)
  global_ = seq2seq("luong_general")
  nnx.update(global_, nnx.state(local))  # same parameters: local-m adds none
  a_logits, a_weights = local(SRC, SRC[:, :5], MASK)
  b_logits, b_weights = global_(SRC, SRC[:, :5], MASK)
  np.testing.assert_array_equal(a_weights, b_weights)
  np.testing.assert_array_equal(a_logits, b_logits)


def test_local_m_centers_on_the_decoder_step():
  scores = jnp.zeros((1, S))
  weights, _ = attend(
    scores, jnp.ones((1, S, 2)), jnp.ones((1, S), bool), window="local_m", step=jnp.int32(3), half_width=1
  )
  np.testing.assert_allclose(weights[0], [0, 0, 1 / 3, 1 / 3, 1 / 3, 0, 0], atol=1e-7)


def test_additive_and_multiplicative_scores_equal_their_formulas():
  keys, query = normal(1, 2, S, 6), normal(2, 2, 5)
  additive = randomize(Score("additive", 5, 6, attention_dim=4, rngs=nnx.Rngs(0)))
  W1, W2, v = (np.asarray(m.kernel[...]) for m in (additive.w_key, additive.w_query, additive.v))
  want = np.tanh(keys @ W1 + (query @ W2)[:, None, :]) @ v  # v^T tanh(W1 h_j + W2 s)
  got = additive(jnp.asarray(query), jnp.asarray(keys), additive.precompute(jnp.asarray(keys)))
  np.testing.assert_allclose(got, want[..., 0], rtol=1e-5, atol=1e-6)
  general = randomize(Score("general", 5, 6, rngs=nnx.Rngs(0)))
  W = np.asarray(general.w_general.kernel[...])
  np.testing.assert_allclose(
    general(jnp.asarray(query), jnp.asarray(keys), jnp.asarray(keys)),
    np.einsum("bsd,bd->bs", keys, query @ W),
    rtol=1e-5,
    atol=1e-6,
  )
  with pytest.raises(ValueError, match="score='dot' needs query and key sizes to match"):
    Score("dot", 5, 6, rngs=nnx.Rngs(0))


# ---- decoding ---------------------------------------------------------------------------------------

KW = {"max_new_tokens": 6, "eos_id": EOS, "pad_id": PAD, "suppress": (BOS,)}


def start(batch: int) -> jax.Array:
  """The decoder's prompt for a sequence-to-sequence model: BOS alone, [B, 1]."""
  return jnp.full((batch, 1), BOS, jnp.int32)


SOURCE = {"src": SRC, "src_mask": MASK}


def transformer():
  config = EncoderDecoderConfig(
    vocab_size=V,
    dim=16,
    num_heads=2,
    ff_dim=32,
    num_encoder_layers=1,
    num_decoder_layers=1,
    max_length=16,
    dropout_rate=0.0,
  )
  return EncoderDecoder(config, rngs=nnx.Rngs(0))


MODELS = {"rnn": lambda: seq2seq("none"), "bahdanau": lambda: seq2seq("bahdanau"), "transformer": transformer}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_beam_of_one_equals_greedy(name):
  model = MODELS[name]()
  tokens, scores = decoding.greedy(model, start(3), **SOURCE, **KW)
  beam_tokens, beam_scores = decoding.beam_search(model, start(3), **SOURCE, beam_size=1, **KW)
  np.testing.assert_array_equal(beam_tokens[:, 0], tokens)
  np.testing.assert_allclose(beam_scores[:, 0], scores, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decoding_is_the_same_with_and_without_jit(name):
  model, kw = MODELS[name](), {**KW, "max_new_tokens": 3}  # eager runs op by op: a short decode
  runs = [
    lambda: decoding.greedy(model, start(3), **SOURCE, **kw),
    lambda: decoding.sample(model, start(3), **SOURCE, key=jax.random.key(3), temperature=0.9, top_k=5, **kw),
    lambda: decoding.beam_search(model, start(3), **SOURCE, beam_size=3, length_penalty=0.6, **kw),
  ]
  for run in runs:
    jitted = run()
    with jax.disable_jit():
      eager = run()
    np.testing.assert_array_equal(jitted[0], eager[0])
    np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-5)


class ChainState(NamedTuple):
  dummy: jax.Array  # [B, 1]: a per-row leaf for beam search to reorder


class Chain(nnx.Module):
  """A hand-built decoder: the next token's log-probabilities depend only on the last token."""

  def __init__(self, table):
    self.table = nnx.Param(jnp.log(jnp.asarray(table, jnp.float32)))
    self.decode_vocab = len(table)

  def check_decode_inputs(self, batch):
    pass

  def init_state(self, batch, max_length):
    return ChainState(jnp.zeros((batch, 1)))

  def prefill(self, state, tokens, mask):
    return decoding.prefill_by_steps(self, state, tokens, mask)

  def step(self, state, tokens):
    return self.table[...][tokens], state


# vocab: 0 PAD, 1 BOS, 2 EOS, 3 a, 4 b. Greedy takes "a" (0.6) and then can do no better than
# 0.35 a step; "b EOS" has probability 0.4 * 0.9 = 0.36, the most likely sequence of all.
TABLE = [
  [0.2] * 5,
  [0.0, 0.0, 0.0, 0.6, 0.4],  # after BOS
  [0.2] * 5,
  [0.0, 0.0, 0.3, 0.35, 0.35],  # after a
  [0.0, 0.0, 0.9, 0.05, 0.05],  # after b
]


def best_by_enumeration(max_length):
  table = np.asarray(TABLE)
  best = (None, -np.inf)
  for length in range(1, max_length + 1):
    for body in itertools.product([3, 4], repeat=length - 1):
      seq = [*body, EOS]
      with np.errstate(divide="ignore"):  # EOS right after BOS has probability 0
        logp = sum(np.log(table[prev, tok]) for prev, tok in zip([BOS, *seq[:-1]], seq, strict=True))
      best = max(best, (seq, logp), key=lambda x: x[1])
  return best


def test_beam_search_finds_the_known_best_hypothesis():
  model = Chain(TABLE)
  kw = {**KW, "max_new_tokens": 4}
  greedy_tokens, greedy_score = decoding.greedy(model, start(1), **kw)
  assert list(np.asarray(greedy_tokens[0])) == [3, 3, 3, 3]  # never ends: 0.35 > 0.3 each step
  tokens, scores = decoding.beam_search(model, start(1), beam_size=3, **kw)
  best, best_logp = best_by_enumeration(4)
  assert list(np.asarray(tokens[0, 0])) == [*best, PAD, PAD]  # "b EOS", then padding
  assert float(scores[0, 0]) == pytest.approx(best_logp, rel=1e-5) and best_logp > float(greedy_score[0])


def test_eos_ends_hypotheses_and_padding_after_it_is_not_scored():
  model = Chain(TABLE)
  tokens, scores = decoding.beam_search(model, start(1), beam_size=2, **{**KW, "max_new_tokens": 5})
  for row, score in zip(np.asarray(tokens[0]), np.asarray(scores[0]), strict=True):
    end = list(row).index(EOS) if EOS in row else len(row) - 1
    assert (row[end + 1 :] == PAD).all()
    scored = list(row[: end + 1])  # through EOS, or everything when the hypothesis never ended
    logp = sum(np.log(np.asarray(TABLE)[p, t]) for p, t in zip([BOS, *scored[:-1]], scored, strict=True))
    assert score == pytest.approx(logp, rel=1e-5)


def test_length_penalty_prefers_longer_hypotheses():
  model, kw = Chain(TABLE), {**KW, "max_new_tokens": 5}
  plain, _ = decoding.beam_search(model, start(1), beam_size=4, **kw)
  long, _ = decoding.beam_search(model, start(1), beam_size=4, length_penalty=2.0, **kw)
  length = lambda row: int((np.asarray(row) != PAD).sum())  # noqa: E731
  assert length(long[0, 0]) >= length(plain[0, 0])


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"beam_size": 0}, "beam_size must be a positive integer"),
    ({"beam_size": 2, "max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ({"beam_size": 2, "length_penalty": -1.0}, "length_penalty must be a finite number >= 0"),
    ({"beam_size": 2, "eos_id": BOS}, "eos_id 1 must differ from pad_id 0 and from the suppressed ids"),
    ({"beam_size": 2, "pad_id": None}, "eos_id needs a pad_id"),
    ({"beam_size": 2, "eos_id": None}, "pad_id fills the rows after EOS and needs an eos_id"),
    ({"beam_size": 2, "suppress": (V,)}, r"suppress\[0\] must be a token id in \[0, 13\)"),
  ],
)
def test_decoding_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    decoding.beam_search(seq2seq("none"), start(3), **SOURCE, **{**KW, **kwargs})


def test_model_input_errors():
  model = seq2seq("bahdanau")
  with pytest.raises(ValueError, match="src batch 3 must equal the target batch 2"):
    model(SRC, SRC[:2, :3], MASK)
  with pytest.raises(ValueError, match=r"src ids must lie in \[0, 13\)"):
    model(SRC.at[0, 0].set(V), SRC, MASK)
  with pytest.raises(ValueError, match=r"src_mask must be a bool array \[B, S\]"):
    model(SRC, SRC, MASK[:, :3])
  with pytest.raises(ValueError, match="attention must be one of"):
    Seq2SeqConfig(V, V, attention="multiplicative").check()
  with pytest.raises(ValueError, match="temperature must be > 0"):
    decoding.sample(model, start(3), **SOURCE, key=jax.random.key(0), temperature=0.0, **KW)


# ---- metrics --------------------------------------------------------------------------------------

HYPS = ["the cat sat on the mat", "a dog ran in the park today", "hello world", "one two three four"]
REFS = ["the cat sat on a mat", "the dog ran in the park", "hello there world", "one two three four"]


def test_bleu_equals_the_sacrebleu_command_line(tmp_path):
  (tmp_path / "hyp.txt").write_text("\n".join(HYPS) + "\n")
  (tmp_path / "ref.txt").write_text("\n".join(REFS) + "\n")
  command = [sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"), "-b"]
  cli_bleu = float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())
  assert corpus_bleu(HYPS, REFS) == pytest.approx(cli_bleu, abs=0.05)  # the command line prints 1 decimal
  chrf_cli = subprocess.run([*command, "-m", "chrf"], capture_output=True, text=True, check=True).stdout.strip()
  assert corpus_chrf(HYPS, REFS) == pytest.approx(float(chrf_cli), abs=0.05)


def test_exact_match_and_bleu_by_length():
  assert exact_match(HYPS, REFS) == 0.25
  rows = bleu_by_length(HYPS, REFS, [6, 7, 2, 4], [0, 5, 10])
  assert [(r["lengths"], r["sentences"]) for r in rows] == [("0-4", 2), ("5-9", 2)]
  assert rows[1]["bleu"] == pytest.approx(corpus_bleu(HYPS[:2], REFS[:2]))
  assert rows[1]["chrf"] == pytest.approx(corpus_chrf(HYPS[:2], REFS[:2]))
  assert bleu_by_length(["a b c"], ["a b c"], [3], [0, 5])[0]["bleu"] is None  # no 4-grams: BLEU undefined
  open_ended = bleu_by_length(HYPS, REFS, [6, 70, 2, 4], [0, 5, math.inf])
  assert [(r["lengths"], r["sentences"]) for r in open_ended] == [("0-4", 2), ("5+", 2)]


# ---- learning ------------------------------------------------------------------------------------


def test_attention_seq2seq_learns_to_reverse():
  vocab = Vocab(chr(ord("a") + i) for i in range(8))

  def data(count, seed):
    pairs = generate("reverse", count, min_length=3, max_length=8, seed=seed, alphabet=8)
    return [(vocab.encode(s), vocab.encode(t)) for s, t in pairs]

  train, test = data(20000, 0), data(500, 1)
  config = Seq2SeqConfig(len(vocab), len(vocab), embed_dim=32, hidden_features=64, attention="luong")
  graphdef, params, rest = split_model(Seq2Seq(config, rngs=nnx.Rngs(0)))
  # a cosine decay from 1e-2: exact match >= 0.998 after 150 steps for each model seed 0-3 (measured); a
  # constant 3e-3 needed 600 steps (seed 2 was still at 0.976 after 400)
  steps = 200
  tx = optimizer("adam", optax.cosine_decay_schedule(1e-2, steps))
  step = make_train_step(graphdef, rest, teacher_forced_loss, tx)
  state = init_state(params, tx, 0)
  for i in range(steps):
    index = np.random.default_rng(i).choice(len(train), 64, replace=False)
    state, _ = step(state, seq2seq_batch([train[j] for j in index]))
  batch = seq2seq_batch(test)
  model = nnx.merge(graphdef, state.params, rest)
  tokens, _ = decoding.greedy(
    model, start(len(test)), src=batch["src"], src_mask=batch["src_mask"], **{**KW, "max_new_tokens": 9}
  )
  hyps = [" ".join(vocab.decode(row)) for row in np.asarray(tokens)]
  refs = [" ".join(vocab.decode(row)) for row in batch["tgt_out"]]
  assert exact_match(hyps, refs) > 0.99


def test_teacher_forced_loss_reads_any_model_through_its_teacher_forced_logits():
  class Uniform:  # no Seq2Seq, no EncoderDecoder: only the protocol
    def teacher_forced_logits(self, src, tgt_in, *, src_mask=None, dropout_key=None):
      return jnp.zeros((*tgt_in.shape, 5))

  tokens = jnp.zeros((2, 3), jnp.int32)
  batch = {"src": tokens, "src_mask": None, "tgt_in": tokens, "tgt_out": tokens, "tgt_mask": jnp.ones((2, 3), bool)}
  loss, metrics = teacher_forced_loss(Uniform(), batch)
  np.testing.assert_allclose(loss, np.log(5), rtol=1e-6)
  assert int(metrics["tokens"]) == 6
