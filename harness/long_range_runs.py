"""Training and scoring one model on a long-range task (`seqjax.data.long_range`): the part of
experiments/long_range.py that experiments/init_in_training.py shares, so neither imports the other.

A model maps x [B, T, F] to [B, O] (`seqjax.heads.SequencePredictor`): class scores on copy and
recall, the sum on adding. Solved: accuracy >= SOLVED_ACCURACY (chance 1 / SYMBOLS), or variance
explained 1 - MSE / ADDING_VARIANCE >= SOLVED_EXPLAINED (adding)."""

import dataclasses
import hashlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import report
from seqjax.data.long_range import ADDING_VARIANCE, TASKS, make_batch
from seqjax.train import TrainConfig, fit

SOLVED_ACCURACY, SOLVED_EXPLAINED = 0.95, 0.9


def fingerprints(x: np.ndarray) -> set[bytes]:
  """One hash per sequence of x [B, ...]: what training and test share is counted by them."""
  return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x}


def loss_fn(task: str):
  def classify(model, batch, rng):
    del rng
    logits = model(batch["x"])  # [B, O]
    loss = -jnp.take_along_axis(jax.nn.log_softmax(logits), batch["y"][:, None], axis=-1).mean()
    return loss, {"accuracy": (logits.argmax(-1) == batch["y"]).mean()}

  def regress(model, batch, rng):
    del rng
    return jnp.mean((model(batch["x"])[:, 0] - batch["y"]) ** 2), {}

  return regress if task == "adding" else classify


def train_and_test(
  name: str,
  build: Callable[[nnx.Rngs], nnx.Module],
  task: str,
  distance: int,
  seed: int,
  train: TrainConfig,
  test_size: int,
) -> dict:
  """Trains build(nnx.Rngs(seed)) for train.steps on `task` at `distance` (the seed draws init
  and data); returns its test score (accuracy, or variance explained) and bookkeeping."""
  train = dataclasses.replace(train, seed=seed)
  seen: set[bytes] = set()
  stream = 1 + TASKS.index(task)

  def batch_fn(step: int, rows: slice) -> dict:
    batch = make_batch(task, distance, np.random.default_rng([seed, stream, distance, step]), train.batch_size)
    seen.update(fingerprints(batch["x"]))
    return {k: v[rows] for k, v in batch.items()}

  test = make_batch(task, distance, np.random.default_rng([seed, stream, distance, 10**9]), test_size)
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
    "solved": score >= (SOLVED_EXPLAINED if task == "adding" else SOLVED_ACCURACY),
    "diverged": None,
    "final_train_loss": float(result.history[-1]["loss"]),
    "train_loss": [(h["step"], h["loss"]) for h in result.history],  # every log_every steps
    "train_test_overlap": len(seen & fingerprints(test["x"])),
    "train_seconds": seconds,
    "compile_seconds": result.compile_seconds,
  }


def run_text(run: dict) -> str:
  return "diverged" if run["score"] is None else f"{run['score']:.3f}"


def score_text(runs: list[dict]) -> str:
  """The scores' mean [range] over seeds, and how many runs diverged (no score)."""
  finite = [r["score"] for r in runs if r["score"] is not None]
  text = report.spread(finite, ".2f") if finite else "none"
  return text + (f" ({len(runs) - len(finite)} of {len(runs)} diverged)" if len(finite) < len(runs) else "")
