"""What a run shows while it trains: fit's progress bar and where it writes, the experiments' run
headers with their ETA, and warnings labelled with the run that raised them."""

import dataclasses
import logging
import time
import types

from harness import compare, runs
from harness.journal import Journal
from seqjax.train import TrainConfig, fit
from seqjax.train.progress import Progress, postfix
from tests import tiny_lm


def test_fit_shows_evaluation_numbers_and_tokens_per_second_and_says_where_it_writes(tmp_path, capsys):
  config = tiny_lm.config(steps=6, log_every=2, eval_every=4, progress=True, tensorboard=True)
  fit(
    tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, config, workdir=tmp_path, evaluate=lambda m: {"bleu": 1.5}
  )
  printed = capsys.readouterr()
  assert f"metrics in {tmp_path / 'metrics.jsonl'}" in printed.out
  assert f"tensorboard --logdir {tmp_path / 'tensorboard'}" in printed.out
  bar = printed.err.replace("\r", "\n").splitlines()
  final = [line for line in bar if "6/6" in line][-1]
  assert "loss " in final and "grad " in final and " tok/s" in final
  assert "bleu 1.5 (step 6)" in final  # the latest evaluation, with the step it ran at


def test_fit_without_progress_shows_no_bar_and_no_paths(tmp_path, capsys):
  fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(steps=2), workdir=tmp_path)
  printed = capsys.readouterr()
  assert "metrics in" not in printed.out and "step/s" not in printed.err and "compiling" not in printed.err


def test_the_bar_clock_starts_after_the_compiling_step(capsys):
  progress = Progress(total=10, start=2, end=10, enabled=True)
  assert progress.bar.desc == "compiling"
  time.sleep(0.3)  # the first step of the call: compiling
  progress.advance()
  for _ in range(3):
    progress.advance()
  state = progress.bar.format_dict
  assert state["n"] == 6 and state["initial"] == 3  # steps 1-2 were an earlier call's, 3 compiled here
  assert state["elapsed"] < 0.25  # the compilation is not in the bar's time, so not in its rate or ETA
  progress.close()


def test_no_bar_without_steps_or_when_disabled(capsys):
  for progress in (Progress(5, 5, 5, enabled=True), Progress(5, 0, 5, enabled=False)):
    progress.logged(1, {"loss": 1.0}, {})
    progress.advance()
    progress.close()
  assert capsys.readouterr() == ("", "")


def test_the_postfix_names_what_it_shows():
  latest = {"loss": 0.51234, "grad_norm": 0.912, "tokens_per_s": 9310.4}
  evaluation = {"step": 250, "numbers": {"valid_bpc": 2.3114, "valid_bleu": 3.0}}
  assert (
    postfix(latest, evaluation) == "loss 0.5123 | grad 0.912 | 9,310 tok/s | valid_bpc 2.311 | valid_bleu 3 (step 250)"
  )
  assert postfix({"loss": 1.0, "tokens_per_s": None}, {}) == "loss 1"


def fake_clock(monkeypatch):
  """harness.runs' clock, advanced by hand: clock.now += seconds."""
  clock = types.SimpleNamespace(now=0.0)
  monkeypatch.setattr(runs, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
  return clock


def test_each_run_is_announced_with_its_number_and_the_experiments_time_left(monkeypatch, capsys):
  clock = fake_clock(monkeypatch)
  plan = runs.Runs(3)

  def train(seconds):
    clock.now += seconds
    return seconds

  assert plan.run("GRU", 0, lambda: train(10)) == 10
  clock.now += 2  # between runs: evaluation, drawing
  plan.run("GRU", 1, lambda: train(30))
  plan.run("LSTM", 0, lambda: {"score": 1}, reused=True)
  assert capsys.readouterr().out.splitlines() == [
    "[run 1 of 3] GRU, seed 0 | 0s elapsed",
    "[run 2 of 3] GRU, seed 1 | 12s elapsed | about 20s left",  # 2 runs left at the 10 s one run took
    "[run 3 of 3] LSTM, seed 0 | 42s elapsed | about 20s left | read back from the journal",
  ]
  assert (plan.count, plan.reused, plan.seconds) == (3, 1, [10, 30])
  assert plan in runs.started


def test_an_upper_bound_of_runs_says_so(monkeypatch, capsys):
  clock = fake_clock(monkeypatch)
  plan = runs.Runs(4, at_most=True)
  plan.run("CNN", 0, lambda: setattr(clock, "now", 60.0))
  plan.run("CNN", 1, lambda: None)
  assert (
    capsys.readouterr().out.splitlines()[1]
    == "[run 2 of at most 4] CNN, seed 1 | 1m00s elapsed | at most about 3m00s left"
  )


def test_a_run_count_must_be_a_positive_integer():
  for total in (0, -1, 2.0, True):
    try:
      runs.Runs(total)
    except ValueError as error:
      assert "total must be an integer >= 1" in str(error)
    else:
      raise AssertionError(f"Runs({total!r}) was accepted")


def test_warnings_raised_during_a_run_name_the_run(caplog):
  factory = logging.getLogRecordFactory()
  plan = runs.Runs(1)
  logger = logging.getLogger("seqjax.train.trainer")
  with caplog.at_level(logging.WARNING):
    plan.run("IRNN 100% x1.1", 2, lambda: logger.warning("%s gradients: %s", "exploding", ["rnn/kernel"]))
    logger.warning("after the run")
  assert [r.getMessage() for r in caplog.records] == [
    "[IRNN 100% x1.1, seed 2] exploding gradients: ['rnn/kernel']",
    "after the run",
  ]
  assert logging.getLogRecordFactory() is factory


def test_duration_reads_as_minutes_and_hours():
  assert [runs.duration(s) for s in (0.4, 59.6, 61, 3599, 3600, 7322)] == [
    "0s",
    "1m00s",
    "1m01s",
    "59m59s",
    "1h00m",
    "2h02m",
  ]


@dataclasses.dataclass(frozen=True)
class JournaledConfig:
  train: TrainConfig
  out: str


def test_showing_progress_does_not_change_which_runs_a_journal_reads_back(tmp_path):
  fingerprint = lambda train: Journal("exp", JournaledConfig(train, str(tmp_path)), fields=("train",)).fingerprint  # noqa: E731
  quiet, shown = fingerprint(TrainConfig(steps=7, progress=False)), fingerprint(TrainConfig(steps=7, progress=True))
  assert quiet == shown == "cd46034c2639a0f1"  # as journals were written when the experiments set progress=False
  assert fingerprint(TrainConfig(steps=8)) != shown


def test_comparing_results_leaves_out_whether_a_bar_was_shown_and_where_nested_configs_write():
  first = {"config": {"train": {"progress": False, "steps": 3}, "task": {"out": "results"}}, "progress": 1}
  second = {"config": {"train": {"progress": True, "steps": 3}, "task": {"out": "runs/x"}}, "progress": 2}
  found, _ = compare.differences(first, second)
  assert [d.path for d in found] == ["progress"]  # only under "config" is it a setting
