"""Data and tensor (model) parallelism with jax.sharding: a ("data", "model") mesh, batches split
over "data", parameters split over "model" by the logical axes each declared where it was created
(`seqjax.logical_axes`), mapped by the one rules table below; all else replicated.

    attention query/key/value kernels [D, N, Dh]   (embed, heads, head_dim)   heads N on "model"
    attention output kernel           [N, Dh, D]   (heads, head_dim, embed)   heads N on "model"
    feed-forward inner kernel         [D, D_ff]    (embed, mlp)               D_ff on "model"
    feed-forward outer kernel         [D_ff, D]    (mlp, embed)               D_ff on "model"

That is Megatron's split. The declaration travels with the parameter (and with the optimizer
moments built from it), so renaming a module's field cannot silently replicate its weights.
jit then inserts the collectives (GSPMD); the step code is the same for 1 or many devices.
"""

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from seqjax import _validate
from seqjax._paths import path_names
from seqjax.logical_axes import HEADS, MLP

RULES = {HEADS: "model", MLP: "model"}  # logical axis -> mesh axis; every other logical axis is replicated


def make_mesh(data: int = -1, model: int = 1, devices=None) -> Mesh:
  """A (data, model) mesh over `devices` (default: all, across hosts); data=-1 takes the rest."""
  devices = jax.devices() if devices is None else devices
  _validate.positive_int("model", model)
  if len(devices) % model:
    raise ValueError(
      f"model parallelism (model_parallel) = {model} must divide the number of devices, {len(devices)} here"
    )
  if data == -1:
    data = len(devices) // model
  _validate.positive_int("data", data)
  if data * model != len(devices):
    raise ValueError(f"mesh data x model = {data} x {model} must equal the number of devices {len(devices)}")
  return Mesh(np.asarray(devices).reshape(data, model), ("data", "model"))


def partition_spec(leaf) -> P:
  """The mesh axes of a parameter (or of an optimizer moment built from one) by RULES; P() for
  anything that declared no logical axes."""
  names = leaf.get_metadata().get("out_sharding") if isinstance(leaf, nnx.Variable) else None
  return P() if not names else P(*(RULES.get(name) for name in names))


def shardings(tree, mesh: Mesh):
  """A NamedSharding for every parameter of params, or of a whole train state, by its declared
  logical axes; all else is replicated. Checks that sharded axes divide by the mesh."""

  def sharding(path, leaf):
    spec = partition_spec(leaf)
    shape = np.shape(leaf[...] if isinstance(leaf, nnx.Variable) else leaf)
    if len(spec) != len(shape) and len(spec):
      raise ValueError(f"{'/'.join(path_names(path))} has shape {shape} but declares {len(spec)} logical axes")
    for axis, name in enumerate(spec):
      if name is not None and shape[axis] % mesh.shape[name]:
        raise ValueError(
          f"{'/'.join(path_names(path))} axis {axis} (size {shape[axis]}) must be divisible by the "
          f"'{name}' mesh axis ({mesh.shape[name]}): pick num_heads and ff_dim divisible by it"
        )
    return NamedSharding(mesh, spec)

  return jax.tree.map_with_path(sharding, tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


def shard_params(tree, mesh: Mesh):
  """Places params (or a whole train state) on the mesh by `shardings`."""
  return jax.device_put(tree, shardings(tree, mesh))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def shard_batch(batch, mesh: Mesh):
  """Host batch (leading axis = global batch) onto the mesh, split over "data"."""
  size = mesh.shape["data"]
  for leaf in jax.tree.leaves(batch):
    if leaf.shape[0] % size:
      raise ValueError(f"batch size {leaf.shape[0]} must be divisible by the {size} data-parallel devices")
  return jax.device_put(batch, batch_sharding(mesh))
