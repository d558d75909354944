"""Data and tensor (model) parallelism with jax.sharding: a ("data", "model") mesh, batches split
over "data", Transformer weights split over "model" by the Megatron rules below; all else replicated.
The rules find a TransformerBlock's sublayers by their attribute names (self_attention,
cross_attention, feed_forward), so another module's `out` or `query` layer stays replicated.

    attention query/key/value kernels [D, N, Dh]   heads N on "model"   (biases [N, Dh] likewise)
    attention output kernel           [N, Dh, D]   heads N on "model"
    feed-forward inner kernel         [D, D_ff]    D_ff on "model"      (bias [D_ff] likewise)
    feed-forward outer kernel         [D_ff, D]    D_ff on "model"

jit then inserts the collectives (GSPMD); the step code is the same for 1 or many devices.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from seqjax import _validate
from seqjax._paths import path_names

_ATTENTION = ("self_attention", "cross_attention")  # TransformerBlock's MultiHeadAttention modules
_QKV = {"kernel": P(None, "model", None), "bias": P("model", None)}
RULES = {
  **{(attention, name): _QKV for attention in _ATTENTION for name in ("query", "key", "value")},
  **{(attention, "out"): {"kernel": P("model", None, None), "bias": P()} for attention in _ATTENTION},
  ("feed_forward", "inner"): {"kernel": P(None, "model"), "bias": P("model")},
  ("feed_forward", "outer"): {"kernel": P("model", None), "bias": P()},
}


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


def partition_spec(path, leaf) -> P:
  names = path_names(path)
  for suffix, specs in RULES.items():
    if names[-1 - len(suffix) : -1] == suffix and names[-1] in specs:
      return specs[names[-1]]
  return P()


def shardings(tree, mesh: Mesh):
  """A NamedSharding for every leaf of params, or of a whole train state: leaves whose path ends
  like a rule's (optimizer moments mirror their parameters' paths) follow it, all else is
  replicated. Checks that sharded axes divide by the mesh."""

  def sharding(path, leaf):
    spec = partition_spec(path, leaf)
    if len(spec) > leaf.ndim:
      raise ValueError(
        f"{'/'.join(path_names(path))} has shape {leaf.shape}; its sharding rule {spec} needs rank {len(spec)}"
      )
    for axis, name in enumerate(spec):
      if name is not None and leaf.shape[axis] % mesh.shape[name]:
        raise ValueError(
          f"{'/'.join(path_names(path))} axis {axis} (size {leaf.shape[axis]}) must be divisible by the "
          f"'{name}' mesh axis ({mesh.shape[name]}): pick num_heads and ff_dim divisible by it"
        )
    return NamedSharding(mesh, spec)

  return jax.tree.map_with_path(sharding, tree)


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
