"""Inputs that once gave a silently wrong answer (NaN, zeros, a dropped token, an overwritten
cache slot): each now gives the right result or a ValueError naming the argument (issue #11)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax import decoding
from seqjax.attention import MultiHeadAttention, dot_product_attention
from seqjax.attention.blockwise import blockwise_attention
from seqjax.attention.core import padding_mask
from seqjax.attention.dispatch import fused_attention
from seqjax.data import synthetic
from seqjax.data.batching import bucketed_batches, pad, step_indices
from seqjax.data.vocab import Vocab
from seqjax.recurrent import RNN, Bidirectional, GRUCell, LSTMCell
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig
from seqjax.transformer import GPT, BertConfig, BertModel, GPTConfig
from tests.helpers import normal, prefix_mask

# ---- recurrent ---------------------------------------------------------------------------------


def bidirectional_lstm():
  return Bidirectional(RNN(LSTMCell(4, 8, rngs=nnx.Rngs(0))), RNN(LSTMCell(4, 8, rngs=nnx.Rngs(1))))


def test_a_padding_mask_with_holes_is_refused():
  model, x = bidirectional_lstm(), jnp.asarray(normal(0, 2, 5, 4))
  with pytest.raises(ValueError, match=r"mask must mark each row's real tokens as a prefix .* rows \[1\]"):
    model(x, mask=jnp.array([[True] * 5, [True, False, True, False, False]]))


@pytest.mark.parametrize("hoist", [True, False])
def test_nan_in_padded_steps_reaches_no_gradient(hoist):
  rnn = RNN(GRUCell(4, 8, rngs=nnx.Rngs(0)), hoist_input_projection=hoist)
  x = jnp.asarray(normal(1, 2, 5, 4))
  mask = prefix_mask([5, 3], 5)

  def loss(model, x):
    return model(x, mask=mask)[0].sum()

  grad = nnx.jit(nnx.grad(loss))  # one compile for both calls, not one per op
  clean = grad(rnn, x)
  poisoned = grad(rnn, x.at[1, 3:].set(jnp.nan))
  for a, b in zip(jax.tree.leaves(clean), jax.tree.leaves(poisoned), strict=True):
    np.testing.assert_array_equal(a, b)


def test_lstm_cell_refuses_a_bare_array_carry():
  cell = LSTMCell(4, 8, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"carry must be a tuple \(c, h\)"):
    cell(jnp.zeros((2, 8)), jnp.zeros((2, 4)))
  with pytest.raises(ValueError, match="carry must be h"):
    GRUCell(4, 8, rngs=nnx.Rngs(0))(jnp.zeros((3, 8)), jnp.zeros((2, 4)))


@pytest.mark.parametrize("shape", [(0, 5, 4), (2, 0, 4)])
def test_empty_batch_or_time_is_refused(shape):
  with pytest.raises(ValueError, match="x must hold at least one sequence of at least one step"):
    RNN(LSTMCell(4, 8, rngs=nnx.Rngs(0)))(jnp.zeros(shape))


# ---- attention ---------------------------------------------------------------------------------


def qkv(seed=0, S=7):
  q = jnp.asarray(normal(seed, 2, 6, 2, 4))
  k, v = jnp.asarray(normal(seed + 1, 2, S, 2, 4)), jnp.asarray(normal(seed + 2, 2, S, 2, 4))
  return q, k, v


def key_mask(lengths, k):
  return padding_mask(lengths, k.shape[1])[:, 0, 0]  # [B, S]


PATHS = {
  "dense": lambda q, k, v, n: dot_product_attention(q, k, v, mask=padding_mask(n, k.shape[1])),
  "blockwise": lambda q, k, v, n: blockwise_attention(q, k, v, key_mask=key_mask(n, k), block_q=4, block_k=4),
  "dispatch": lambda q, k, v, n: fused_attention(q, k, v, key_mask=key_mask(n, k), implementation="dense"),
}


@pytest.mark.parametrize("path", PATHS)
def test_nan_in_masked_keys_and_values_changes_nothing(path):
  q, k, v = qkv()
  lengths = jnp.array([7, 3])
  run = jax.jit(PATHS[path])  # one compile for both calls, not one per op
  clean = run(q, k, v, lengths)
  k_bad, v_bad = k.at[1, 3:].set(jnp.nan), v.at[1, 3:].set(jnp.inf)
  np.testing.assert_array_equal(run(q, k_bad, v_bad, lengths), clean)
  grads = jax.jit(jax.grad(lambda q, k, v: run(q, k, v, lengths).sum(), argnums=(0, 1, 2)))(q, k_bad, v_bad)
  assert all(not jnp.isnan(g).any() for g in grads)


def test_blockwise_key_mask_of_another_length_is_refused():
  q, k, v = qkv()
  with pytest.raises(ValueError, match=r"key_mask must be a bool array"):
    blockwise_attention(q, k, v, key_mask=jnp.ones((2, 8), bool))


def test_empty_attention_axes_are_refused():
  q, k, v = qkv()
  with pytest.raises(ValueError, match="need every axis >= 1"):
    blockwise_attention(q[:, :0], k, v)


def test_cudnn_off_a_gpu_is_refused():
  q, k, v = qkv()
  with pytest.raises(ValueError, match="implementation='cudnn' needs an NVIDIA GPU"):
    fused_attention(q, k, v, implementation="cudnn")


def test_multihead_attention_checks_feature_sizes():
  mha = MultiHeadAttention(2, 8, kv_features=6, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"x must have shape \[B, T, D=8\]"):
    mha(jnp.zeros((1, 3, 5)))
  with pytest.raises(ValueError, match=r"context must have shape \[B, S, D_kv=6\]"):
    mha(jnp.zeros((1, 3, 8)), jnp.zeros((1, 4, 8)))


# ---- decoding and models -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt():
  config = GPTConfig(vocab_size=20, max_length=16, dim=16, num_heads=2, num_layers=1, ff_dim=32, dropout_rate=0.0)
  return GPT(config, rngs=nnx.Rngs(0))


def test_kv_cache_overflow_is_refused(gpt):
  prefill = nnx.jit(lambda model, state, x, mask: model.prefill(state, x, mask))  # one compile, not one per op
  state = prefill(gpt, gpt.init_state(1, 4), jnp.array([[1, 2, 3]]), jnp.ones((1, 3), bool))
  with pytest.raises(ValueError, match="x has 2 new positions but the cache holds 4 and 3 are filled"):
    gpt.prefill(state, jnp.array([[4, 5]]), jnp.ones((1, 2), bool))


def test_bert_checks_token_types():
  config = BertConfig(vocab_size=20, max_length=16, dim=16, num_heads=2, num_layers=1, ff_dim=32)
  bert = BertModel(config, rngs=nnx.Rngs(0))
  tokens = jnp.array([[1, 2]])
  with pytest.raises(ValueError, match=r"token_types ids must lie in \[0, 2\)"):
    bert(tokens, token_types=jnp.array([[0, 5]]))
  with pytest.raises(ValueError, match=r"token_types must have the shape of tokens \[B, T\] = \(1, 2\)"):
    bert(tokens, token_types=jnp.array([[0, 1, 1]]))


@pytest.fixture(scope="module")
def seq2seq():
  return Seq2Seq(
    Seq2SeqConfig(source_vocab_size=10, target_vocab_size=20, embed_dim=8, hidden_features=8), rngs=nnx.Rngs(0)
  )


GAPPED = jnp.array([[True, False, True, True, True, True]])
SRC = jnp.array([[4, 5, 6, 7, 8, 9]])
IDS = {"max_new_tokens": 3, "eos_id": 2, "pad_id": 0}
BOS = jnp.array([[1]])


def test_seq2seq_refuses_a_mask_that_is_not_a_prefix(seq2seq):
  with pytest.raises(ValueError, match="src_mask must mark each row's real tokens as a prefix"):
    seq2seq(SRC, SRC[:, :3], GAPPED)
  with pytest.raises(ValueError, match="src_mask must mark each row's real tokens as a prefix"):
    decoding.greedy(seq2seq, BOS, src=SRC, src_mask=GAPPED, **IDS)


@pytest.mark.parametrize(
  "call,match",
  [
    (lambda m: decoding.greedy(m, BOS, src=jnp.array([[4, 15]]), **IDS), r"src ids must lie in \[0, 10\)"),
    (
      lambda m: decoding.beam_search(m, BOS, src=SRC, beam_size=2, **{**IDS, "pad_id": 30}),
      r"pad_id must be a token id in \[0, 20\)",
    ),
    (lambda m: decoding.sample(m, BOS, src=SRC, key=jax.random.key(0), top_k=21, **IDS), "top_k must be at most"),
    (lambda m: decoding.sample(m, BOS, src=SRC, key=jax.random.key(0), temperature=float("inf"), **IDS), "temperature"),
  ],
)
def test_decoding_checks_ids_before_jit(seq2seq, call, match):
  with pytest.raises(ValueError, match=match):
    call(seq2seq)


# ---- data --------------------------------------------------------------------------------------


def test_vocab_decode_refuses_ids_outside_it():
  vocab = Vocab("ab")
  assert vocab.decode([4, 5, 2, 4]) == ["a", "b"]
  for ids in ([-1], [6], [1.5]):
    with pytest.raises(ValueError, match=r"ids must be integers in \[0, 6\)"):
      vocab.decode(ids)


def test_pad_mask_follows_lengths_not_ids():
  _, mask = pad([[4, 0, 5], [3]])
  np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False]])
  with pytest.raises(ValueError, match="sequences must hold at least one sequence"):
    pad([])


@pytest.mark.parametrize(
  "call,match",
  [
    (lambda: synthetic.generate("copy", 2, min_length=1, max_length=2, seed=0, alphabet=40), r"alphabet must be in"),
    (lambda: synthetic.generate("copy", 2, min_length=1, max_length=2, seed=0, alphabet=0), "alphabet must be"),
    (lambda: bucketed_batches([1, 2], 0, seed=0), "batch_size must be a positive integer"),
    (lambda: step_indices(0, 0, 3, 5), r"count \(3 examples\) must be at least batch_size \(5\)"),
  ],
)
def test_data_helpers_check_their_arguments(call, match):
  with pytest.raises(ValueError, match=match):
    call()
