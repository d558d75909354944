"""Checkpoints with orbax-checkpoint's CheckpointManager: every N steps and at the end, keep the
last K, and restore the newest checkpoint that is complete.

orbax writes each step into a temporary directory and renames it when done, with a
`commit_success.txt` marker inside; a step directory without the marker (a copy cut short, a
crash mid-write on a filesystem without atomic rename) is skipped, as is one that fails to
restore, and the previous good checkpoint is used.
"""

import logging
from pathlib import Path

import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class Checkpointer:
  def __init__(self, directory: str | Path, *, save_every: int, keep: int):
    self.directory = Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state, *, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=force)

  def complete_steps(self) -> list[int]:
    return sorted(s for s in self.manager.all_steps() if (self.directory / str(s) / "commit_success.txt").exists())

  def restore_latest(self, abstract_state):
    """(step, state) of the newest complete checkpoint, restored with abstract_state's
    structure and shardings; None when there is none."""
    self.manager.wait_until_finished()
    for step in reversed(self.complete_steps()):
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
      except Exception as error:  # a damaged checkpoint: fall back to the one before
        log.warning("checkpoint %d in %s does not restore (%s); trying an older one", step, self.directory, error)
        continue
      return step, restored.state
    return None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
