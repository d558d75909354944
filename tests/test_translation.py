"""The translation experiment: its batches are a function of (seed, step) and cover each epoch,
its test split is disjoint from training, every model trains through one loss, and its attention
read-outs are distributions over the source."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import translation
from harness import report
from seqjax.seq2seq.model import teacher_forced_loss
from seqjax.train.losses import token_cross_entropy

CONFIG = translation.CONFIGS["smoke"][1]


@pytest.fixture(scope="module")
def corpus():
  return translation.load_corpus(CONFIG)


def test_the_test_split_is_whole_verses_never_trained_on(corpus):
  assert corpus.overlap["test verses whose reference is a training verse"] == 0
  assert len(corpus.test) == len((report.REPO / "tests/fixtures/bible/test.tsv").read_text().splitlines())
  assert all(max(len(s), len(t)) + 1 <= CONFIG.max_tokens for s, t in corpus.train)
  assert corpus.left_out == len((report.REPO / "tests/fixtures/bible/train.tsv").read_text().splitlines()) - len(
    corpus.train
  )


def test_batches_depend_on_seed_and_step_alone_and_cover_each_epoch(corpus):
  config = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, batch_size=4))
  batch_fn = translation.make_batch_fn(corpus.train, config, seed=3)
  again = translation.make_batch_fn(corpus.train, config, seed=3)
  for step in (0, 5, 2, 40):  # any order, as a resumed run asks
    np.testing.assert_array_equal(batch_fn(step, slice(None))["src"], again(step, slice(None))["src"])
    assert batch_fn(step, slice(None))["src"].shape[1] % config.pad_multiple == 0
  per_epoch = len(translation.epoch_batches(corpus.train, config, 3, 0))
  assert per_epoch == len(corpus.train) // 4  # whole batches only: one short remainder is left out
  seen = np.concatenate(translation.epoch_batches(corpus.train, config, 3, 0))
  assert len(seen) == len(set(seen.tolist())) == 4 * per_epoch  # no pair twice in an epoch
  other = translation.make_batch_fn(corpus.train, config, seed=4)
  assert any(not np.array_equal(batch_fn(s, slice(None))["src"], other(s, slice(None))["src"]) for s in range(4))


@pytest.mark.parametrize("name", translation.MODELS)
def test_every_model_trains_through_the_one_loss_and_attends_over_the_source(name, corpus):
  model = translation.build(name, len(corpus.subwords), CONFIG, seed=0)
  batch = translation.make_batch_fn(corpus.train, CONFIG, seed=0)(0, slice(None))
  loss, metrics = teacher_forced_loss(model, {k: jnp.asarray(v) for k, v in batch.items()})
  logits = (
    model(batch["src"], batch["tgt_in"], src_mask=batch["src_mask"])
    if name == translation.TRANSFORMER
    else (model(batch["src"], batch["tgt_in"], batch["src_mask"])[0])
  )
  expected, count = token_cross_entropy(logits, batch["tgt_out"], batch["tgt_mask"])
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  assert float(metrics["tokens"]) == float(count) == batch["tgt_mask"].sum()
  source, target = corpus.test[0].source, [5, 6, 7]
  weights = translation.alignment(model, source, target)
  expected_shape = (len(target) + 1, len(source))
  assert weights.shape == ((CONFIG.layers, *expected_shape) if name == translation.TRANSFORMER else expected_shape)
  if name != translation.FIXED:  # the fixed-context model has no attention (zeros)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
  else:
    assert not weights.any()


def test_config_errors_name_the_field():
  with pytest.raises(ValueError, match=r"models: unknown \['GRU'\]"):
    dataclasses.replace(CONFIG, models=("GRU",)).check()
  with pytest.raises(ValueError, match=r"dim \(10\) must be a multiple of 2 x heads \(4\)"):
    dataclasses.replace(CONFIG, dim=10).check()
  with pytest.raises(ValueError, match="beam_size"):
    dataclasses.replace(CONFIG, beam_size=0).check()
  with pytest.raises(ValueError, match="transformer_learning_rate"):
    dataclasses.replace(CONFIG, transformer_learning_rate=float("nan")).check()


def test_a_familys_journal_ignores_only_the_other_familys_fields(tmp_path):
  config = dataclasses.replace(CONFIG, out=str(tmp_path))

  def fingerprint(family, **change):
    return translation.journal(dataclasses.replace(config, **change), family).fingerprint

  rnn, transformer = fingerprint("RNN"), fingerprint(translation.TRANSFORMER)
  assert fingerprint("RNN", dim=16, transformer_learning_rate=1.0) == rnn  # the Transformer's own fields
  assert fingerprint(translation.TRANSFORMER, hidden=16) == transformer  # the RNNs' own field
  assert fingerprint("RNN", hidden=16) != rnn and fingerprint(translation.TRANSFORMER, dim=16) != transformer
  shared = {"vocab_size": 100, "train": dataclasses.replace(config.train, learning_rate=0.5)}
  assert fingerprint("RNN", **shared) != rnn and fingerprint(translation.TRANSFORMER, **shared) != transformer
  assert fingerprint("RNN", seeds=(5,), models=(translation.FIXED,)) == rnn  # selection fields
