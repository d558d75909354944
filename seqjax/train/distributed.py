"""Multi-host runs with JAX's own distributed runtime (`jax.distributed.initialize`).

Enable with the command-line flag of an experiment (`--train.distributed`) or by setting
SEQJAX_DISTRIBUTED=1. On a TPU pod slice or a SLURM / Open MPI cluster, JAX finds the coordinator
itself; elsewhere set JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and
JAX_PROCESS_ID on every process. Each host then loads only its slice of every global batch.
"""

import os

import jax
import numpy as np
from jax.sharding import Mesh

from seqjax.train.sharding import batch_sharding


def initialize(enabled: bool = False) -> bool:
  """Starts the distributed runtime when enabled (or SEQJAX_DISTRIBUTED=1); returns whether it runs.

  Call it first thing, before anything builds arrays: JAX must know every host before it starts.
  """
  if not (enabled or os.environ.get("SEQJAX_DISTRIBUTED") == "1"):
    return False
  if jax.distributed.is_initialized():
    return True
  if "JAX_COORDINATOR_ADDRESS" in os.environ:
    jax.distributed.initialize(
      coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
      num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
      process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
  else:
    jax.distributed.initialize()  # TPU pods, SLURM, Open MPI: discovered from the environment
  return True


def host_slice(global_batch_size: int) -> slice:
  """The rows of each global batch that this host loads."""
  count, index = jax.process_count(), jax.process_index()
  if global_batch_size % count:
    raise ValueError(f"global batch size {global_batch_size} must be divisible by the {count} hosts")
  per_host = global_batch_size // count
  return slice(index * per_host, (index + 1) * per_host)


def global_batch(local_batch, mesh: Mesh):
  """Assemble each host's rows into global arrays split over the mesh's "data" axis."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
