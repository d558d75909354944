"""experiments.init_in_training's tuned path (harness.sweep): each variant's rate on each task chosen
by pilots scored on validation sequences, and every seed trained at it."""

import json

import pytest

from experiments import init_in_training
from harness import cli
from tests.helpers import chosen_rate, rerun_from_the_journal

GRID = ["--learning-rates", "1e-3", "3e-3", "1e-2", "3e-2"]


def test_the_tuned_path_trains_each_seed_at_the_rate_its_pilots_chose_per_task(tmp_path, monkeypatch):
  tuned = ["smoke", "--variants", "LSTM, forget bias 0", *GRID, "--extend-grid", "0", "--out", str(tmp_path)]
  init_in_training.main(tuned)  # smoke's pilots: 2 steps
  data = json.loads((tmp_path / "init_in_training.json").read_text())
  assert set(data["tuning"]) == {"LSTM, forget bias 0, copy", "LSTM, forget bias 0, adding"}
  page = (tmp_path / "init_in_training.md").read_text()
  row = next(line for line in page.splitlines() if line.startswith("| LSTM, forget bias 0 |"))  # the results table's
  for task in init_in_training.TASK_NAMES:
    tuning = data["tuning"][f"LSTM, forget bias 0, {task}"]
    chosen = chosen_rate(tuning, [1e-3, 3e-3, 1e-2, 3e-2], "valid_loss")
    assert len(tuning["pilots"]) == 4 and all(p["train_valid_overlap"] == 0 for p in tuning["pilots"])  # extend 0
    (run,) = [r for r in data["runs"] if r["task"] == task]
    assert run["learning_rate"] == chosen and f"| {chosen:g} |" in row
    assert f"LSTM, forget bias 0, {task}: peak lr {chosen:g} (valid_loss" in page
  assert "## Learning-rate pilots" in page
  rerun_from_the_journal(init_in_training.main, tuned, monkeypatch, init_in_training, "train_and_test")
  again = json.loads((tmp_path / "init_in_training.json").read_text())
  assert again["tuning"] == data["tuning"] and again["runs"] == data["runs"]


@pytest.mark.parametrize(
  "args,message",
  [
    (["--learning-rates", "1e-3", "2e-3", "4e-3", "8e-3"], r"learning_rates must span at least 10x"),
    ([*GRID, "--pilot-steps", "4"], r"pilot_steps must be an integer in \[2, 3\]"),
    ([*GRID, "--extend-grid", "-1"], "extend_grid must be an integer >= 0"),
  ],
)
def test_a_bad_tuning_setting_is_refused_before_any_work(args, message):
  with pytest.raises(ValueError, match=message):
    cli.parse(init_in_training.CONFIGS, ["smoke", *args])


def test_each_run_records_its_budget_and_convergence_and_the_tables_show_them(tmp_path):
  init_in_training.main(["smoke", "--out", str(tmp_path)])  # H=4, D=4, 3 steps of batch 8
  data = json.loads((tmp_path / "init_in_training.json").read_text())
  lstm_copy = next(r for r in data["runs"] if r["model"] == "LSTM, forget bias 0" and r["task"] == "copy")
  # by hand: input kernel 9 x 16, recurrent 4 x 16, bias 16 (224, every step); readout 4 x 8 + 8 (40, once per
  # sequence of D + 1 = 5 steps)
  assert lstm_copy["budget"]["parameters"] == 264
  assert lstm_copy["budget"]["training_tokens"] == 3 * 8 * 5
  assert lstm_copy["budget"]["flops_per_token"] == 6 * 224 + 6 * 40 / 5
  assert 0 < lstm_copy["budget"]["train_seconds"]
  judged = [r["convergence"] for r in data["runs"]]
  assert all(c["converged"] in (True, False) and c["threshold"] == 0.05 for c in judged)
  page = (tmp_path / "init_in_training.md").read_text()
  assert "| copy: converged |" in page and "## Budget and convergence of each run" in page
  assert "| LSTM, forget bias 0 | copy | 264 | 120 |" in page
