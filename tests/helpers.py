"""Small builders shared by the tests."""

import re

import jax
import numpy as np
from flax import nnx


def randomize(module, seed: int = 0, scale: float = 0.5):
  """Overwrite every parameter (biases included) with N(0, scale^2) draws."""
  rng = np.random.default_rng(seed)
  for _, param in nnx.iter_graph(module):
    if isinstance(param, nnx.Param):
      value = param[...]
      param[...] = jax.numpy.asarray(scale * rng.standard_normal(value.shape), value.dtype)
  return module


@nnx.jit
def forward(model, *inputs, **options):
  """model(*inputs, **options) compiled as one program: called eagerly, each of a model's few hundred
  ops compiles on its own (tens of milliseconds each on the CPU the tests run on)."""
  return model(*inputs, **options)


def normal(seed: int, *shape, dtype=np.float32):
  return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def prefix_mask(lengths, time: int) -> jax.Array:
  """[B] lengths -> [B, T] bool, True on each row's first `length` steps (the real tokens)."""
  return jax.numpy.arange(time)[None, :] < jax.numpy.asarray(lengths)[:, None]


def redraw_torch(model, seed: int = 0):
  """A torch model with every parameter redrawn as N(0, 0.3^2) (so a port is tested away from the
  init's symmetries), in eval mode. torch is imported here: the tests that call this skip without it."""
  import torch

  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
  return model.eval()


def chosen_rate(tuning: dict, grid, score: str) -> float:
  """The chosen rate of a results file's tuning record (harness.sweep's Tuning.record()), checked:
  its grid and score, a pilot per rate of the grid first in order, and the choice the pilot of the
  lowest score (a diverged one, None, never)."""
  assert tuning["grid"] == list(grid) and tuning["score"] == score
  pilots = tuning["pilots"]
  assert [p["learning_rate"] for p in pilots[: len(grid)]] == list(grid)
  scores = [p[score] for p in pilots]
  chosen = tuning["chosen"]["learning_rate"]
  assert chosen == pilots[scores.index(min(s for s in scores if s is not None))]["learning_rate"]
  return chosen


def rerun_from_the_journal(main, argv, monkeypatch, module, trains: str) -> None:
  """main(argv) again with module.<trains> (what trains a pilot or run) failing: every pilot and
  run must be read back from the experiment's journal."""

  def trained_again(*args, **kwargs):
    raise AssertionError(f"a journaled pilot or run was trained again ({module.__name__}.{trains})")

  monkeypatch.setattr(module, trains, trained_again)
  main(argv)


def run_workdir(folder, name: str):
  """The one fit workdir of run `name` in folder: name-<8 hex digits> (harness.workdirs)."""
  found = [path for path in folder.iterdir() if re.fullmatch(re.escape(name) + r"-[0-9a-f]{8}", path.name)]
  assert len(found) == 1, f"expected one workdir of {name} in {folder}, found {[p.name for p in found]}"
  return found[0]
