"""experiments.clipping: its model is the Regressor it replaced, number for number, and its tuned
path (harness.sweep) scores pilots on validation sequences, never a training batch, and trains
every seed at the chosen rate."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import clipping
from harness import cli
from harness.long_range_runs import fingerprints
from seqjax.recurrent import StackedRNN
from tests.helpers import chosen_rate, rerun_from_the_journal

GRID = ["--learning-rates", "1e-3", "3e-3", "1e-2", "3e-2"]


def test_the_model_is_the_replaced_regressor_an_rnn_read_at_its_last_step():
  """The Regressor this experiment defined before seqjax.heads.SequencePredictor: its RNN, then its
  readout, drawn from the same rngs in that order (the committed numbers depend on it)."""
  config = cli.parse(clipping.CONFIGS, ["smoke"])
  rngs = nnx.Rngs(3)
  rnn = StackedRNN("rnn_tanh", 2, config.hidden_features, recurrent_gain=config.recurrent_gain, rngs=rngs)
  readout = nnx.Linear(config.hidden_features, 1, rngs=rngs)
  x = jnp.asarray(clipping.adding_batch(0, slice(None), config)["x"])
  np.testing.assert_array_equal(clipping.regressor(config, nnx.Rngs(3))(x), readout(rnn(x)[:, -1]))


def test_the_validation_sequences_are_no_training_batch():
  config = cli.parse(clipping.CONFIGS, ["smoke", "--valid-size", "64", "--train.steps", "50", *GRID])
  valid = clipping.validation_set(config)
  assert valid["x"].shape == (64, config.time, 2)
  np.testing.assert_allclose(valid["y"], (valid["x"][..., 0] * valid["x"][..., 1]).sum(1))
  training = set().union(*(fingerprints(clipping.adding_batch(s, slice(None), config)["x"]) for s in range(50)))
  assert not fingerprints(valid["x"]) & training


def test_the_tuned_path_trains_each_seed_at_the_rate_its_pilots_chose(tmp_path, monkeypatch):
  tuned = ["smoke", *GRID, "--extend-grid", "1", "--out", str(tmp_path)]
  clipping.main(tuned)  # smoke's pilots: 2 steps
  data = json.loads((tmp_path / "clipping.json").read_text())
  assert set(data["tuning"]) == {"no clipping", "clip global norm 1.0"}
  page = (tmp_path / "clipping.md").read_text()
  for name, tuning in data["tuning"].items():
    chosen = chosen_rate(tuning, [1e-3, 3e-3, 1e-2, 3e-2], "valid_mse")
    assert len(tuning["pilots"]) <= 5  # extend_grid 1
    (run,) = [r for r in data["runs"] if (r["clip_norm"] is None) == (name == "no clipping")]
    assert run["learning_rate"] == chosen
    assert f"| {name} | {chosen:g} |" in page and f"{name}: peak lr {chosen:g} (valid_mse" in page
  assert "## Learning-rate pilots" in page
  rerun_from_the_journal(clipping.main, tuned, monkeypatch, clipping, "trained")
  again = json.loads((tmp_path / "clipping.json").read_text())
  assert again["tuning"] == data["tuning"] and again["runs"] == data["runs"]


@pytest.mark.parametrize(
  "args,message",
  [
    (["--learning-rates", "1e-3", "1e-2"], "learning_rates must hold at least 4 learning rates"),
    ([*GRID, "--pilot-steps", "7"], r"pilot_steps must be an integer in \[2, 6\]"),
    ([*GRID, "--extend-grid", "-1"], "extend_grid must be an integer >= 0"),
    ([*GRID, "--valid-size", "0"], "valid_size must be an integer >= 1"),
  ],
)
def test_a_bad_tuning_setting_is_refused_before_any_work(args, message):
  with pytest.raises(ValueError, match=message):
    cli.parse(clipping.CONFIGS, ["smoke", *args])


def test_each_run_records_its_budget_and_convergence_and_the_table_shows_them(tmp_path):
  clipping.main(["smoke", "--out", str(tmp_path)])  # T=8, H=8, 6 SGD steps of batch 32
  data = json.loads((tmp_path / "clipping.json").read_text())
  for run in data["runs"]:
    # by hand: input kernel 2 x 8, recurrent 8 x 8, bias 8 (88, every step); readout 8 x 1 + 1 (once per 8 steps)
    assert run["budget"]["parameters"] == 97 and run["budget"]["training_tokens"] == 6 * 32 * 8
    assert run["budget"]["flops_per_token"] == 6 * 88 + 6 * 9 / 8
    assert run["budget"]["train_seconds"] == run["train_seconds"] > 0
    # windows of 1.2 steps over the last 40% (constant rate): step 4 against steps 5 and 6
    losses = run["losses"]
    assert run["convergence"]["improvement"] == pytest.approx(losses[3] - (losses[4] + losses[5]) / 2)
    assert run["convergence"]["converged"] == (run["convergence"]["improvement"] < 0.005)
  page = (tmp_path / "clipping.md").read_text()
  assert "| parameters | training tokens | nominal GFLOP | train s | converged |" in page
  assert "| 97 | 1,536 |" in page and "of 1 seeds |" in page
