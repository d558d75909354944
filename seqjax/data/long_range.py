"""Long-range tasks whose dependency distance D is set exactly; the answer is read at the last step.

    copy     a symbol (of 8), D - 1 random symbols, a "go" marker: emit the first symbol, seen D
             steps before the answer (T = D + 1).
    recall   selective recall: random symbols, one of them marked (a second input channel) after
             PREFIX = 8 others, D - 1 more, a "go" marker: emit the marked symbol (T = D + 9).
    adding   (value in [0, 1], marker) pairs, the first marker in the first tenth, the second in
             the second half: emit the sum of the two marked values (T = D; Hochreiter &
             Schmidhuber 1997).

make_batch(task, D, rng, size) -> {"x": [B, T, F] float32, "y": [B]}: int32 symbols (copy,
recall) or float32 sums (adding). shape(task) -> (F, outputs); sequence_length(task, D) -> T.
"""

import numpy as np

from seqjax import _validate

TASKS = ("copy", "recall", "adding")
SYMBOLS = 8  # the alphabet; token SYMBOLS is the "go" marker
PREFIX = 8  # recall: random symbols before the marked one
ADDING_VARIANCE = 1 / 6  # Var(u1 + u2) for u ~ U[0, 1]: the MSE of always answering the mean


def shape(task: str) -> tuple[int, int]:
  """(input features F, outputs: SYMBOLS classes, or 1 for adding's regression)."""
  _validate.choice("task", task, TASKS)
  return {"copy": (SYMBOLS + 1, SYMBOLS), "recall": (SYMBOLS + 2, SYMBOLS), "adding": (2, 1)}[task]


def sequence_length(task: str, distance: int) -> int:
  """T, the input steps of one sequence of `task` at `distance` (make_batch's x.shape[1])."""
  _validate.choice("task", task, TASKS)
  return distance + {"copy": 1, "recall": PREFIX + 1, "adding": 0}[task]


def make_batch(task: str, distance: int, rng: np.random.Generator, size: int) -> dict:
  _validate.choice("task", task, TASKS)
  if not isinstance(distance, int) or distance < 2:
    raise ValueError(f"distance must be an integer >= 2, got {distance!r}")
  _validate.positive_int("size", size)
  rows = np.arange(size)
  if task == "copy":
    tokens = rng.integers(0, SYMBOLS, (size, distance + 1))  # [B, T]
    tokens[:, -1] = SYMBOLS
    return {"x": np.eye(SYMBOLS + 1, dtype=np.float32)[tokens], "y": tokens[:, 0].astype(np.int32)}
  if task == "recall":
    tokens = rng.integers(0, SYMBOLS, (size, PREFIX + distance + 1))  # [B, T]
    tokens[:, -1] = SYMBOLS
    marker = np.zeros((*tokens.shape, 1), np.float32)  # [B, T, 1]
    marker[:, PREFIX] = 1.0
    x = np.concatenate([np.eye(SYMBOLS + 1, dtype=np.float32)[tokens], marker], -1)  # [B, T, SYMBOLS + 2]
    return {"x": x, "y": tokens[:, PREFIX].astype(np.int32)}
  values = rng.uniform(0, 1, (size, distance)).astype(np.float32)  # [B, T]
  markers = np.zeros((size, distance), np.float32)
  markers[rows, rng.integers(0, max(1, distance // 10), size)] = 1.0
  markers[rows, rng.integers(distance // 2, distance, size)] = 1.0
  return {"x": np.stack([values, markers], -1), "y": (values * markers).sum(1)}
