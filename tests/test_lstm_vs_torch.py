"""benchmarks.lstm_vs_torch: each init part comes from the library named, and the seqjax and torch
models built from the same weights compute the same logits (so the two trainings start equal)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from benchmarks import lstm_vs_torch as study
from experiments import charlm
from tests.helpers import forward

torch = pytest.importorskip("torch")
VOCAB, WIDTH, CONTEXT = 11, 8, 6


@pytest.mark.parametrize("one_bias", [False, True])
def test_both_frameworks_compute_the_same_logits_from_mixed_weights(one_bias):
  sources = {"embedding": "torch", "LSTM weights": "seqjax", "LSTM biases": "torch", "readout": "seqjax"}
  weights = study.initial_weights(sources, VOCAB, WIDTH, CONTEXT, seed=3)
  tokens = np.random.default_rng(0).integers(0, VOCAB, (2, CONTEXT))
  ours = forward(study.load_seqjax(weights, VOCAB, WIDTH, CONTEXT), jnp.asarray(tokens, jnp.int32))
  lm = study.load_torch(weights, VOCAB, WIDTH, one_bias)
  with torch.no_grad():
    theirs = study.torch_logits(lm, torch.from_numpy(tokens).long()).numpy()
  np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-5, atol=1e-5)
  frozen = [name for name, p in lm.named_parameters() if not p.requires_grad]
  assert frozen == ([f"lstm.bias_hh_l{k}" for k in range(charlm.RNN_LAYERS)] if one_bias else [])


def test_each_part_is_drawn_by_the_library_named():
  seed = 5
  own = study.seqjax_weights(study.seqjax_lm(VOCAB, WIDTH, CONTEXT, seed))
  torch_own = {
    k: v.detach().numpy() for k, v in study.torch_lm(VOCAB, WIDTH, charlm.RNN_LAYERS, seed).state_dict().items()
  }
  sources = {"embedding": "torch", "LSTM weights": "seqjax", "LSTM biases": "seqjax", "readout": "torch"}
  mixed = study.initial_weights(sources, VOCAB, WIDTH, CONTEXT, seed)
  assert mixed.keys() == own.keys() == torch_own.keys()
  for name, value in mixed.items():
    want = torch_own if study.part_of(name) in ("embedding", "readout") else own
    np.testing.assert_array_equal(value, want[name], err_msg=name)
  f = slice(WIDTH, 2 * WIDTH)  # seqjax's forget gate: bias 1 (charlm's LSTM), the others 0
  np.testing.assert_array_equal(own["lstm.bias_ih_l0"][f], 1.0)
  np.testing.assert_array_equal(np.delete(own["lstm.bias_ih_l0"], f), 0.0)


def test_seqjax_init_is_charlms_lstm_with_flax_embedding():
  """The "seqjax init" variant starts from the weights charlm's LSTM run of the seed starts from,
  but for the embedding: flax's default draw from the same key (what was measured), where
  charlm's LSTM (RNNLanguageModel) now draws N(0, 1)."""
  model = charlm.build("LSTM", WIDTH, VOCAB, CONTEXT, 2)
  weights = study.initial_weights(dict.fromkeys(study.PARTS, "seqjax"), VOCAB, WIDTH, CONTEXT, seed=2)
  flax_default = nnx.Embed(VOCAB, WIDTH, rngs=nnx.Rngs(2)).embedding[...]  # the first key of Rngs(2), as the LM's
  unit_normal = nnx.Embed(VOCAB, WIDTH, embedding_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(2)).embedding[...]
  np.testing.assert_array_equal(weights["embed.weight"], np.asarray(flax_default))
  np.testing.assert_array_equal(np.asarray(model.embed.embedding[...]), np.asarray(unit_normal))
  np.testing.assert_array_equal(
    weights["lstm.weight_hh_l1"].T, np.asarray(study.lstm_stack(model).layers[1].cell.recurrent_kernel[...])
  )
