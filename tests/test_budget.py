"""harness.budget: a run's budget, and its `converged` flag judged on synthetic validation curves
(flat, still falling, noisy, and one a cosine schedule flattens only by annealing)."""

import jax
import numpy as np
import optax
import pytest

from harness.budget import (
  budget,
  budget_and_convergence,
  budget_cells,
  converged_count,
  convergence,
  decades_criterion,
  in_decades,
  run_cells,
  step_learning_rates,
)
from seqjax.train import TrainConfig

STEPS = 1000
CONSTANT = np.full(STEPS, 1e-3)


def warmup_cosine(peak: float, warmup: int, total: int) -> np.ndarray:
  """optax's warmup + cosine to 0 (fit's "warmup_cosine") at updates 0..total-1."""
  with jax.numpy_dtype_promotion("standard"):
    return np.asarray(optax.warmup_cosine_decay_schedule(0.0, peak, warmup, total, 0.0)(np.arange(total)), float)


EVALS = np.arange(10, STEPS + 1, 10)  # evaluations every 10 steps


def curve(values) -> list[tuple[int, float]]:
  return [(int(s), float(v)) for s, v in zip(EVALS, values, strict=True)]


def test_budget_records_nominal_flops_as_flops_per_token_times_tokens():
  record = budget(parameters=1000, tokens=400 * 16 * 128, flops_per_token=6 * 900.0, train_seconds=12.5)
  assert record == {
    "parameters": 1000,
    "training_tokens": 819_200,
    "flops_per_token": 5400.0,
    "nominal_flops": 5400.0 * 819_200,
    "train_seconds": 12.5,
  }


@pytest.mark.parametrize(
  "fields,message",
  [
    ({"parameters": 0}, "parameters must be a positive integer, got 0"),
    ({"tokens": 2.5}, "tokens must be a positive integer, got 2.5"),
    ({"flops_per_token": float("nan")}, "flops_per_token must be a finite number >= 0, got nan"),
    ({"train_seconds": -1.0}, "train_seconds must be a finite number >= 0, got -1.0"),
  ],
)
def test_budget_refuses_bad_numbers_by_name(fields, message):
  good = {"parameters": 10, "tokens": 10, "flops_per_token": 1.0, "train_seconds": 1.0}
  with pytest.raises(ValueError, match=message):
    budget(**{**good, **fields})


def test_seconds_a_run_did_not_record_stay_none_and_the_table_says_so():
  timed = budget(parameters=1000, tokens=2000, flops_per_token=6.0, train_seconds=3.0)
  untimed = budget(parameters=1000, tokens=2000, flops_per_token=6.0, train_seconds=None)
  assert untimed["train_seconds"] is None and untimed["nominal_flops"] == 12_000.0
  assert budget_cells([untimed])["train s"] == "not recorded"
  assert budget_cells([timed, untimed])["train s"] == "3.0 [3.0-3.0] (1 of 2 runs)"
  assert budget_cells([timed, None]) == budget_cells([timed])  # a diverged run has no budget
  assert set(budget_cells([None, None]).values()) == {"none: diverged"}
  assert budget_cells([timed, {**timed, "parameters": 123_456, "nominal_flops": 2.5e9}]) == {
    "parameters": "1,000-123,456",
    "training tokens": "2,000",
    "nominal GFLOP": "1.2e-05-2.5",
    "train s": "3.0 [3.0-3.0]",
  }


def test_run_cells_are_the_budget_columns_then_converged_with_or_without_parameters():
  first = budget(parameters=1000, tokens=64, flops_per_token=6e3, train_seconds=2.0)
  second = budget(parameters=1000, tokens=64, flops_per_token=6e3, train_seconds=4.0)
  runs = [{"budget": first, "convergence": {"converged": True}}, {"budget": second, "convergence": {"converged": None}}]
  cells = run_cells(runs)
  assert cells == {**budget_cells([first, second]), "converged": "1 of 2 seeds (1 not judged)"}
  assert list(cells) == ["parameters", "training tokens", "nominal GFLOP", "train s", "converged"]
  assert run_cells(runs, parameters=False) == {k: v for k, v in cells.items() if k != "parameters"}


def test_converged_counts_name_the_runs_not_judged():
  assert converged_count([True, False, True]) == "2 of 3 seeds"
  assert converged_count([True, None, None]) == "1 of 3 seeds (2 not judged)"


def test_a_loss_in_decades_and_a_zero_loss_not_judged():
  assert in_decades([(10, 100.0), (20, 1e-3)]) == [(10, 2.0), (20, -3.0)]
  result = convergence(in_decades(curve(np.r_[np.ones(len(EVALS) - 1), 0.0])), CONSTANT, threshold=0.05)
  assert result["converged"] is None and "not finite at step 1000" in result["criterion"]


def test_the_decades_criterion_states_its_threshold_and_what_the_batches_allow():
  fresh, fixed = decades_criterion(0.05, fresh_batches=True), decades_criterion(0.1, fresh_batches=False)
  assert "less than 0.05 decades" in fresh and "fall 0.25 decades more in as many steps again" in fresh
  assert "less than 0.1 decades" in fixed and "fall 0.5 decades more" in fixed
  assert "estimates held-out loss" in fresh and "held-out" not in fixed and "fixed training set" in fixed


def test_a_flat_curve_has_converged():
  result = convergence(curve(np.full(len(EVALS), 2.0)), CONSTANT, threshold=0.01)
  assert result["converged"] is True and result["improvement"] == 0.0
  assert result["window_steps"] == [800.0, 1000]  # constant rate: the budget's last 20% (and the 20% before)


def test_a_still_falling_curve_has_not_and_its_improvement_is_the_fall_over_one_window():
  falling = 3.0 - 0.001 * EVALS  # 0.2 per 200 steps: the mean of (800, 1000] is 0.2 below that of (600, 800]
  result = convergence(curve(falling), CONSTANT, threshold=0.01)
  assert result["converged"] is False
  assert result["improvement"] == pytest.approx(0.2, rel=1e-9)
  assert "improved by 0.2 (>= 0.01)" in result["criterion"]


@pytest.mark.parametrize("seed", range(20))
def test_noise_below_the_threshold_does_not_decide(seed):
  """Evaluation noise half the threshold: a noisy plateau is converged and a noisy fall is not, for every draw."""
  noise = np.random.default_rng(seed).normal(0.0, 0.005, len(EVALS))
  plateau = 2.0 + 1.0 * np.exp(-EVALS / 50.0) + noise  # flat after the first ~300 steps
  falling = 3.0 - 0.0002 * EVALS + noise  # 0.04 per window: four times the threshold
  assert convergence(curve(plateau), CONSTANT, threshold=0.01)["converged"] is True
  assert convergence(curve(falling), CONSTANT, threshold=0.01)["converged"] is False


def test_a_curve_flattened_only_by_annealing_is_judged_before_the_decay():
  """Progress in proportion to the learning rate: flatter at the end only because the rate nears 0."""
  rates = warmup_cosine(1e-3, 51, STEPS)
  values = 3.0 - 1e3 * np.cumsum(rates)[EVALS - 1] / STEPS  # falls 0.5 in all
  threshold = 0.05
  last = values[(EVALS > 600) & (EVALS <= 800)].mean() - values[EVALS > 800].mean()
  assert 0 < last < threshold  # judged on the budget's last 20% the run would look converged
  result = convergence(curve(values), rates, threshold=threshold)
  split, end = result["window_steps"]
  assert 500 < end < 560 and split == end - 200  # about halfway through the cosine (its midpoint: step 526)
  assert result["converged"] is False and result["improvement"] > 3 * threshold


def test_an_inverse_square_root_decay_is_judged_at_the_end_of_the_run():
  """1/sqrt(step) falls by less than half over the last 40% and stays above a tenth of its peak."""
  steps = np.arange(1, STEPS + 1)
  rates = 1e-3 * np.minimum(steps / 50, np.sqrt(50 / steps))  # warmup 50, then 1/sqrt: 0.22 x the peak at the end
  assert convergence(curve(np.full(len(EVALS), 2.0)), rates, threshold=0.01)["window_steps"] == [800.0, 1000]


def test_a_step_decay_is_judged_before_the_step():
  rates = np.r_[np.full(800, 1e-3), np.full(200, 1e-4)]
  assert convergence(curve(np.full(len(EVALS), 2.0)), rates, threshold=0.01)["window_steps"] == [600.0, 800]


def test_step_learning_rates_of_a_constant_schedule():
  train = TrainConfig(steps=5, learning_rate=3e-3, schedule="constant")
  np.testing.assert_allclose(step_learning_rates(train), np.full(5, 3e-3), rtol=1e-6)


def test_step_learning_rates_follow_fits_schedule_per_update():
  train = TrainConfig(steps=8, learning_rate=1.0, schedule="warmup_cosine", warmup_steps=2, accumulate_steps=2)
  per_update = warmup_cosine(1.0, 2, 4)  # 8 steps of 2 micro-batches: 4 updates
  np.testing.assert_allclose(step_learning_rates(train), np.repeat(per_update, 2), rtol=1e-6)


@pytest.mark.parametrize(
  "points,why",
  [
    ([(100, 2.0), (900, 2.0)], "not judged: a window without an evaluation"),  # nothing in (600, 800]
    ([(700, 2.0), (900, float("nan"))], "not judged: validation is not finite at step 900"),
  ],
)
def test_what_cannot_be_judged_says_why(points, why):
  result = convergence(points, CONSTANT, threshold=0.01)
  assert result["converged"] is None and result["criterion"].startswith(why)


def test_a_rate_annealed_too_early_to_hold_two_windows_is_not_judged():
  rates = np.r_[np.full(300, 1e-3), np.full(700, 1e-5)]  # 300 steps at the full rate: under 2 x 200; then 1%
  result = convergence(curve(np.full(len(EVALS), 2.0)), rates, threshold=0.01)
  assert result["converged"] is None and result["window_steps"] is None
  assert result["criterion"].startswith("not judged: in every span of two windows (400 steps)")


def test_higher_is_better_scores_improve_upwards():
  rising = 0.5 + 0.001 * EVALS
  assert convergence(curve(rising), CONSTANT, threshold=0.01, lower_is_better=False)["converged"] is False
  assert convergence(curve(rising), CONSTANT, threshold=0.01)["converged"] is True  # a loss going up is not improving


@pytest.mark.parametrize(
  "points,rates,options,message",
  [
    ([(900, 1.0), (800, 1.0)], CONSTANT, {}, "curve's steps must increase strictly within 0..1000"),
    ([(1200, 1.0)], CONSTANT, {}, "curve's steps must increase strictly within 0..1000"),
    ([(10.5, 1.0)], CONSTANT, {}, "curve must hold at least one .* integer step"),
    ([(10, "low")], CONSTANT, {}, "curve must hold \\(step, score\\) pairs"),
    ([(10, 1.0)], np.zeros(STEPS), {}, "learning_rates must be one finite rate >= 0 per training step"),
    ([(10, 1.0)], CONSTANT, {"threshold": -0.1}, "threshold must be a finite number >= 0"),
    ([(10, 1.0)], CONSTANT, {"window": 0.0}, "window must be a number in \\(0, 1\\]"),
    ([(10, 1.0)], CONSTANT, {"annealed_below": 1.5}, "annealed_below must be a number in \\(0, 1\\]"),
  ],
)
def test_bad_input_is_refused_by_name(points, rates, options, message):
  with pytest.raises(ValueError, match=message):
    convergence(points, rates, **{"threshold": 0.01, **options})


def test_charlm_records_each_runs_budget_and_convergence():
  from experiments import charlm

  bpc = {50: 4.0, 100: 3.5, 150: 3.3, 200: 3.1, 250: 3.0, 300: 2.95, 350: 2.94, 400: 2.94}
  record = {
    "parameters": 1000,
    "flops_per_token": 5400.0,
    "train_seconds": 80.0,
    "curve": [(step, 0.2 * step, value, 2.0) for step, value in bpc.items()],  # (step, seconds, bits/char, loss)
  }
  added = charlm.budget_and_convergence(record, charlm.TRAIN, 128, threshold=0.01)
  assert added["budget"]["training_tokens"] == 400 * 16 * 128
  assert added["budget"]["nominal_flops"] == 5400.0 * 400 * 16 * 128
  # warmup 20, cosine over 380 steps: the latest 160 steps over which the rate stays >= half its
  # largest value there are those done at 54-213 (rates 0.98 and 0.49 of the peak), so the windows
  # are steps 53-133 and 133-213: the evaluation at 100 against those at 150 and 200
  assert added["convergence"]["window_steps"] == [pytest.approx(133), 213]
  assert added["convergence"]["improvement"] == pytest.approx(3.5 - (3.3 + 3.1) / 2)
  assert added["convergence"]["converged"] is False  # flat at the end, but only as the rate reaches 0


def test_a_run_without_a_curve_is_budgeted_and_not_judged_for_the_reason_given():
  train = TrainConfig(steps=10, batch_size=2, learning_rate=1e-3)
  common = dict(parameters=100, tokens=2000, flops_per_token=600.0, train_seconds=1.5, train=train, threshold=0.01)
  judged = budget_and_convergence(curve=[(5, 2.0), (6, 1.9), (8, 1.5), (10, 1.4)], **common)
  assert judged["budget"] == budget(parameters=100, tokens=2000, flops_per_token=600.0, train_seconds=1.5)
  assert judged["convergence"] == convergence([(5, 2.0), (6, 1.9), (8, 1.5), (10, 1.4)], [1e-3] * 10, threshold=0.01)
  unjudged = budget_and_convergence(curve=None, not_recorded="journaled before runs recorded curves", **common)
  assert unjudged["budget"] == judged["budget"]
  assert unjudged["convergence"]["converged"] is None
  assert unjudged["convergence"]["criterion"] == "not judged: journaled before runs recorded curves"
