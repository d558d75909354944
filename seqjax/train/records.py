"""What a run leaves in its workdir: config.json (the run's config and its model's parameter
shapes), metrics.jsonl (one JSON object per logged step), TensorBoard events (optional),
checkpoints/, quarantine/ (checkpoints that failed to verify) and .lock (held while a run is on)."""

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def _write_atomically(path: Path, text: str) -> None:
  """Readers see the old file or the new one whole, never a torn one (rename is atomic)."""
  temporary = path.with_name(path.name + ".tmp")
  temporary.write_text(text)
  os.replace(temporary, path)


def _differences(saved: dict, wanted: dict) -> list[str]:
  """Top-level keys of the two records whose values differ, as 'key' or 'key.sub'."""
  names = []
  for key in sorted(set(saved) | set(wanted)):
    a, b = saved.get(key), wanted.get(key)
    if a != b:
      inner = isinstance(a, dict) and isinstance(b, dict)
      names += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)][:5] if inner else [key]
  return names


def _empty(workdir: Path, keep: Path) -> None:
  for path in workdir.iterdir():
    if path != keep:
      if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
      else:
        path.unlink()


class WorkdirLock:
  """An exclusive lock on a workdir (`fcntl.flock` on workdir/.lock) for one run: a second run
  on the same workdir is refused at once, and the lock goes with the process (a kill -9 frees it)."""

  def __init__(self, workdir: Path):
    workdir.mkdir(parents=True, exist_ok=True)
    self.path = workdir / ".lock"
    self.file = self.path.open("a+")
    try:
      fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self.file.seek(0)
      holder = self.file.read().strip() or "unknown"
      self.file.close()
      raise RuntimeError(
        f"workdir {workdir} is in use by another run (process {holder}); wait for it to finish, or choose "
        "another workdir"
      ) from None
    self.file.seek(0)
    self.file.truncate()
    self.file.write(f"{os.getpid()}\n")
    self.file.flush()

  def release(self) -> None:
    fcntl.flock(self.file, fcntl.LOCK_UN)
    self.file.close()


def check_workdir(workdir: Path) -> None:
  if workdir.exists() and not workdir.is_dir():
    raise ValueError(f"workdir {workdir} is a file, not a folder: choose a folder path")


def prepare_workdir(workdir: str | Path, config: dict, model: dict, *, overwrite: bool = False) -> Path:
  """Checks that workdir's config.json holds the same run config and model (its parameter
  shapes), i.e. a run to resume, or writes it for a new run. A workdir of a different run is
  refused unless overwrite, which empties it (all but the lock, which the caller holds)."""
  workdir = Path(workdir)
  check_workdir(workdir)
  saved = workdir / "config.json"
  record = {"config": config, "model": model}
  text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
  if saved.exists():
    try:
      previous = json.loads(saved.read_text())
    except ValueError as error:
      raise ValueError(
        f"{saved} is empty or not valid JSON ({error}), so the run there cannot be identified; restore it, "
        "or pass overwrite=True to start over in this workdir"
      ) from None
    canonical = json.loads(text)  # the record as JSON would read it back (tuples as lists, ...)
    if previous != canonical:
      if not overwrite:
        raise ValueError(
          f"workdir {workdir} holds a run of a different config or model (differs in: "
          f"{', '.join(_differences(previous, canonical))}; see {saved}); pass overwrite=True to replace it, "
          "or choose another workdir"
        )
      _empty(workdir, keep=workdir / ".lock")
  workdir.mkdir(parents=True, exist_ok=True)
  _write_atomically(saved, text)
  return workdir


class MetricsLog:
  """Appends {"step": ..., **metrics} lines to metrics.jsonl; on resume from step s, drops lines
  logged after s (their steps are re-run), so the file reads as one uninterrupted run. A torn
  last line (a kill mid-write) is dropped with a warning; a bad line before it is an error."""

  def __init__(self, workdir: Path, *, resume_step: int, tensorboard: bool):
    self.path = workdir / "metrics.jsonl"
    kept = []
    if self.path.exists():
      lines = self.path.read_text().splitlines()
      for number, line in enumerate(lines, start=1):
        try:
          record = json.loads(line)
        except ValueError:
          if number < len(lines):
            raise ValueError(f"{self.path} line {number} is not valid JSON: {line[:80]!r}") from None
          log.warning("dropping the torn last line of %s: %r", self.path, line[:80])
          continue
        if record["step"] <= resume_step:
          kept.append(line)
    _write_atomically(self.path, "".join(line + "\n" for line in kept))
    self.writer = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # optional dependency, no TensorFlow needed

      self.writer = SummaryWriter(str(workdir / "tensorboard"))

  def write(self, step: int, metrics: dict) -> None:
    with self.path.open("a") as f:
      f.write(json.dumps({"step": step, **metrics}) + "\n")
    if self.writer is not None:
      for name, value in metrics.items():
        if isinstance(value, int | float):
          self.writer.add_scalar(name, value, step)

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
