"""The data, the probe and the ELMo-style model of experiments/contextual_embeddings.py: each
direction reads only its side, the backward one is the library's reversed RNN, and a cell of one's
own trains as the ELMo-style model by `--models package.module:builder`."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import contextual_embeddings as study
from experiments.contextual_embeddings import WORD, Config, ridge_probe, sentences
from harness import cli
from seqjax.recurrent import RNN

CELL = "tests.test_zoo:build_indrnn"


def test_each_sentence_holds_the_word_once_and_two_cues_of_its_sense():
  config = Config(length=10, cues_per_sense=3, fillers=5)
  data = sentences(config, 500, seed=0)
  tokens, C = data["tokens"], config.cues_per_sense
  assert ((tokens == WORD).sum(1) == 1).all()
  np.testing.assert_array_equal(tokens[np.arange(500), data["position"]], WORD)
  cue_low = 2 + data["sense"][:, None] * C  # [N, 1]: first cue id of each sentence's sense
  is_cue = (tokens >= 2) & (tokens < 2 + 2 * C)
  assert (is_cue.sum(1) == 2).all()
  assert ((tokens >= cue_low) & (tokens < cue_low + C))[is_cue].all()  # both cues of the sentence's own sense
  first_cue = np.argmax(is_cue, axis=1)
  np.testing.assert_array_equal(data["cue_before"], first_cue < data["position"])
  cue_positions = [np.flatnonzero(row) for row in is_cue]  # [N] of [2]
  nearest = [np.abs(cues - p).min() for cues, p in zip(cue_positions, data["position"], strict=True)]
  np.testing.assert_array_equal(data["distance"], nearest)
  assert 0.2 < data["cue_before"].mean() < 0.9 and 0.4 < data["sense"].mean() < 0.6


def test_probe_reads_a_linear_label_and_nothing_from_a_constant():
  rng = np.random.default_rng(0)
  label = rng.integers(0, 2, 400)
  separable = rng.standard_normal((400, 5)) + 3.0 * label[:, None]
  assert (ridge_probe(separable, label, 1.0) == label[200:]).mean() > 0.95
  constant = np.ones((400, 5))
  predicted = ridge_probe(constant, label, 1.0)
  assert len(set(predicted)) == 1  # one vector for every sentence: one answer for every sentence


@pytest.mark.parametrize("name", ["LSTM", CELL])
def test_each_direction_of_the_elmo_style_model_reads_only_its_side(name):
  config = Config(length=8, fillers=6, dim=8)
  model = study.bilm(name, config, nnx.Rngs(0))
  states = nnx.jit(lambda model, tokens: model.states(tokens))  # one compiled program for the three calls
  tokens = jnp.asarray(sentences(config, 3, seed=1)["tokens"])  # [3, 8]
  forward, backward = states(model, tokens)
  changed = states(model, tokens.at[:, 5:].set(WORD))  # the words after position 4 replaced
  np.testing.assert_allclose(changed[0][:, :5], forward[:, :5], rtol=1e-6, atol=1e-6)
  assert not np.allclose(changed[1][:, :5], backward[:, :5], atol=1e-4)
  changed = states(model, tokens.at[:, :3].set(WORD))  # the words before position 3 replaced
  np.testing.assert_allclose(changed[1][:, 3:], backward[:, 3:], rtol=1e-6, atol=1e-6)
  assert not np.allclose(changed[0][:, 3:], forward[:, 3:], atol=1e-4)


def test_the_backward_direction_is_the_library_rnn_reading_right_to_left():
  config = Config(length=8, fillers=6, dim=8)
  model = study.bilm("LSTM", config, nnx.Rngs(0))
  tokens = jnp.asarray(sentences(config, 3, seed=1)["tokens"])
  reference = RNN(model.backward_rnn.layers[0].cell)(model.embed(tokens), reverse=True)[0]
  np.testing.assert_array_equal(model.states(tokens)[1], reference)


def test_a_cell_of_ones_own_trains_as_the_elmo_style_model():
  config = cli.parse(study.CONFIGS, ["smoke", "--models", CELL])
  assert config.models == (CELL,)
  data = sentences(config, config.train_sentences, seed=0)["tokens"]
  train = dataclasses.replace(config.train, steps=2)
  model, loss = study.train(study.bilm(CELL, config, nnx.Rngs(0)), study.bilm_loss, data, train)
  assert np.isfinite(loss) and model.states(jnp.asarray(data[:2]))[1].shape == (2, config.length, config.dim)
  assert study.recurrent(CELL).both == f"{CELL} both ways, ELMo-style (both sides)"


def test_unknown_or_one_way_unbuildable_models_are_refused_by_name():
  with pytest.raises(ValueError, match=r"models: 'alibi' is not one of \['LSTM'\], nor unknown architecture 'alibi'"):
    cli.parse(study.CONFIGS, ["smoke", "--models", "alibi"])
  with pytest.raises(ValueError, match=r"models: 'bilstm' does not build causal at width dim=8: .*causal=False"):
    cli.parse(study.CONFIGS, ["smoke", "--models", "bilstm"])
