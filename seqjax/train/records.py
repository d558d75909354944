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


def _differences(saved, wanted, path: str = "") -> list[tuple[str, object, object]]:
  """(dotted path, saved value, wanted value) of each value in which two JSON records differ."""
  if isinstance(saved, dict) and isinstance(wanted, dict):
    keys = sorted(set(saved) | set(wanted))
    return [d for k in keys for d in _differences(saved.get(k), wanted.get(k), f"{path}.{k}" if path else k)]
  return [] if saved == wanted else [(path, saved, wanted)]


def describe_differences(saved: dict, wanted: dict, saved_name: str, wanted_name: str, shown: int = 5) -> str:
  """Where two run records differ, with both values, e.g. "config.learning_rate: 0.01 in a, 0.02 in b"."""
  found = _differences(saved, wanted)
  text = "; ".join(f"{p}: {a!r:.60} in {saved_name}, {b!r:.60} in {wanted_name}" for p, a, b in found[:shown])
  return text + (f"; and {len(found) - shown} more" if len(found) > shown else "")


def _empty(workdir: Path, keep: Path) -> None:
  for path in workdir.iterdir():
    if path != keep:
      if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
      else:
        path.unlink()


class WorkdirLock:
  """A lock on a workdir (`fcntl.flock` on workdir/.lock): exclusive for the run that writes it,
  so a second run on the same workdir is refused at once; shared for runs that only read it
  (`shared=True`: they may read together, and not while a run writes). A shared lock takes an
  existing lock file and creates none, so a run on read-only storage can be read. The lock goes
  with the process (a kill -9 frees it)."""

  def __init__(self, workdir: Path, *, shared: bool = False):
    self.path = workdir / ".lock"
    self.file = None
    if shared:
      if not self.path.exists():
        return  # no run has written here since locks existed: nothing to wait for
      self.file = self.path.open("r")
    else:
      workdir.mkdir(parents=True, exist_ok=True)
      self.file = self.path.open("a+")
    try:
      fcntl.flock(self.file, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
      self.file.seek(0)
      holder = self.file.read().strip() or "unknown"
      self.file.close()
      raise RuntimeError(
        f"workdir {workdir} is in use by another run (process {holder}); wait for it to finish, or choose "
        "another workdir"
      ) from None
    if not shared:
      self.file.seek(0)
      self.file.truncate()
      self.file.write(f"{os.getpid()}\n")
      self.file.flush()

  def release(self) -> None:
    if self.file is not None:
      fcntl.flock(self.file, fcntl.LOCK_UN)
      self.file.close()


def check_workdir(workdir: Path) -> None:
  if workdir.exists() and not workdir.is_dir():
    raise ValueError(f"workdir {workdir} is a file, not a folder: choose a folder path")


def run_record(config: dict, model: dict) -> dict:
  """What identifies a run, in its config.json and in each of its checkpoints: the run config and
  the model's signature, as JSON reads them back (tuples as lists, other objects as their str)."""
  return json.loads(json.dumps({"config": config, "model": model}, default=str))


def prepare_workdir(workdir: str | Path, record: dict, *, overwrite: bool = False, read_only: bool = False) -> Path:
  """Checks that workdir's config.json holds `record` (see `run_record`), i.e. a run to resume,
  or writes it for a new run. A workdir of a different run is refused unless overwrite, which
  empties it (all but the lock, which the caller holds). read_only: only check, write nothing
  (the run must be there)."""
  workdir = Path(workdir)
  check_workdir(workdir)
  saved = workdir / "config.json"
  if saved.exists():
    try:
      previous = json.loads(saved.read_text())
    except ValueError as error:
      raise ValueError(
        f"{saved} is empty or not valid JSON ({error}), so the run there cannot be identified; restore it, "
        "or pass overwrite=True to start over in this workdir"
      ) from None
    if not isinstance(previous, dict):
      raise ValueError(
        f"{saved} holds a JSON {type(previous).__name__}, not a run's record (an object with config and model); "
        "restore it, or pass overwrite=True to start over in this workdir"
      )
    if previous != record:
      if read_only or not overwrite:
        raise ValueError(
          f"workdir {workdir} holds a run of a different config or model (differs in: "
          f"{describe_differences(previous, record, saved.name, 'this call')}); pass overwrite=True to replace it, "
          "or choose another workdir"
        )
      _empty(workdir, keep=workdir / ".lock")
  elif read_only:
    raise ValueError(f"workdir {workdir} holds no run to restore (no {saved.name}); stop_after=0 only reads a run")
  if not read_only:
    workdir.mkdir(parents=True, exist_ok=True)
    _write_atomically(saved, json.dumps(record, indent=2, sort_keys=True) + "\n")
  return workdir


def _logged_lines(path: Path) -> list[tuple[int, str]]:
  """(step, line) of each record of a metrics.jsonl, checked: each line a JSON object with an
  integer "step" >= 1, steps increasing (a repeated step is refused: fit never writes one). A torn
  last line (a kill mid-write) is dropped with a warning; any other bad line is a ValueError
  naming the file and line."""
  lines = path.read_bytes().split(b"\n")
  if lines[-1] == b"":
    lines.pop()  # the newline ending the last record
  logged = []
  for number, raw in enumerate(lines, start=1):
    where = f"{path} line {number}"
    try:
      line = raw.decode("utf-8")
      record = json.loads(line)
    except UnicodeDecodeError as error:
      raise ValueError(f"{where} is not UTF-8 text (byte {error.start} of the line: {error.reason})") from None
    except ValueError:
      if number < len(lines):
        raise ValueError(f"{where} is not valid JSON: {line[:80]!r}") from None
      log.warning("dropping the torn last line of %s: %r", path, line[:80])
      continue
    step = record.get("step") if isinstance(record, dict) else None
    if type(step) is not int or step < 1:
      raise ValueError(f'{where} is not a metrics record (a JSON object with an integer "step" >= 1): {line[:80]!r}')
    if logged and step <= logged[-1][0]:
      raise ValueError(
        f"{where} logs step {step} after step {logged[-1][0]}: a duplicated or reordered record; remove it, "
        "or start over in another workdir"
      )
    logged.append((step, line))
  return logged


def read_metrics(workdir: str | Path) -> list[dict]:
  """The records of a fit workdir's metrics.jsonl, in step order, checked as `MetricsLog` checks
  them on resume (a torn last line dropped with a warning, any other bad line a ValueError
  naming the file and line)."""
  path = Path(workdir) / "metrics.jsonl"
  if not path.exists():
    raise ValueError(f"{workdir} holds no metrics.jsonl: not a fit workdir, or fit has not started there")
  return [json.loads(line) for _, line in _logged_lines(path)]


def cumulative_train_seconds(records: list[dict]) -> list[float]:
  """Each record's training seconds since the run began: `train_s` counts from the start of its
  fit call, so a call that resumed a run (its clock restarting below the last value) adds the
  calls before it."""
  seconds, offset, last = [], 0.0, 0.0
  for record in records:
    offset, last = (offset + last if record["train_s"] < last else offset), record["train_s"]
    seconds.append(offset + last)
  return seconds


class MetricsLog:
  """Appends {"step": ..., **metrics} lines to metrics.jsonl; on resume from step s, drops lines
  logged after s (their steps are re-run), so the file reads as one uninterrupted run. A torn
  last line (a kill mid-write) is dropped with a warning; any other line that is not a record,
  or repeats a step, is an error (`_logged_lines`)."""

  def __init__(self, workdir: Path, *, resume_step: int, tensorboard: bool):
    self.path = workdir / "metrics.jsonl"
    kept = []
    if self.path.exists():
      kept = [line for step, line in _logged_lines(self.path) if step <= resume_step]
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
