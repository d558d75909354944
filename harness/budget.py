"""What a training run cost and whether it had converged, recorded the same way by every experiment.

`budget`: parameters, training tokens, nominal FLOPs and training seconds. Nominal FLOPs are the
experiment's FLOPs per token (its own count, stated where it is computed) times the tokens
trained on. The usual count, which charlm uses: 6 per matmul parameter per token (2 forward, 4
backward: exact for a weight applied once per token, as a dense layer's, a convolution kernel's
or an RNN's input and recurrent kernels are), plus attention's scores and weighted sum, 12 x
layers x context x width (nanoGPT's); elementwise work (gates, norms, a scan's recurrence) is
not counted, nor are parameters only looked up (embedding tables).

`convergence`: whether validation had stopped improving. The mean validation score over a
window of `window` (default 20%) of the budget is compared with its mean over the window before;
the run is `converged` when it improved by less than `threshold` (in the score's units). Means,
not single evaluations, so that a noisy plateau reads as one. A schedule that anneals the
learning rate to 0 flattens every curve at its end, converged or not, so the two windows are the
latest ones over which the rate stays >= `annealed_below` (default half) of its largest value in
them and >= `floor` (default a tenth) of the run's peak: the run's last 40% with a constant rate
(after any warmup) or an inverse square root decay (which falls by less than half over any 40% of
the run past 2.8 warmups, and below a tenth of its peak only after 100 warmups); with warmup +
cosine to 0 they end about halfway through the decay; with a step decay, before the step.

A loss that spans orders of magnitude (1e-6 to 2 nats) is judged in decades (`in_decades`: log10
of each value), so a threshold means the same relative fall at every scale.
"""

import math
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import report
from seqjax import zoo
from seqjax.attention.multihead import MultiHeadAttention
from seqjax.train import TrainConfig
from seqjax.train.trainer import learning_rate_schedule


def budget(*, parameters: int, tokens: int, flops_per_token: float, train_seconds: float | None) -> dict:
  """One run's budget: parameters, training tokens, FLOPs per token and their product (nominal
  FLOPs), and the training seconds (compilation and evaluation excluded; None: the run did not
  record them, as runs journaled before they were)."""
  for name, value in (("parameters", parameters), ("tokens", tokens)):
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
      raise ValueError(f"{name} must be a positive integer, got {value!r}")
  for name, value in (("flops_per_token", flops_per_token), ("train_seconds", train_seconds)):
    if value is None and name == "train_seconds":
      continue
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not 0 <= value < math.inf:
      raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
  return {
    "parameters": int(parameters),
    "training_tokens": int(tokens),
    "flops_per_token": float(flops_per_token),
    "nominal_flops": float(flops_per_token) * int(tokens),
    "train_seconds": None if train_seconds is None else float(train_seconds),
  }


def budget_and_convergence(
  *,
  parameters: int,
  tokens: int,
  flops_per_token: float,
  train_seconds: float | None,
  curve: Sequence[tuple[int, float]] | None,
  train: TrainConfig,
  threshold: float,
  score: str = "validation",
  not_recorded: str = "the run recorded no curve",
) -> dict:
  """One run's {"budget": `budget`, "convergence": `convergence` of its curve under `train`'s
  schedule}, as every experiment records them. curve: (steps done, score) pairs (already in
  decades where the score is judged so; `in_decades`), None or empty where the run recorded none:
  then not judged, for the reason `not_recorded`."""
  judged = not_judged(not_recorded, threshold)
  if curve:
    judged = convergence(curve, step_learning_rates(train), threshold=threshold, score=score)
  counts = budget(parameters=parameters, tokens=tokens, flops_per_token=flops_per_token, train_seconds=train_seconds)
  return {"budget": counts, "convergence": judged}


def predictor_flops_per_token(model: nnx.Module, length: int) -> float:
  """Nominal training FLOPs per input step of a model that reads `length` steps and answers once
  (`seqjax.heads.SequencePredictor`): 6 per parameter (2 forward, 4 backward) of everything but the
  readout, which every step passes through (an RNN's input and recurrent kernels, a convolution's
  kernels, a Transformer's projections and feed-forward layers; biases and norm scales counted
  too, as charlm counts them); 6 per readout parameter / length (it reads one step per sequence);
  plus, per attention layer, 12 x length x its heads x head width (scores and weighted sum,
  nanoGPT's count, the causal mask's halving not subtracted). Not counted: elementwise work
  (gates, activations, norms, a scan's recurrence)."""
  readout = zoo.count_params(model.readout)
  attention = [module for _, module in nnx.iter_graph(model) if isinstance(module, MultiHeadAttention)]
  return (
    6.0 * (zoo.count_params(model) - readout)
    + 6.0 * readout / length
    + sum(12.0 * length * layer.num_heads * layer.head_dim for layer in attention)
  )


def budget_cells(budgets: list[dict | None]) -> dict[str, str]:
  """A report table's budget columns over runs' `budget` records: parameters, training tokens and
  nominal GFLOP (a range where they differ), and training seconds, mean [range] ("not recorded"
  where no run has them; how many do where only some do). None: a run without a budget (it
  diverged), left out; where no run has one, every cell says so."""
  if not budgets:
    raise ValueError("budget_cells needs at least one run's budget")
  budgets = [b for b in budgets if b is not None]
  if not budgets:
    return dict.fromkeys(("parameters", "training tokens", "nominal GFLOP", "train s"), "none: diverged")

  def number(value: float) -> str:  # three significant digits, no exponent from 1 up
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"

  def span(values: list) -> str:
    low, high = min(values), max(values)
    return number(low) if low == high else f"{number(low)}-{number(high)}"

  seconds = [b["train_seconds"] for b in budgets if b["train_seconds"] is not None]
  timed = report.spread(seconds, ".1f") if seconds else "not recorded"
  timed += f" ({len(seconds)} of {len(budgets)} runs)" if seconds and len(seconds) < len(budgets) else ""
  return {
    "parameters": span([b["parameters"] for b in budgets]),
    "training tokens": span([b["training_tokens"] for b in budgets]),
    "nominal GFLOP": span([b["nominal_flops"] / 1e9 for b in budgets]),
    "train s": timed,
  }


def run_cells(runs: list[dict], *, parameters: bool = True) -> dict[str, str]:
  """A report table's budget and convergence cells of the seeds' runs of one row (records with
  "budget" and "convergence"): `budget_cells`' columns, the parameters only where `parameters` (a
  table with a parameter column of its own leaves them out), then "converged" (`converged_count`)."""
  cells = budget_cells([r["budget"] for r in runs])
  if not parameters:
    del cells["parameters"]
  return {**cells, "converged": converged_count(r["convergence"]["converged"] for r in runs)}


def converged_count(flags: Iterable[bool | None]) -> str:
  """Runs' `converged` flags (True, False, None: not judged) -> "1 of 2 seeds", naming any not judged."""
  flags = list(flags)
  count, unjudged = sum(flag is True for flag in flags), sum(flag is None for flag in flags)
  return f"{count} of {len(flags)} seeds" + (f" ({unjudged} not judged)" if unjudged else "")


def in_decades(curve: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
  """(step, log10 value) of each (step, value) pair: a loss judged in decades. A value <= 0 or
  not finite gives a value that is not finite, which `convergence` reports as not judged."""
  with np.errstate(divide="ignore", invalid="ignore"):
    return [(step, float(np.log10(float(value)))) for step, value in curve]


def decades_criterion(threshold: float, *, fresh_batches: bool) -> str:
  """A report's statement of `converged` for runs at a constant rate whose training loss is judged
  in decades (`in_decades`, `convergence` with `threshold`). fresh_batches: every step draws new
  data (the training loss then estimates held-out loss), else batches from a fixed training set."""
  data = (
    "Every step draws a fresh batch, so the training loss estimates held-out loss without bias. "
    if fresh_batches
    else "The batches come from a fixed training set, so this says whether training had stopped, not whether "
    "the test score would move. "
  )
  return (
    f"Converged: the mean log10 training loss fell by less than {threshold:g} decades from one window of 20% of "
    f"the steps to the next, over the last 40% (the rate is constant). {data}Decades, not nats, so that the "
    f"threshold is the same relative fall at every scale of loss: a run still falling {threshold:g} decades per "
    f"window would fall {5 * threshold:g} decades more in as many steps again. A converged run has stopped "
    "improving at this budget, which does not say it could not later."
  )


def not_judged(why: str, threshold: float) -> dict:
  """`convergence`'s record of a run it cannot judge, for a reason found before it is called
  (the run diverged, or recorded no curve): converged None, and why."""
  return {"converged": None, "improvement": None, "window_steps": None, "threshold": float(threshold),
          "criterion": f"not judged: {why}"}  # fmt: skip


def step_learning_rates(train: TrainConfig, model_dim: int | None = None) -> np.ndarray:
  """[train.steps]: the learning rate each step trains with (0-based; with gradient accumulation
  the rate of the update the step belongs to), from the schedule `fit` builds."""
  schedule = learning_rate_schedule(train.check(), model_dim)
  updates = np.arange(train.steps) // train.accumulate_steps
  with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats with int32 counts
    rates = np.asarray(schedule(jnp.asarray(updates, jnp.int32)), dtype=float)
  return np.broadcast_to(rates, updates.shape).copy()  # a constant schedule gives one number for all


def convergence(
  curve: Sequence[tuple[int, float]],
  learning_rates: Sequence[float],
  *,
  threshold: float,
  window: float = 0.2,
  annealed_below: float = 0.5,
  floor: float = 0.1,
  lower_is_better: bool = True,
  score: str = "validation",
) -> dict:
  """Whether validation improved by less than `threshold` over the judged window (the module docstring).

  curve: (steps done, validation score) pairs, steps strictly increasing within 0..len(learning_rates).
  learning_rates: the rate of every training step ([steps]; `step_learning_rates`).
  score: what the curve holds, as the criterion names it (e.g. "log10 training loss").
  -> {"converged": True, False, or None when it cannot be judged (a window without an evaluation,
  or a non-finite score), "improvement" (mean of the window before minus mean of the last, for a
  lower-is-better score), "window_steps": [after, through] the last window, "criterion" in words,
  "threshold"}.
  """
  rates = np.asarray(learning_rates, dtype=float)
  if rates.ndim != 1 or rates.size == 0 or not np.all(np.isfinite(rates)) or rates.min() < 0 or rates.max() <= 0:
    raise ValueError("learning_rates must be one finite rate >= 0 per training step, [steps], not all 0")
  steps = rates.size
  points = _checked_curve(curve, steps)
  _fraction("window", window)
  _fraction("annealed_below", annealed_below)
  _fraction("floor", floor)
  if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold < math.inf:
    raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
  if not isinstance(lower_is_better, bool):
    raise ValueError(f"lower_is_better must be True or False, got {lower_is_better!r}")

  length = window * steps
  end = _judged_end(rates, 2 * length, annealed_below, floor)
  if end is None:
    return not_judged(
      f"in every span of two windows ({2 * length:g} steps) the learning rate falls below {annealed_below:g} x its "
      f"largest value there or {floor:g} x its peak",
      threshold,
    )
  split, begin = end - length, end - 2 * length  # windows: steps in (begin, split] and (split, end]
  result = {"converged": None, "improvement": None, "window_steps": [split, end], "threshold": float(threshold)}
  where = (
    f"over steps {split:g}-{end} against {begin:g}-{split:g} (windows of {window:.0%} of the {steps}-step "
    f"budget, the latest over which the learning rate stays >= {annealed_below:g} x its largest value there "
    f"and {floor:g} x its peak)"
  )
  bad = [step for step, value in points if step <= end and not math.isfinite(value)]
  if bad:
    return {**result, "criterion": f"not judged: {score} is not finite at step {bad[0]}"}
  previous = [value for step, value in points if begin < step <= split]
  last = [value for step, value in points if split < step <= end]
  if not previous or not last:
    return {**result, "criterion": f"not judged: a window without an evaluation; mean {score} {where}"}
  improvement = (np.mean(previous) - np.mean(last)) * (1 if lower_is_better else -1)
  converged = bool(improvement < threshold)
  return {
    **result,
    "converged": converged,
    "improvement": float(improvement),
    "criterion": f"mean {score} improved by {improvement:.4g} ({'<' if converged else '>='} {threshold:g}) {where}",
  }


def _judged_end(rates: np.ndarray, span: float, annealed_below: float, floor: float) -> int | None:
  """The largest step count e <= len(rates) with e >= span such that the rates of the steps done at
  counts (e - span, e] stay >= annealed_below x their largest value and >= floor x the peak (within
  float32 rounding); None if there is none."""
  rounding = 1 - 1e-6  # optax's schedules round in float32
  for end in range(rates.size, math.ceil(span) - 1, -1):
    inside = rates[math.floor(end - span) : end]  # step i (from 0) is done at count i + 1
    low = max(annealed_below * inside.max(), floor * rates.max()) * rounding
    if inside.min() >= low:
      return end
  return None


def _checked_curve(curve, steps: int) -> list[tuple[int, float]]:
  """curve as (step, score) pairs with integer steps increasing strictly within 0..steps."""
  try:
    points = [(step, float(value)) for step, value in curve]
  except (TypeError, ValueError):
    raise ValueError(f"curve must hold (step, score) pairs, got {curve!r}") from None
  done = [step for step, _ in points]
  if not points or any(not isinstance(s, int | np.integer) or isinstance(s, bool) for s in done):
    raise ValueError(f"curve must hold at least one (step, score) pair with an integer step, got {curve!r}")
  if done != sorted(set(done)) or done[0] < 0 or done[-1] > steps:
    raise ValueError(f"curve's steps must increase strictly within 0..{steps} (the steps trained), got {done}")
  return points


def _fraction(name: str, value: float) -> None:
  if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
    raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
