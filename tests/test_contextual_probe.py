"""The data and the probe of experiments/contextual_embeddings.py."""

import numpy as np

from experiments.contextual_embeddings import WORD, Config, ridge_probe, sentences


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
