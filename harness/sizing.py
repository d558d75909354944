"""Models at matched parameter count: the width whose model comes nearest a target count."""

from collections.abc import Callable

import jax
import numpy as np
from flax import nnx


def count_params(model: nnx.Module) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def matched_width(build: Callable[[int, nnx.Rngs], nnx.Module], target: int, multiple: int = 4) -> tuple[int, int]:
  """The width (a multiple of `multiple`) whose build(width, rngs) has the parameter count nearest
  `target`, and that count; counted on abstract shapes (nothing is initialized)."""

  def size(width: int) -> int:
    return count_params(nnx.eval_shape(lambda: build(width, nnx.Rngs(0))))

  low, high = multiple, multiple
  while size(high) < target:
    low, high = high, 2 * high
  while high - low > multiple:  # size(low) < target <= size(high)
    mid = (low + high) // (2 * multiple) * multiple
    low, high = (mid, high) if size(mid) < target else (low, mid)
  width = min((low, high), key=lambda w: abs(size(w) - target))
  return width, size(width)
