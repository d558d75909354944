"""The tuning protocol (harness.sweep): its grid is checked before any work, the pilots extend past
the grid's edge while the best sits on it, the choice is the lowest validation score, and pilots and
seeds are journaled, so a killed sweep resumes without training a pilot twice."""

import dataclasses
import math
import re

import pytest

from harness import sweep
from harness.journal import Journal
from harness.runs import Runs
from seqjax.train import TrainConfig

GRID = (1e-3, 3e-3, 1e-2, 3e-2)


@dataclasses.dataclass(frozen=True)
class Config:  # what a Journal fingerprints: an experiment's config
  out: str
  pilot_steps: int = 10


def bowl(best: float, diverge_above: float = math.inf):
  """A pilot whose validation score is lowest at rate `best` (a parabola in log rate) and which
  diverges (None) above `diverge_above`; it logs each (variant, rate) it trains."""
  trained = []

  def pilot(variant: str, rate: float) -> dict:
    trained.append((variant, rate))
    score = None if rate > diverge_above else 1.0 + math.log10(rate / best) ** 2
    return {"valid_loss": score, "rate_seen": rate}

  return pilot, trained


def tuned(tmp_path, pilot, **options):
  journal = Journal("sweep", Config(str(tmp_path)), fields=("pilot_steps",))
  plan = Runs(len(sweep.grid(options.get("learning_rates", GRID), options.get("variants", ("-",)))))
  options = {"learning_rates": GRID, "seed": 0, "score": "valid_loss"} | options
  return sweep.tune("LSTM", pilot, journal, plan, **options), plan, journal


@pytest.mark.parametrize(
  "rates,message",
  [
    ((1e-3, 3e-3, 1e-2), r"at least 4 learning rates, got 3"),
    ((1e-3, 2e-3, 4e-3, 8e-3), r"span at least 10x \(largest / smallest\), got 8x"),
    ((1e-3, 1e-2, 3e-3, 3e-2), "strictly increasing"),
    ((1e-3, 3e-3, 3e-3, 3e-2), "strictly increasing"),
    ((1e-3, 2e-3, 3e-3, 1e-2), r"log-spaced .* got ratios 2, 1.5, 3.33"),
    ((1e-3, 3e-3, float("nan"), 3e-2), "finite numbers > 0"),
    ((0.0, 3e-3, 1e-2, 3e-2), "finite numbers > 0"),
    ((True, 3e-3, 1e-2, 3e-2), "finite numbers > 0"),
  ],
)
def test_a_grid_not_log_spaced_over_10x_in_4_rates_is_refused_by_name(rates, message):
  with pytest.raises(ValueError, match=r"^learning_rates must .*" + message):
    sweep.check_grid(rates)


def test_the_protocols_grids_pass():
  for rates in (GRID, (3e-4, 1e-3, 3e-3, 1e-2), (1e-4, 1e-3, 1e-2, 1e-1), (1, 2, 4, 8, 16)):
    sweep.check_grid(rates)


def test_the_best_rate_on_the_grids_edge_adds_a_pilot_one_grid_step_further():
  assert sweep.beyond_edge([("-", 1e-3), ("-", 3e-3), ("-", 1e-2)], ("-", 1e-2)) == pytest.approx(1e-2 / 3e-3 * 1e-2)
  assert sweep.beyond_edge([("-", 1e-3), ("-", 3e-3), ("-", 1e-2)], ("-", 1e-3)) == pytest.approx(1e-3 / 3)
  assert sweep.beyond_edge([("-", 1e-3), ("-", 3e-3), ("-", 1e-2)], ("-", 3e-3)) is None
  layouts = [("post", 1e-3), ("post", 3e-3), ("pre", 3e-4), ("pre", 1e-3)]
  assert sweep.beyond_edge(layouts, ("post", 1e-3)) == pytest.approx(1e-3 / 3)  # post's own edge, not pre's


def test_the_choice_is_the_lowest_score_never_a_diverged_one():
  assert sweep.choose([3.0, 2.0, 2.0, 5.0]) == 1  # the first of equals
  assert sweep.choose([None, float("nan"), float("inf"), 4.0, -math.inf]) == 3
  with pytest.raises(FloatingPointError, match="every pilot diverged"):
    sweep.choose([None, float("nan")])


def test_pilots_extend_past_the_top_edge_until_the_best_is_bracketed(tmp_path):
  pilot, trained = bowl(best=0.1)  # above the grid: two steps past 3e-2 (9e-2, then 0.27)
  tuning, plan, _ = tuned(tmp_path, pilot, extend=3)
  assert [rate for _, rate in trained] == pytest.approx([*GRID, 9e-2, 0.27])
  assert tuning.learning_rate == pytest.approx(9e-2) and tuning.choice["rate_seen"] == tuning.learning_rate
  assert plan.total == plan.count == 6  # each extension announced as a run
  assert tuning.past_the_grid == tuple(trained[4:])
  record = tuning.record()
  assert record["grid"] == list(GRID) and record["past_the_grid"] == [list(pair) for pair in trained[4:]]
  assert [p["learning_rate"] for p in record["pilots"]] == [rate for _, rate in trained]
  assert [p["valid_loss"] for p in record["pilots"]] == [p["valid_loss"] for p in tuning.pilots]
  assert record["chosen"] == {"variant": "-", "learning_rate": tuning.learning_rate} and not record["on_edge"]
  assert tuning.line() == "LSTM: peak lr 0.09 (valid_loss 1.002), chosen of 6 pilots over 0.001-0.03, 2 past the grid"


def test_pilots_extend_past_the_bottom_edge_and_stop_at_the_extension_budget(tmp_path):
  pilot, trained = bowl(best=1e-5)
  tuning, plan, _ = tuned(tmp_path, pilot, extend=2)
  assert [rate for _, rate in trained] == pytest.approx([*GRID, 1e-3 / 3, 1e-3 / 9])
  assert tuning.learning_rate == pytest.approx(1e-3 / 9) and plan.total == 6
  assert tuning.on_edge and tuning.line().endswith("; on the edge of the rates tried: the best may lie further out")
  (tmp_path / "none").mkdir()
  pilot, trained = bowl(best=1e-5)
  assert tuned(tmp_path / "none", pilot, extend=0)[0].learning_rate == 1e-3 and len(trained) == 4


def test_a_best_rate_inside_the_grid_adds_no_pilot_and_diverged_pilots_are_passed_over(tmp_path):
  pilot, trained = bowl(best=3e-2, diverge_above=2e-2)  # the best rate diverges: the largest finite is chosen
  tuning, _, _ = tuned(tmp_path, pilot)
  assert tuning.learning_rate == 1e-2 and tuning.pilots[-1]["valid_loss"] is None
  assert len(trained) == 4  # 1e-2 is not the grid's edge: 3e-2 was tried


def test_each_variant_is_piloted_over_the_grid_and_the_best_variants_edge_is_extended(tmp_path):
  scores = {"pre": 2.0, "post": 1.0}

  def pilot(variant, rate):
    return {"valid_loss": scores[variant] - rate}  # lower at larger rates, post better

  tuning, plan, _ = tuned(tmp_path, pilot, variants=("pre", "post"), extend=1)
  assert tuning.tried == (*sweep.grid(GRID, ("pre", "post")), ("post", pytest.approx(9e-2)))
  assert (tuning.variant, plan.total) == ("post", 9)
  assert tuning.seed_key(2) == "LSTM|2|post|0.09"


def test_a_killed_sweep_resumes_from_its_journal_without_training_a_pilot_twice(tmp_path):
  pilot, trained = bowl(best=0.1)

  def killed(variant, rate):
    if len(trained) == 5:
      raise KeyboardInterrupt  # the kill, while the sixth pilot trains
    return pilot(variant, rate)

  with pytest.raises(KeyboardInterrupt):
    tuned(tmp_path, killed, extend=3)
  done = list(trained)
  tuning, plan, journal = tuned(tmp_path, pilot, extend=3)
  assert trained[len(done) :] == [("-", pytest.approx(0.27))]  # only the pilot the kill interrupted
  assert plan.reused == 5 and journal.resumed == 5
  again, _, _ = tuned(tmp_path, lambda v, r: pytest.fail("a journaled pilot was trained again"), extend=3)
  assert again == tuning


def test_seeds_train_at_the_chosen_rate_journaled_under_their_key(tmp_path):
  pilot, _ = bowl(best=3e-3)
  tuning, plan, journal = tuned(tmp_path, pilot, key="LSTM|builder|fingerprint")
  assert tuning.seed_key(1) == "LSTM|builder|fingerprint|1|-|0.003"
  plan.total += 3
  records = [sweep.train_seed(tuning, s, lambda s=s: {"seed": s}, journal, plan) for s in (0, 1, 2)]
  assert records == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
  assert journal.done[tuning.seed_key(2)] == {"seed": 2} and "pilot|LSTM|builder|fingerprint|-|0.003" in journal.done
  again = sweep.train_seed(tuning, 1, lambda: pytest.fail("trained again"), journal, plan)
  assert again == {"seed": 1}


def test_a_pilot_without_its_score_and_bad_options_are_refused(tmp_path):
  with pytest.raises(KeyError, match=r"holds no score 'valid_loss': \['loss'\]"):
    tuned(tmp_path, lambda v, r: {"loss": 1.0})
  with pytest.raises(ValueError, match="learning_rates must hold at least 4"):
    tuned(tmp_path, bowl(1e-3)[0], learning_rates=(1e-3, 1e-2))
  with pytest.raises(ValueError, match="variants must name at least one variant, each once"):
    tuned(tmp_path, bowl(1e-3)[0], variants=("pre", "pre"))
  with pytest.raises(ValueError, match="extend must be an integer >= 0"):
    tuned(tmp_path, bowl(1e-3)[0], extend=-1)


def test_fewer_seeds_than_the_protocol_asks_are_noted():
  assert sweep.seeds_note((0, 1, 2)) == ""
  assert sweep.seeds_note((0,)) == " (1 seed: the protocol asks 3)"


def test_a_pilot_budget_outside_the_warmup_and_the_run_is_refused_by_name():
  train = TrainConfig(steps=10, warmup_steps=3)
  sweep.check_pilots(4, 0, train)
  sweep.check_pilots(10, 2, train)
  for steps in (3, 11, 4.0, True):
    with pytest.raises(
      ValueError, match=r"^pilot_steps must be an integer in \[4, 10\] .* got " + re.escape(repr(steps))
    ):
      sweep.check_pilots(steps, 2, train)
  with pytest.raises(ValueError, match=r"pilot_steps must be an integer in \[2, 10\]"):
    sweep.check_pilots(1, 2, TrainConfig(steps=10))
  with pytest.raises(ValueError, match=r"^extend_grid must be an integer >= 0, got -1"):
    sweep.check_pilots(4, -1, train)


def test_a_run_at_a_configured_rate_shares_its_journal_key_with_a_run_tuned_to_that_rate(tmp_path):
  pilot, _ = bowl(best=3e-3)
  tuning, plan, journal = tuned(tmp_path, pilot)
  plan.total += 2
  record = sweep.train_at("LSTM", "LSTM", 0, "-", 3e-3, lambda: {"seed": 0}, journal, plan)
  assert journal.done["LSTM|0|-|0.003"] == record == {"seed": 0}
  assert sweep.train_seed(tuning, 0, lambda: pytest.fail("trained again"), journal, plan) == record
  assert plan.reused == 1


def test_the_pilot_table_has_a_row_per_pilot_with_its_score_and_the_choice(tmp_path):
  pilot, _ = bowl(best=1e-2, diverge_above=2e-2)
  tuning, _, _ = tuned(tmp_path, pilot)
  rows = sweep.pilot_rows({"LSTM, copy": tuning}, "validation loss")
  assert rows[0] == {"model": "LSTM, copy", "peak lr": "0.001", "validation loss": "2", "chosen": ""}
  assert [row["chosen"] for row in rows] == ["", "", "yes", ""] and rows[3]["validation loss"] == "diverged"
  (tmp_path / "layouts").mkdir()
  layouts, _, _ = tuned(tmp_path / "layouts", lambda v, r: {"valid_loss": r}, variants=("pre", "post"), extend=0)
  assert [(row["variant"], row["chosen"]) for row in sweep.pilot_rows({"GPT": layouts}, "loss")][:2] == [
    ("pre", "yes"),
    ("pre", ""),
  ]
