"""Checkpoints with orbax-checkpoint's CheckpointManager: every N steps and at the end, keep the
last K, and restore the newest checkpoint that is complete and verifies.

Each checkpoint holds the train state and its checksum (`state_checksum`, computed on the
device from the state being saved, stored as a JSON item of the same orbax step, so both are
committed together). A restore recomputes the checksum of what it read and checks that every
value is finite; a step that fails (no orbax commit marker, a read error, a flipped byte, a
torn file) is moved to `quarantine/` beside the checkpoints with a warning, and the one before
it is tried. Moving the bad steps away, rather than only skipping them, lets the resumed run
save those steps again (orbax refuses to save a step at or below one it lists). Unfinished
writes (orbax's `*.orbax-checkpoint-tmp*` folders) are quarantined the same way when the
checkpointer opens, so `keep` counts only real checkpoints. Nothing is deleted but what orbax
itself rotates out under `keep`. Checkpoints written before checksums existed do not verify
either: they are quarantined too (a run resumes only from what it can check).
"""

import datetime
import logging
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from seqjax.train.grad_health import all_finite

log = logging.getLogger(__name__)

_UNSIGNED = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}


def _leaf_checksum(x: jax.Array) -> jax.Array:
  """[2] uint32: the sum of x's bit patterns, and their sum weighted by position (so a swap of
  two entries shows too), both modulo 2**32. Any single flipped byte changes the first."""
  if x.dtype == jnp.bool_:
    bits = x.astype(jnp.uint32)
  elif x.dtype.itemsize == 8:
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)  # [..., 2]
  else:
    bits = jax.lax.bitcast_convert_type(x, _UNSIGNED[x.dtype.itemsize]).astype(jnp.uint32)
  bits = bits.ravel()
  position = jnp.arange(1, bits.size + 1, dtype=jnp.uint32)
  return jnp.stack([jnp.sum(bits, dtype=jnp.uint32), jnp.sum(bits * position, dtype=jnp.uint32)])


@jax.jit
def _checksums(tree) -> jax.Array:
  keys = jax.dtypes.prng_key
  leaves = [jax.random.key_data(x) if jnp.issubdtype(x.dtype, keys) else x for x in jax.tree.leaves(tree)]
  return jnp.stack([_leaf_checksum(x) for x in leaves])  # [num_leaves, 2]


def state_checksum(tree) -> list[list[int]]:
  """A checksum of every leaf's bytes, computed where the arrays live (sharded ones too)."""
  return np.asarray(_checksums(tree)).tolist()


class CheckpointError(Exception):
  """A checkpoint that does not verify: checksum mismatch or non-finite values."""


class Checkpointer:
  def __init__(self, directory: str | Path, *, save_every: int, keep: int):
    self.directory = Path(directory).absolute()
    self.quarantine = self.directory.parent / "quarantine"
    self.directory.mkdir(parents=True, exist_ok=True)
    for path in self.directory.glob("*.orbax-checkpoint-tmp*"):
      self._quarantine(path, "an unfinished write")
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state, *, force: bool = False) -> None:
    if not (force or self.manager.should_save(step)):
      return
    items = {"state": ocp.args.StandardSave(state), "checksum": ocp.args.JsonSave(state_checksum(state))}
    self.manager.save(step, args=ocp.args.Composite(**items), force=force)

  def step_dirs(self) -> list[int]:
    """Every step folder present, complete or not, oldest first."""
    return sorted(int(p.name) for p in self.directory.iterdir() if p.is_dir() and p.name.isdigit())

  def restore_latest(self, abstract_state):
    """(step, state) of the newest checkpoint that is complete and verifies, restored with
    abstract_state's structure and shardings; None when there is none. Newer steps that fail
    are quarantined (each with a warning)."""
    self.manager.wait_until_finished()
    found = None
    for step in reversed(self.step_dirs()):
      try:
        found = step, self._verified(step, abstract_state)
        break
      except Exception as error:  # a damaged checkpoint: move it away, try the one before
        self._quarantine(self.directory / str(step), str(error))
    self.manager.reload()  # forget the quarantined steps
    return found

  def _verified(self, step: int, abstract_state):
    if not (self.directory / str(step) / "commit_success.txt").exists():
      raise CheckpointError("incomplete: no orbax commit marker")
    items = {"state": ocp.args.StandardRestore(abstract_state), "checksum": ocp.args.JsonRestore()}
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    if state_checksum(restored.state) != restored.checksum:
      raise CheckpointError("its data does not match the checksum saved with it (a corrupted file)")
    if not bool(all_finite(restored.state)):
      raise CheckpointError("it holds NaN or Inf values")
    return restored.state

  def _quarantine(self, path: Path, reason: str) -> None:
    """Moves a bad step out of orbax's sight. Every host reaches the same verdict; on a shared
    workdir the first one moves it."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%f")
    target = self.quarantine / f"{path.name}-{stamp}"
    log.warning("checkpoint %s is unusable (%s); moved to %s, using an older one", path, reason, target)
    if jax.process_index() == 0:
      self.quarantine.mkdir(parents=True, exist_ok=True)
      shutil.move(str(path), target)

  def close(self) -> None:
    """Waits for an in-flight save to finish, then closes."""
    self.manager.wait_until_finished()
    self.manager.close()
