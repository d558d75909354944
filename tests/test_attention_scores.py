"""experiments.attention_scores' tuned path (harness.sweep): pilots scored on a validation band of
the training sentences, never a test sentence, and every seed trained at the chosen rate."""

import json
import math

import pytest

from experiments import attention_scores
from harness import cli, synthetic_translation
from tests.helpers import chosen_rate, rerun_from_the_journal

GRID = ["--learning-rates", "1e-3", "3e-3", "1e-2", "3e-2"]


def test_the_validation_band_holds_no_test_sentence_and_no_pilot_training_sentence():
  config = cli.parse(attention_scores.CONFIGS, ["smoke"])
  vocab, train_pairs, test, _ = synthetic_translation.datasets(config.task)
  pilot_pairs, valid_pairs = attention_scores.validation_split(vocab, train_pairs, config)
  sources = lambda pairs: {tuple(source) for source, _ in pairs}  # noqa: E731
  assert valid_pairs and len(valid_pairs) == len(sources(valid_pairs))  # one pair per source
  assert not sources(valid_pairs) & sources(pilot_pairs) and not sources(valid_pairs) & sources(test.pairs)
  assert len(pilot_pairs) + sum(tuple(pair[0]) in sources(valid_pairs) for pair in train_pairs) == len(train_pairs)
  band = (config.task.held_out_percent, config.task.held_out_percent + config.valid_percent)
  for source, _ in valid_pairs:  # the band of the hash that puts the test partition apart, above it
    words = vocab.decode(source)
    assert synthetic_translation.held_out(words, band[1]) and not synthetic_translation.held_out(words, band[0])


def test_the_tuned_path_trains_each_seed_at_the_rate_its_pilots_chose(tmp_path, monkeypatch):
  tuned = ["smoke", "--variants", "Luong dot", *GRID, "--extend-grid", "1", "--out", str(tmp_path)]
  attention_scores.main(tuned)  # smoke's pilots: 2 steps
  data = json.loads((tmp_path / "attention_scores.json").read_text())
  chosen = chosen_rate(data["tuning"]["Luong dot"], [1e-3, 3e-3, 1e-2, 3e-2], "valid_loss")
  assert len(data["tuning"]["Luong dot"]["pilots"]) <= 5  # extend_grid 1
  page = (tmp_path / "attention_scores.md").read_text()
  row = next(line for line in page.splitlines() if line.startswith("| Luong dot |"))  # the results table's
  assert f"| {data['parameters']['Luong dot']:,} | {chosen:g} |" in row  # its lr column
  assert "## Learning-rate pilots" in page and f"Luong dot: peak lr {chosen:g} (valid_loss" in page
  journaled = [json.loads(line)["key"] for line in (tmp_path / "attention_scores.runs.jsonl").read_text().splitlines()]
  assert journaled[-1] == f"Luong dot|0|-|{chosen:g}"  # the seed, at the chosen rate
  rerun_from_the_journal(attention_scores.main, tuned, monkeypatch, synthetic_translation, "train")
  again = json.loads((tmp_path / "attention_scores.json").read_text())
  assert again["tuning"] == data["tuning"] and again["models"] == data["models"]


def test_a_bad_tuning_setting_is_refused_before_any_work():
  with pytest.raises(ValueError, match=r"valid_percent must be an integer in \[1, 50\], got 0"):
    cli.parse(attention_scores.CONFIGS, ["smoke", *GRID, "--valid-percent", "0"])
  with pytest.raises(ValueError, match=r"pilot_steps must be an integer in \[2, 2\]"):
    cli.parse(attention_scores.CONFIGS, ["smoke", *GRID, "--pilot-steps", "3"])
  with pytest.raises(ValueError, match="learning_rates must hold at least 4 learning rates"):
    cli.parse(attention_scores.CONFIGS, ["smoke", "--learning-rates", "1e-3", "1e-2"])


def test_each_run_records_its_budget_and_convergence_and_the_table_shows_them(tmp_path):
  steps = ["--task.train.steps", "5", "--task.train.log-every", "1"]  # 5 steps of 8: judged on step 4 against 5
  attention_scores.main(["smoke", "--variants", "Luong dot", *steps, "--out", str(tmp_path)])
  data = json.loads((tmp_path / "attention_scores.json").read_text())
  (run,) = data["models"]["Luong dot"]
  vocab, train_pairs, _, _ = synthetic_translation.datasets(synthetic_translation.SMOKE)
  source, target = synthetic_translation.padded_lengths(train_pairs)
  # by hand, H = E = 8, V words: encoder LSTM 8 x 32 + 8 x 32 + 32; decoder LSTM (16 x 32 + 8 x 32 + 32),
  # combine 16 x 8, output 8 x V + V; scores and weighted sum 12 x source x 8 per target position
  vocabulary, encoder = len(vocab), 8 * 32 + 8 * 32 + 32
  rest = 16 * 32 + 8 * 32 + 32 + 16 * 8 + 8 * vocabulary + vocabulary
  assert run["budget"]["parameters"] == encoder + rest + 2 * 8 * vocabulary  # and the two embedding tables
  assert run["budget"]["training_tokens"] == 5 * 8 * target
  assert run["budget"]["flops_per_token"] == pytest.approx(6 * encoder * source / target + 6 * rest + 12 * source * 8)
  assert run["budget"]["train_seconds"] == run["train_seconds"] > 0
  losses = dict(run["train_loss"])
  assert run["convergence"]["improvement"] == pytest.approx(math.log10(losses[4]) - math.log10(losses[5]))
  page = (tmp_path / "attention_scores.md").read_text()
  assert "| training tokens | nominal GFLOP | train s | converged |" in page and " of 1 seeds |" in page
