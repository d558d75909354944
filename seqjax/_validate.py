"""Argument checks shared by the package: each raises ValueError naming the argument.

They run on shapes and dtypes, which are static under `jax.jit`; value checks
(`prefix_mask`, `token_ids`) run only when the values are concrete, i.e. outside a trace.
"""

import math
from collections.abc import Collection
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def choice(name: str, value: Any, allowed: Collection[Any]) -> None:
  if value not in allowed:
    raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


def positive_int(name: str, value: Any) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")


def nonnegative_int(name: str, value: Any) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
    raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def finite_number(name: str, value: Any, *, low: float, inclusive: bool = True) -> None:
  """value must be a finite real number >= low (> low when not inclusive)."""
  bound = f"{'>=' if inclusive else '>'} {low:g}"
  if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
    raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
  if not math.isfinite(value) or value < low or (value == low and not inclusive):
    raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def fields(
  config: Any,
  *,
  positive: Collection[str] = (),
  nonnegative: Collection[str] = (),
  positive_numbers: Collection[str] = (),
  nonnegative_numbers: Collection[str] = (),
  probabilities: Collection[str] = (),
  booleans: Collection[str] = (),
  optional: Collection[str] = (),
  **choices,
) -> None:
  """A config's `check()`: the named fields must be positive integers, integers >= 0, finite
  numbers > 0 or >= 0, probabilities in [0, 1), True/False, or (keyword name=allowed values) one
  of a set; fields named in `optional` may also be None. The first bad field raises, by its name."""
  kinds = (
    (positive, positive_int),
    (nonnegative, nonnegative_int),
    (positive_numbers, lambda name, value: finite_number(name, value, low=0.0, inclusive=False)),
    (nonnegative_numbers, lambda name, value: finite_number(name, value, low=0.0)),
    (probabilities, probability),
    (booleans, boolean),
  )
  for names, check in kinds:
    for name in names:
      value = getattr(config, name)
      if not (value is None and name in optional):
        check(name, value)
  for name, allowed in choices.items():
    choice(name, getattr(config, name), allowed)


def boolean(name: str, value: Any) -> None:
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{name} must be True or False, got {value!r}")


def probability(name: str, value: float) -> None:
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def float_array(name: str, x: Any, shape: str, rank: int) -> None:
  """`x` must be a floating array of `rank` dims; `shape` spells the expected axes, e.g. '[B, T, F]'."""
  if not hasattr(x, "shape") or not hasattr(x, "dtype"):
    raise ValueError(f"{name} must be an array of shape {shape}, got {type(x).__name__}")
  if x.ndim != rank:
    raise ValueError(f"{name} must have shape {shape} (rank {rank}), got shape {tuple(x.shape)}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{name} must be a floating array {shape}, got dtype {x.dtype}")


def axis_size(name: str, x: Any, axis: int, expected: int, shape: str) -> None:
  if x.shape[axis] != expected:
    raise ValueError(f"{name} must have shape {shape} with size {expected} on axis {axis}, got shape {tuple(x.shape)}")


def concrete(x: Any) -> bool:
  """Whether x holds values now (not a tracer under jit/vmap/grad), so value checks can run."""
  return not isinstance(x, jax.core.Tracer)


def same_tree_shapes(name: str, tree: Any, reference: Any) -> None:
  """`tree` must have the structure and leaf shapes of `reference`."""
  got = jax.tree.map(jnp.shape, tree)
  want = jax.tree.map(jnp.shape, reference)
  if jax.tree.structure(tree) != jax.tree.structure(reference) or got != want:
    raise ValueError(f"{name} must have leaf shapes {want}, got {got}")


def bool_mask(name: str, mask: Any, shape: tuple[int, ...], axes: str = "[B, S]") -> None:
  """`mask` must be a bool array of exactly `shape` (True = real token); `axes` spells it."""
  if not hasattr(mask, "shape") or tuple(mask.shape) != tuple(shape) or mask.dtype != jnp.bool_:
    got = f"{mask.dtype}{list(mask.shape)}" if hasattr(mask, "shape") else type(mask).__name__
    raise ValueError(f"{name} must be a bool array {axes} = {list(shape)}, got {got}")


def prefix_mask(name: str, mask: Any, *, suffix: bool = False) -> None:
  """A [B, T] bool mask whose True entries (real tokens) come first in every row (last, with
  suffix=True: left padding), at least one of them: what a recurrent encoder reads as lengths.
  Checked when the values are concrete."""
  if not concrete(mask):
    return
  values = np.asarray(mask)[:, ::-1] if suffix else np.asarray(mask)
  lengths = values.sum(axis=-1)
  prefix = np.arange(values.shape[-1])[None, :] < lengths[:, None]
  if (lengths < 1).any() or (values != prefix).any():
    rows = np.flatnonzero((lengths < 1) | (values != prefix).any(axis=-1)).tolist()
    shape = "a suffix (False..., then True...)" if suffix else "a prefix (True..., then False...)"
    raise ValueError(f"{name} must mark each row's real tokens as {shape} with at least one True; rows {rows} are not")


def token_ids(name: str, tokens, vocab_size: int) -> None:
  """tokens must be an integer array [B, T] with ids in [0, vocab_size) (values checked when concrete)."""
  if not hasattr(tokens, "ndim") or tokens.ndim != 2:
    raise ValueError(f"{name} must be an integer array [B, T], got {getattr(tokens, 'shape', type(tokens).__name__)}")
  if not jnp.issubdtype(tokens.dtype, jnp.integer):
    raise ValueError(f"{name} must be an integer array [B, T], got dtype {tokens.dtype}")
  if 0 in tokens.shape:
    raise ValueError(f"{name} must hold at least one sequence of at least one position, got shape {tokens.shape}")
  if concrete(tokens):
    values = np.asarray(tokens)
    if values.min() < 0 or values.max() >= vocab_size:
      raise ValueError(f"{name} ids must lie in [0, {vocab_size}), got min {values.min()} and max {values.max()}")
