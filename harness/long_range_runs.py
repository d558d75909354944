"""Training and scoring one model on a long-range task (`seqjax.data.long_range`): the part of
experiments/long_range.py that experiments/init_in_training.py shares, so neither imports the other.

A model maps x [B, T, F] to [B, O] (`seqjax.heads.SequencePredictor`): class scores on copy and
recall, the sum on adding. Solved: accuracy >= SOLVED_ACCURACY (chance 1 / SYMBOLS), or variance
explained 1 - MSE / ADDING_VARIANCE >= SOLVED_EXPLAINED (adding).

Data: a run of seed s at distance D trains on batches drawn by np.random.default_rng([s, task, D,
step]) and is scored on held-out sequences of one of two other generators (HELD_OUT's last
entropy word in place of the step): "test", what results report, or "validation", what a tuning
pilot is scored on (harness.sweep): the two are independent draws, never the same generator.

Budget and convergence (harness.budget), from what a run records, so journaled runs get them
too: training tokens are steps x batch x the task's sequence length (every input step is a
token); FLOPs per token are harness.budget.predictor_flops_per_token's count. Convergence is
judged on the training-loss curve in decades (log10): every step trains on a fresh batch, never
trained on before, so the curve estimates held-out loss without bias (noisier than a fixed
validation set: one batch per logged step)."""

import dataclasses
import hashlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import budget, report
from seqjax import zoo
from seqjax.data.long_range import ADDING_VARIANCE, TASKS, make_batch, sequence_length
from seqjax.train import TrainConfig, fit

SOLVED_ACCURACY, SOLVED_EXPLAINED = 0.95, 0.9
HELD_OUT = {"test": 10**9, "validation": 10**9 + 1}  # the held-out sets' generators (past any training step)


def fingerprints(x: np.ndarray) -> set[bytes]:
  """One hash per sequence of x [B, ...]: what training and test share is counted by them."""
  return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x}


def output_loss(task: str, out, y):
  """The task's loss of outputs out [B, O] against y [B]: the sum's squared error (adding), else
  the cross-entropy of the class scores."""
  if task == "adding":
    return jnp.mean((out[:, 0] - y) ** 2)
  return -jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], axis=-1).mean()


def loss_fn(task: str):
  def classify(model, batch, rng):
    del rng
    logits = model(batch["x"])  # [B, O]
    return output_loss(task, logits, batch["y"]), {"accuracy": (logits.argmax(-1) == batch["y"]).mean()}

  def regress(model, batch, rng):
    del rng
    return output_loss(task, model(batch["x"]), batch["y"]), {}

  return regress if task == "adding" else classify


def generator(task: str, distance: int, seed: int, draw: int) -> np.random.Generator:
  """The generator of one draw of seed `seed`'s data: a training step's batch, or a held-out set (HELD_OUT)."""
  return np.random.default_rng([seed, 1 + TASKS.index(task), distance, draw])


def held_out(task: str, distance: int, seed: int, size: int, split: str = "test") -> dict:
  """`size` sequences of `split`'s generator (HELD_OUT) for seed `seed`: never a training batch."""
  if split not in HELD_OUT:
    raise ValueError(f"split must be one of {tuple(HELD_OUT)}, got {split!r}")
  return make_batch(task, distance, generator(task, distance, seed, HELD_OUT[split]), size)


def solved(task: str, score: float | None) -> bool:
  """A score (accuracy, or variance explained on adding) at the solved line; a diverged run's (None) is not."""
  return score is not None and score >= (SOLVED_EXPLAINED if task == "adding" else SOLVED_ACCURACY)


def train_and_test(
  name: str,
  build: Callable[[nnx.Rngs], nnx.Module],
  task: str,
  distance: int,
  seed: int,
  train: TrainConfig,
  test_size: int,
  split: str = "test",
) -> dict:
  """Trains build(nnx.Rngs(seed)) for train.steps on `task` at `distance` (the seed draws init
  and data); returns its score (accuracy, or variance explained) and loss on `test_size` sequences
  of `split` ("test", or "validation" for a tuning pilot) and bookkeeping (train_test_overlap:
  the training sequences found in that set)."""
  train = dataclasses.replace(train, seed=seed)
  seen: set[bytes] = set()

  def batch_fn(step: int, rows: slice) -> dict:
    batch = make_batch(task, distance, generator(task, distance, seed, step), train.batch_size)
    seen.update(fingerprints(batch["x"]))
    return {k: v[rows] for k, v in batch.items()}

  test = held_out(task, distance, seed, test_size, split)  # checks split before any training
  record = {"model": name, "task": task, "distance": distance, "seed": seed, "steps": train.steps}
  start = time.perf_counter()
  try:
    result = fit(build(nnx.Rngs(seed)), loss_fn(task), batch_fn, train)
  except FloatingPointError as error:  # fit stops a run whose updates stay non-finite: a measured outcome
    return {**record, "score": None, "solved": False, "diverged": str(error), "train_test_overlap": 0}
  seconds = time.perf_counter() - start
  out = np.asarray(nnx.jit(lambda model, x: model(x))(result.model, jnp.asarray(test["x"])))  # [B, O]
  if task == "adding":
    score = 1.0 - float(np.mean((out[:, 0] - test["y"]) ** 2)) / ADDING_VARIANCE
  else:
    score = float((out.argmax(-1) == test["y"]).mean())
  return {
    **record,
    "score": score,
    "solved": solved(task, score),
    "diverged": None,
    "held_out_loss": float(output_loss(task, jnp.asarray(out), jnp.asarray(test["y"]))),
    "final_train_loss": float(result.history[-1]["loss"]),
    "train_loss": [(h["step"], h["loss"]) for h in result.history],  # every log_every steps
    "train_test_overlap": len(seen & fingerprints(test["x"])),
    "train_seconds": seconds,
    "compile_seconds": result.compile_seconds,
  }


def budget_and_convergence(run: dict, build: Callable[[nnx.Rngs], nnx.Module], train: TrainConfig, threshold: float):
  """{"budget", "convergence"} of a record of train_and_test (harness.budget; the module
  docstring): its model build(rngs) counted on abstract shapes, the schedule of `train` (its
  learning rate, run["steps"] steps), `converged` when the mean log10 training loss fell by less
  than `threshold` decades. A diverged run (fit stopped it: no curve, no seconds) has budget
  None and is not judged."""
  if run["score"] is None:
    return {"budget": None, "convergence": budget.not_judged("the run diverged (fit stopped it)", threshold)}
  model = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
  length = sequence_length(run["task"], run["distance"])
  train = dataclasses.replace(train, steps=run["steps"])
  return budget.budget_and_convergence(
    parameters=zoo.count_params(model),
    tokens=run["steps"] * train.batch_size * length,
    flops_per_token=budget.predictor_flops_per_token(model, length),
    train_seconds=run["train_seconds"] - run["compile_seconds"],  # fit's wall-clock less its compiling step
    curve=budget.in_decades(run["train_loss"]),
    train=train,
    threshold=threshold,
    score="log10 training loss",
  )


def run_text(run: dict) -> str:
  return "diverged" if run["score"] is None else f"{run['score']:.3f}"


def score_text(runs: list[dict]) -> str:
  """The scores' mean [range] over seeds, and how many runs diverged (no score)."""
  finite = [r["score"] for r in runs if r["score"] is not None]
  text = report.spread(finite, ".2f") if finite else "none"
  return text + (f" ({len(runs) - len(finite)} of {len(runs)} diverged)" if len(finite) < len(runs) else "")
