"""Gradient health, the seed's `monitor_gradients` done inside the jitted step and logged outside it.

`gradient_health(grads)` returns arrays only (jit-safe): per-parameter L2 norms, the global
norm, and whether any gradient is NaN/Inf. `describe(health, low, high)` turns them into the
vanishing / exploding / non-finite flags on the host.
"""

import jax
import jax.numpy as jnp
import numpy as np

from seqjax._paths import path_names


def parameter_names(tree) -> list[str]:
  """'stack/blocks/0/self_attention/query/kernel'-style names, in leaf order."""
  return ["/".join(path_names(path)) for path, _ in jax.tree.leaves_with_path(tree)]


def gradient_health(grads) -> dict[str, jax.Array]:
  leaves = jax.tree.leaves(grads)
  norms = jnp.stack([jnp.linalg.norm(g.astype(jnp.float32).ravel()) for g in leaves])  # [num_params]
  finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves]))
  return {"param_norms": norms, "global_norm": jnp.sqrt(jnp.sum(norms**2)), "finite": finite}


def describe(health: dict, names: list[str], *, low: float = 1e-7, high: float = 1e3) -> dict:
  """Host-side flags: which parameters' gradient norms fall below `low` (vanishing) or above
  `high` (exploding), and whether any entry was NaN/Inf."""
  norms = np.asarray(health["param_norms"])
  return {
    "global_norm": float(health["global_norm"]),
    "finite": bool(health["finite"]),
    "vanishing": [n for n, v in zip(names, norms, strict=True) if v < low],
    "exploding": [n for n, v in zip(names, norms, strict=True) if v > high],
  }
