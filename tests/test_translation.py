"""The translation experiment: its batches are a function of (seed, step) and cover each epoch,
its test split is disjoint from training, every model trains through one loss, its attention
read-outs are distributions over the source, its control swaps sources within a length bucket,
its nominal FLOPs count what the docstring says, and its `large` config builds and trains a step
of each of its models at the papers' widths without pilots."""

import dataclasses
import json
import math
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import translation
from harness import cli, report, workdirs
from harness.runs import Runs
from seqjax._paths import path_names
from seqjax.data import bible
from seqjax.seq2seq.model import teacher_forced_loss
from seqjax.train.losses import token_cross_entropy
from seqjax.train.step import init_state, make_train_step, split_model
from seqjax.train.trainer import build_optimizer
from seqjax.zoo import count_params

CONFIG = translation.CONFIGS["smoke"][1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def corpus():
  return translation.load_corpus(CONFIG)


def test_the_test_split_is_whole_verses_never_trained_on(corpus):
  assert corpus.overlap["test verses whose reference is a training verse"] == 0
  rows = [r for split in bible.SPLITS for r in bible.load(split, CONFIG.corpus)]
  split = {
    r[0]: bible.split_of(r[0], valid_percent=CONFIG.valid_percent, test_percent=CONFIG.test_percent) for r in rows
  }
  assert sorted(v.verse for v in corpus.test) == sorted(ref for ref, s in split.items() if s == "test")
  assert all(max(len(s), len(t)) + 1 <= CONFIG.max_tokens for s, t in corpus.train)
  assert corpus.left_out + len(corpus.train) == sum(s == "train" for s in split.values())


def test_the_split_grows_test_from_training_only():
  references = [f"Gen {c}:{v}" for c in range(1, 51) for v in range(1, 30)]
  old = {r: bible.split_of(r) for r in references}
  new = {r: bible.split_of(r, valid_percent=2, test_percent=8) for r in references}
  assert old == {r: bible.split_of(r, valid_percent=1, test_percent=1) for r in references}  # prepare's 98/1/1
  assert all(new[r] == "test" for r in references if old[r] == "test")  # a test verse stays test
  assert all(old[r] == "train" for r in references if new[r] != old[r] and old[r] != "valid")
  assert 0.06 < sum(s == "test" for s in new.values()) / len(new) < 0.10
  with pytest.raises(ValueError, match="test_percent"):
    bible.split_of("Gen 1:1", test_percent=101)


def test_the_source_blind_control_swaps_every_source_within_its_length_bucket(corpus):
  test = [translation.TestVerse([i], "x", words, f"v{i}") for i, words in enumerate([3, 5, 9, 12, 15, 19, 45, 50])]
  swapped = translation.source_blind(test, seed=0)
  buckets = [np.searchsorted(translation.EDGES, v.words, side="right") for v in test]
  assert sorted(s[0] for s in swapped) == list(range(len(test)))  # a permutation of the sources
  for verse, source in zip(test, swapped, strict=True):
    assert source != verse.source  # no verse keeps its own
    assert buckets[source[0]] == buckets[test.index(verse)]  # the same length bucket
  assert translation.source_blind(test, seed=0) == swapped


def test_nominal_flops_count_kernels_per_token_and_attention_per_pair(corpus):
  sums = {"src": 100, "tgt": 120, "src_src": 900, "tgt_tgt": 1300, "src_tgt": 1000}
  fixed = translation.build(translation.FIXED, 50, CONFIG, seed=0)
  kernels = _sizes(fixed)
  encoder = sum(v for n, v in kernels.items() if n.startswith("encoder/"))
  e, h = CONFIG.embed_dim, CONFIG.hidden_features
  assert CONFIG.rnn_num_layers == 1 and encoder == (e + h) * 4 * h  # input and recurrent kernels of 4 gates
  decoder = sum(v for n, v in kernels.items() if not n.startswith("encoder/"))
  assert translation.nominal_flops(fixed, sums) == 6 * (encoder * 100 + decoder * 120)
  bahdanau = translation.build(translation.BAHDANAU, 50, CONFIG, seed=0)
  shapes = {n: x.shape for n, x in _named_matrices(bahdanau).items()}
  no_pairs = translation.nominal_flops(bahdanau, sums | {"src_tgt": 0})
  pair = 3 * 2 * (shapes["score/v/kernel"][0] + shapes["score/w_key/kernel"][0])
  assert translation.nominal_flops(bahdanau, sums) == pytest.approx(no_pairs + pair * 1000)
  transformer = translation.build(translation.TRANSFORMER, 50, CONFIG, seed=0)
  width, layers = CONFIG.dim, CONFIG.num_layers
  no_pairs = translation.nominal_flops(transformer, dict.fromkeys(sums, 0) | {"src": 100, "tgt": 120})
  expected = no_pairs + 3 * 4 * width * layers * (900 + 1300 + 1000)
  assert translation.nominal_flops(transformer, sums) == pytest.approx(expected)
  assert no_pairs == pytest.approx(
    6 * sum(v * (100 if n.startswith("encoder/") else 120) for n, v in _sizes(transformer).items())
    + 6 * 50 * width * 120
  )  # the tied embedding as the output layer, per target token


def _named_matrices(model):
  leaves = jax.tree.leaves_with_path(nnx.state(model, nnx.Param))
  return {"/".join(path_names(p)): x for p, x in leaves if x.ndim >= 2 and not path_names(p)[-1] == "embedding"}


def _sizes(model):
  return {n: x.size for n, x in _named_matrices(model).items()}


def test_label_smoothing_reaches_the_loss(corpus):
  model = translation.build(translation.LUONG, len(corpus.subwords), CONFIG, seed=0)
  batch = {
    k: jnp.asarray(v) for k, v in translation.make_batch_fn(corpus.train, CONFIG, seed=0)(0, slice(None)).items()
  }
  logits, _ = model(batch["src"], batch["tgt_in"], batch["src_mask"])
  smoothed, _ = teacher_forced_loss(model, batch, label_smoothing=0.1)
  expected, _ = token_cross_entropy(logits, batch["tgt_out"], batch["tgt_mask"], label_smoothing=0.1)
  np.testing.assert_allclose(smoothed, expected, rtol=1e-6)
  assert float(smoothed) != float(teacher_forced_loss(model, batch)[0])  # the option is not dropped


def test_batches_depend_on_seed_and_step_alone_and_cover_each_epoch(corpus):
  config = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, batch_size=4))
  batch_fn = translation.make_batch_fn(corpus.train, config, seed=3)
  again = translation.make_batch_fn(corpus.train, config, seed=3)
  for step in (0, 5, 2, 40):  # any order, as a resumed run asks
    np.testing.assert_array_equal(batch_fn(step, slice(None))["src"], again(step, slice(None))["src"])
    assert batch_fn(step, slice(None))["src"].shape[1] % config.pad_multiple == 0
  per_epoch = len(translation.epoch_batches(corpus.train, 4, 3, 0))
  assert per_epoch == len(corpus.train) // 4  # whole batches only: one short remainder is left out
  seen = np.concatenate(translation.epoch_batches(corpus.train, 4, 3, 0))
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
  assert weights.shape == ((CONFIG.num_layers, *expected_shape) if name == translation.TRANSFORMER else expected_shape)
  if name != translation.FIXED:  # the fixed-context model has no attention (zeros)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
  else:
    assert not weights.any()


def test_config_errors_name_the_field():
  with pytest.raises(ValueError, match=r"models: unknown \['GRU'\]"):
    dataclasses.replace(CONFIG, models=("GRU",)).check()
  with pytest.raises(ValueError, match=r"dim \(10\) must be a multiple of 2 x num_heads \(4\)"):
    dataclasses.replace(CONFIG, dim=10).check()
  with pytest.raises(ValueError, match="beam_size"):
    dataclasses.replace(CONFIG, beam_size=0).check()
  with pytest.raises(ValueError, match="learning_rates"):
    dataclasses.replace(CONFIG, learning_rates=(1e-3, float("nan"))).check()
  with pytest.raises(ValueError, match="transformer_norms"):
    dataclasses.replace(CONFIG, transformer_norms=("middle",)).check()
  with pytest.raises(ValueError, match=r"transformer_norms must name one layout when learning_rates is \(\)"):
    dataclasses.replace(CONFIG, learning_rates=(), transformer_norms=("pre", "post")).check()
  with pytest.raises(ValueError, match="learning_rates must hold at least 4"):
    dataclasses.replace(CONFIG, learning_rates=(1e-3,)).check()  # one rate is not a grid: () gives train's
  with pytest.raises(ValueError, match="patience"):
    dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, eval_every=0)).check()


def test_a_familys_journal_ignores_only_the_other_familys_fields(tmp_path):
  config = dataclasses.replace(CONFIG, out=str(tmp_path))

  def fingerprint(family, **change):
    return translation.journal(dataclasses.replace(config, **change), family).fingerprint

  rnn, transformer = fingerprint("RNN"), fingerprint(translation.TRANSFORMER)
  assert fingerprint("RNN", dim=16, transformer_norms=("post",)) == rnn  # the Transformer's own fields
  assert fingerprint(translation.TRANSFORMER, hidden_features=16) == transformer  # the RNNs' own field
  assert fingerprint("RNN", hidden_features=16) != rnn and fingerprint(translation.TRANSFORMER, dim=16) != transformer
  shared = {"vocab_size": 100, "train": dataclasses.replace(config.train, learning_rate=0.5)}
  assert fingerprint("RNN", **shared) != rnn and fingerprint(translation.TRANSFORMER, **shared) != transformer
  assert fingerprint("RNN", seeds=(5,), models=(translation.FIXED,)) == rnn  # selection fields
  matched = fingerprint(translation.BAHDANAU_MATCHED)  # a family of its own: its width and the embedding
  assert fingerprint("RNN", bahdanau_matched_features=16) == rnn
  assert fingerprint(translation.TRANSFORMER, bahdanau_matched_features=16) == transformer
  assert fingerprint(translation.BAHDANAU_MATCHED, bahdanau_matched_features=16) != matched
  assert fingerprint(translation.BAHDANAU_MATCHED, embed_dim=16) != matched
  assert fingerprint(translation.BAHDANAU_MATCHED, hidden_features=16, dim=16) == matched
  assert fingerprint(translation.BAHDANAU_MATCHED, **shared) != matched


def test_the_second_bahdanau_has_the_fixed_contexts_parameters_within_a_thousandth():
  """At the long run's widths (the defaults) the matched Bahdanau's count is the fixed context's to
  0.1%; the first Bahdanau's is 15% larger (the comparison the matched one corrects)."""
  config = translation.CONFIGS["long"][1]
  count = {name: count_params(translation.build(name, 2000, config, seed=0)) for name in translation.MODELS}
  assert abs(count[translation.BAHDANAU_MATCHED] / count[translation.FIXED] - 1) < 1e-3
  assert count[translation.BAHDANAU] / count[translation.FIXED] > 1.15


def test_a_runs_workdir_survives_renames_and_moves_and_differs_by_config(tmp_path):
  """The fit workdir of a seed's run is named by its record (harness.workdirs), which holds the
  family journal's fingerprint: a moved out or workdir, other selections and the renamed knobs keep
  it (the long run resumes); a changed width, seed or rate does not (its own workdir, none emptied)."""
  config = dataclasses.replace(CONFIG, out=str(tmp_path))
  choice = {"norm": "-", "learning_rate": 0.01, "valid_loss": 4.0, "seconds": 12.0}

  def workdir(seed=0, chosen=choice, **change):
    journal = translation.journal(dataclasses.replace(config, **change), "RNN")
    return workdirs.run_workdir(tmp_path, "luong-seed0", translation.run_record("L", seed, chosen, journal))

  same = workdir()
  assert workdir(out=str(tmp_path / "elsewhere"), workdir="/moved", seeds=(4,), models=(translation.FIXED,)) == same
  assert workdir(chosen={**choice, "seconds": 99.0}) == same  # a pilot's seconds do not identify the run
  assert workdir(hidden_features=CONFIG.hidden_features + 8) != same
  assert workdir(seed=1) != same and workdir(chosen={**choice, "learning_rate": 0.02}) != same


class Stop(Exception):
  """Raised by a pilot the journal does not hold: the next pilot the sweep would train."""


def test_the_long_runs_journal_reads_back_the_same_pilots_choice_and_next_pilot(tmp_path, monkeypatch):
  """The first 10 lines of results/translation.runs.jsonl (tests/fixtures/README.md) through
  harness.sweep: the pilots, choice and next pilots the code that wrote them gives (checked on
  that code, 5519b93), so the running `long` run resumes without training a pilot again."""
  shutil.copy(FIXTURES / "translation.runs.head.jsonl", tmp_path / "translation.runs.jsonl")
  entries = [json.loads(line) for line in (FIXTURES / "translation.runs.head.jsonl").read_text().splitlines()]
  records = {entry["key"]: entry["record"] for entry in entries}
  config = dataclasses.replace(translation.CONFIGS["long"][1], out=str(tmp_path))
  asked = []

  def pilot(name, norm, rate, corpus, config):
    asked.append((name, norm, rate))
    raise Stop

  monkeypatch.setattr(translation, "pilot", pilot)
  journal = translation.journal(config, "RNN")
  assert journal.fingerprint == entries[0]["fingerprint"] and len(journal.done) == 10
  fixed = translation.tune(translation.FIXED, None, config, journal, Runs(4))
  rates = ("0.0003", "0.001", "0.003", "0.01", "0.0333333", "0.111111")  # the grid, then two past its edge
  assert list(fixed.pilots) == [records[f"pilot|{translation.FIXED}|-|{rate}"] for rate in rates]
  assert fixed.choice == records[f"pilot|{translation.FIXED}|-|0.0333333"] and not asked
  assert fixed.seed_key(0) == f"{translation.FIXED}|0|-|0.0333333"  # the key of its seed-0 run
  next_pilots = {  # Bahdanau's best (1e-2) is the grid's edge: one step past it; the others start
    translation.BAHDANAU: ("-", 1e-2 * 1e-2 / 3e-3),
    translation.LUONG: ("-", 3e-4),
    translation.TRANSFORMER: ("pre", 3e-4),
  }
  for name, first in next_pilots.items():
    with pytest.raises(Stop):
      translation.tune(name, None, config, translation.journal(config, translation.family(name)), Runs(8))
    assert asked.pop() == (name, *first) and not asked  # every journaled pilot read back, not trained


# default's fingerprints as the code before issue #29's renames gave them (182130e); no default run is committed
DEFAULT_FINGERPRINTS = {"RNN": "c373f8fe20e98cfe", translation.TRANSFORMER: "8359ffb7021ca3cc"}


@pytest.mark.parametrize("family", ["RNN", translation.TRANSFORMER])
def test_the_knobs_renamed_since_runs_were_journaled_keep_their_fingerprints(family, tmp_path):
  """Issue #29 renamed the Config's knobs (RENAMED): each family's journal fingerprints them under
  their old names, so the long run resumes from its committed journal (results/translation.runs.jsonl,
  read here, never written: every line of the family's) and default's fingerprints are the old code's."""
  lines = (report.RESULTS / "translation.runs.jsonl").read_text().splitlines()
  committed = {entry["fingerprint"] for entry in map(json.loads, lines) if family_of(entry["key"]) == family}

  def fingerprint(name):
    return translation.journal(dataclasses.replace(translation.CONFIGS[name][1], out=str(tmp_path)), family).fingerprint

  assert committed == {fingerprint("long")}
  assert fingerprint("default") == DEFAULT_FINGERPRINTS[family]


def family_of(key: str) -> str:
  """The family of a journaled run by its key ("pilot|NAME|norm|rate" or "NAME|seed|norm|rate")."""
  return translation.family(key.split("|")[key.startswith("pilot|")])


def test_the_renamed_knobs_old_flags_are_refused_by_name(capsys):
  """tests/test_experiments.py checks the rest; the smoke config's dim of 8 takes 2 heads at most."""
  for old in ("--heads", "--dropout"):
    with pytest.raises(SystemExit):
      cli.parse(translation.CONFIGS, ["smoke", old, "2"])
    assert f"Unrecognized options: {old}" in capsys.readouterr().err
  config = cli.parse(translation.CONFIGS, ["smoke", "--num-heads", "1", "--dropout-rate", "0.1"])
  assert (config.num_heads, config.dropout_rate) == (1, 0.1)


def test_the_validation_loss_is_traced_once_per_model_structure_and_batch_shape(corpus, monkeypatch):
  traced = []

  def counted(model, batch, **options):
    traced.append(batch["src"].shape)
    return teacher_forced_loss(model, batch, **options)

  monkeypatch.setattr(translation, "teacher_forced_loss", counted)
  config = dataclasses.replace(CONFIG, embed_dim=6, hidden_features=6)  # a structure no other test compiles
  valid_loss = translation.valid_loss_fn(corpus, config)
  model = translation.build(translation.LUONG, len(corpus.subwords), config, seed=0)
  first = valid_loss(model)
  shapes = len(traced)
  assert shapes == len(set(traced)) >= 1  # each batch shape traced once
  assert valid_loss(model) == first
  other = translation.build(translation.LUONG, len(corpus.subwords), config, seed=1)  # another model, same structure
  assert valid_loss(other) != first
  assert len(traced) == shapes  # no evaluation traced (or compiled) the step again
  whole = translation.pairs_batch(corpus.valid, config.pad_multiple)  # every pair in one batch: the reference
  loss, _ = teacher_forced_loss(model, {k: jnp.asarray(v) for k, v in whole.items()})
  np.testing.assert_allclose(first, float(loss), rtol=1e-5)


LARGE = translation.CONFIGS["large"][1]
LARGE_PARAMETERS = {  # at vocabulary 8000; the papers' widths, not matched
  translation.FIXED: 78_920_000,  # 4 x 1000 LSTM layers each side, embedding 620
  translation.BAHDANAU: 69_383_000,  # 1000 per encoder direction, decoder 1000, embedding 620
  translation.TRANSFORMER: 48_236_544,  # the 2017 base: 6 + 6 layers, 512 wide, 8 heads, feed-forward 2048
}


def test_the_large_config_trains_three_models_at_one_given_rate_without_pilots(tmp_path, monkeypatch):
  config = dataclasses.replace(LARGE, out=str(tmp_path)).check()
  assert config.models == (translation.FIXED, translation.BAHDANAU, translation.TRANSFORMER)
  assert config.seeds == (0,) and config.learning_rates == () and config.patience == 0

  def pilot(name, norm, rate, corpus, config):
    raise Stop

  monkeypatch.setattr(translation, "pilot", pilot)
  for name in config.models:
    family = translation.TRANSFORMER if name == translation.TRANSFORMER else "RNN"
    plan = Runs(1)
    tuning = translation.tune(name, None, config, translation.journal(config, family), plan)
    assert tuning.choice == {"norm": tuning.variant, "learning_rate": 1e-3, "given": True} and plan.count == 0
    variant = "pre" if name == translation.TRANSFORMER else "-"
    assert tuning.seed_key(0) == f"{name}|0|{variant}|0.001"  # the key a pilot-chosen 1e-3 gets


def _small_parameters(abstract):
  """The parameters of an abstract model (`nnx.eval_shape`), drawn N(0, 0.02^2) by numpy. The
  model's own initializers are slow at these widths on the loaded 2-core machine (the 1000-wide
  LSTMs' orthogonal kernels 80-95 s op by op, the Transformer's under nnx.jit 2 minutes of
  compiling); the tests above run them at small widths."""
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda x: jnp.asarray(0.02 * rng.standard_normal(x.shape, np.float32)), abstract)


@pytest.mark.parametrize("name", LARGE_PARAMETERS)
def test_the_large_config_builds_and_trains_a_step_of_each_model_at_the_papers_widths(name):
  """Each model at large's widths (parameters: LARGE_PARAMETERS), built on abstract shapes, then
  one step of the experiment's own training (fit's step with its loss, and the optimizer and
  schedule of its train config at its rate; the Transformer's dropout on) compiled and run on one
  device on a batch of 2 verse pairs of a few tokens, padded to 8 tokens, not large's 64, to stay
  quick on a CPU (padding is masked). Small weights give near-uniform logits: the loss is the
  cross-entropy of the 8000-way output, about ln 8000."""
  assert name in LARGE.models
  config = dataclasses.replace(LARGE, pad_multiple=8, train=dataclasses.replace(LARGE.train, batch_size=2))
  abstract = nnx.eval_shape(lambda: translation.build(name, config.vocab_size, config, seed=0))
  assert count_params(abstract) == LARGE_PARAMETERS[name]
  graphdef, params, rest = split_model(abstract)
  tx = build_optimizer(translation.train_config(config, 0, config.train.learning_rate, pilot=False))
  train_step = make_train_step(graphdef, rest, translation.training_loss(config), tx)
  pairs = [([5, 6, 7, 8], [9, 10, 11]), ([12, 13], [14, 15, 16, 17, config.vocab_size - 1])]
  batch = {k: jnp.asarray(v) for k, v in translation.make_batch_fn(pairs, config, seed=0)(0, slice(None)).items()}
  assert batch["tgt_out"].shape == (2, 8)
  state, metrics = train_step(init_state(_small_parameters(params), tx, seed=0), batch)
  assert int(state.step) == 1 and bool(metrics["applied"]) and math.isfinite(float(metrics["global_norm"]))
  assert float(metrics["loss"]) == pytest.approx(math.log(config.vocab_size), abs=0.05)
