"""Readable names for pytree paths, e.g. ('stack', 'blocks', '0', 'self_attention', 'query', 'kernel')."""

import jax


def path_names(path) -> tuple[str, ...]:
  """Key names along a pytree path, without the `.value` hop into an nnx.Variable."""
  names = []
  for key in path:
    if isinstance(key, jax.tree_util.GetAttrKey) and key.name == "value":
      continue
    names.append(str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key)))))
  return tuple(names)
