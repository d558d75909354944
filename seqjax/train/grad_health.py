"""Gradient health, the seed's `monitor_gradients` done inside the jitted step and logged outside it.

`gradient_health(grads)` returns arrays only (jit-safe): per-parameter L2 norms, the global
norm, and whether any gradient is NaN/Inf. `describe(health, low, high)` turns them into the
vanishing / exploding / non-finite flags on the host.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax._paths import path_names


def parameter_names(tree) -> list[str]:
  """'stack/blocks/0/self_attention/query/kernel'-style names, in leaf order."""
  return ["/".join(path_names(path)) for path, _ in jax.tree.leaves_with_path(tree)]


def structurally_zero(model) -> set[str]:
  """Names (as `parameter_names`) of the parameters whose gradient is zero by construction: those
  each submodule lists in its `zero_gradient_params` (e.g. an attention layer's key bias)."""
  names = set()
  for path, node in nnx.iter_graph(model):
    for suffix in getattr(node, "zero_gradient_params", ()):
      names.add("/".join(map(str, (*path, *suffix))))
  return names


def all_finite(tree) -> jax.Array:
  """[] bool: no NaN or Inf in any floating leaf."""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def gradient_health(grads) -> dict[str, jax.Array]:
  leaves = jax.tree.leaves(grads)
  norms = jnp.stack([jnp.linalg.norm(g.astype(jnp.float32).ravel()) for g in leaves])  # [num_params]
  return {"param_norms": norms, "global_norm": jnp.sqrt(jnp.sum(norms**2)), "finite": all_finite(grads)}


def describe(health: dict, names: list[str], *, low: float = 1e-7, high: float = 1e3, zero=frozenset()) -> dict:
  """Host-side flags: which parameters' gradient norms fall below `low` (vanishing; not those
  named in `zero`, whose gradient is zero by construction) or above `high` (exploding), and
  whether any entry (or the updated parameters) was NaN/Inf."""
  norms = np.asarray(health["param_norms"])
  return {
    "global_norm": float(health["global_norm"]),
    "finite": bool(health["finite"]),
    "vanishing": [n for n, v in zip(names, norms, strict=True) if v < low and n not in zero],
    "exploding": [n for n, v in zip(names, norms, strict=True) if v > high],
  }
