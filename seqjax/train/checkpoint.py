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
import hashlib
import json
import logging
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from seqjax.train.grad_health import all_finite
from seqjax.train.records import describe_differences

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


class CheckpointSaveError(RuntimeError):
  """A checkpoint could not be written (a full disk, ...); the ones before it are kept."""


def run_fingerprint(record: dict) -> str:
  """sha256 of a run record (`records.run_record`) in a canonical JSON form."""
  return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _size(count: int) -> str:
  """A byte count for people: "512 B", "28.0 KiB", "1.4 GiB"."""
  unit = max((u for u in range(4) if count >= 1024**u), default=0)
  return f"{count} B" if unit == 0 else f"{count / 1024**unit:.1f} {'BKMG'[unit]}iB"


class Checkpointer:
  """run: the run's record (config and model, as in config.json), saved with each checkpoint
  with its fingerprint; a restore refuses a checkpoint of another record. read_only: restore
  only, writing nothing (no folder made, nothing quarantined: a checkpoint that fails is skipped
  with a warning), so a run on read-only storage can be read."""

  def __init__(self, directory: str | Path, *, save_every: int, keep: int, run: dict, read_only: bool = False):
    self.directory = Path(directory).absolute()
    self.quarantine = self.directory.parent / "quarantine"
    self.run = run
    self.read_only = read_only
    self.saving = None  # the step of the newest save started
    if read_only:
      options = ocp.CheckpointManagerOptions(read_only=True, create=False)
    else:
      self.directory.mkdir(parents=True, exist_ok=True)
      for path in self.directory.glob("*.orbax-checkpoint-tmp*"):
        self._quarantine(path, "an unfinished write")
      options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state, *, force: bool = False) -> None:
    """Starts saving `step` in the background when it is due (every save_every steps, or force).
    Called every step: a save that failed in the background is reported (CheckpointSaveError)
    at the first call after it failed, never later."""
    if not self.manager.is_saving_in_progress():
      self._finish()  # returns at once; raises if the last save failed
    if not (force or self.manager.should_save(step)):
      return
    self._finish()  # orbax waits for the save before to finish before it starts one
    self.saving = step
    items = {
      "state": ocp.args.StandardSave(state),
      "checksum": ocp.args.JsonSave(state_checksum(state)),
      "run": ocp.args.JsonSave({"record": self.run, "sha256": run_fingerprint(self.run)}),
    }
    try:
      self.manager.save(step, args=ocp.args.Composite(**items), force=force)
    except Exception as error:
      raise self._save_failed(error) from error

  def _finish(self) -> None:
    """Waits for the save in flight; a failed one raises CheckpointSaveError (once)."""
    try:
      self.manager.wait_until_finished()
    except Exception as error:  # orbax has logged its traceback
      raise self._save_failed(error) from None

  def _save_failed(self, error: Exception) -> CheckpointSaveError:
    free = _size(shutil.disk_usage(self.directory).free)
    kept = max(filter(self._committed, self.step_dirs()), default=None)  # (orbax's own list has forgotten
    # the steps `keep` would rotate out after this save)
    before = "there is no checkpoint before it" if kept is None else f"the checkpoint of step {kept} is kept"
    return CheckpointSaveError(
      f"the checkpoint of step {self.saving} could not be written in workdir {self.directory.parent} "
      f"({type(error).__name__}: {error}); {free} free there. Training stopped; {before}: "
      "fix the cause (free space if the disk is full) and run fit again to resume"
    )

  def _committed(self, step: int) -> bool:
    return (self.directory / str(step) / "commit_success.txt").exists()

  def step_dirs(self) -> list[int]:
    """Every step folder present, complete or not, oldest first."""
    if not self.directory.is_dir():
      return []
    return sorted(int(p.name) for p in self.directory.iterdir() if p.is_dir() and p.name.isdigit())

  def restore_latest(self, abstract_state):
    """(step, state) of the newest checkpoint that is complete and verifies, restored with
    abstract_state's structure and shardings; None when there is none. Newer steps that fail
    are quarantined (each with a warning). A checkpoint of another run record (config.json
    edited by hand) is refused: ValueError."""
    self.manager.wait_until_finished()
    for step in reversed(self.step_dirs()):
      try:
        state, run = self._verified(step, abstract_state)
      except Exception as error:  # a damaged checkpoint: move it away, try the one before
        self._quarantine(self.directory / str(step), str(error))
        continue
      self.manager.reload()  # forget the quarantined steps
      self._check_run(step, run)
      return step, state
    self.manager.reload()
    return None

  def _verified(self, step: int, abstract_state):
    """-> (state, its run record; None for a checkpoint written before records were saved)."""
    path = self.directory / str(step)
    if not self._committed(step):
      raise CheckpointError("incomplete: no orbax commit marker")
    items = {"state": ocp.args.StandardRestore(abstract_state), "checksum": ocp.args.JsonRestore()}
    if (path / "run").is_dir():
      items["run"] = ocp.args.JsonRestore()
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    if state_checksum(restored.state) != restored.checksum:
      raise CheckpointError("its data does not match the checksum saved with it (a corrupted file)")
    if not bool(all_finite(restored.state)):
      raise CheckpointError("it holds NaN or Inf values")
    if "run" not in items:
      return restored.state, None
    run = restored.run
    if not isinstance(run, dict) or run.get("sha256") != run_fingerprint(run.get("record")):
      raise CheckpointError("its run record does not match the fingerprint saved with it (a corrupted file)")
    return restored.state, run["record"]

  def _check_run(self, step: int, run: dict | None) -> None:
    config = self.directory.parent / "config.json"
    if run is None:
      log.warning("checkpoint %s predates run records: its config cannot be checked against %s", step, config)
    elif run_fingerprint(run) != run_fingerprint(self.run):
      raise ValueError(
        f"checkpoint {self.directory / str(step)} was written by another run than {config} describes "
        f"({describe_differences(run, self.run, f'checkpoint {step}', config.name)}): {config.name} was edited "
        "after the run started. Restore it, or pass overwrite=True to start over"
      )

  def _quarantine(self, path: Path, reason: str) -> None:
    """Moves a bad step out of orbax's sight. Every host reaches the same verdict; on a shared
    workdir the first one moves it. Read-only: only skipped, with a warning."""
    if self.read_only:
      log.warning("checkpoint %s is unusable (%s); using an older one", path, reason)
      return
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%f")
    target = self.quarantine / f"{path.name}-{stamp}"
    log.warning("checkpoint %s is unusable (%s); moved to %s, using an older one", path, reason, target)
    if jax.process_index() == 0:
      self.quarantine.mkdir(parents=True, exist_ok=True)
      shutil.move(str(path), target)

  def close(self) -> None:
    """Waits for the save in flight to finish (CheckpointSaveError if it failed), then closes."""
    try:
      self._finish()
    finally:
      self.manager.close()
