"""A journal of finished runs, so that a long experiment killed midway resumes where it stopped.

Each finished run is appended to `<out>/<name>.runs.jsonl` as one JSON line (flushed and fsynced)
holding the fingerprint of the config fields a run depends on, the run's key and its record. A
later start reads the runs of the same fingerprint back instead of training them again (several
processes may share one journal, each running some of the keys); other lines are ignored;
a torn last line (a kill during the write) is reported and that run trained again. Fields of
nested dataclasses (a TrainConfig) left at their defaults do not enter the fingerprint, so an
option added later with a default that keeps the old behaviour does not void earlier runs. The journal
stays after the results are written (git ignores it): delete it to measure every run afresh.
"""

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path


class Journal:
  """`fields`: the config fields a run's record depends on beyond its key (runs of configs that
  differ elsewhere, e.g. in which tasks they run, share their journaled runs)."""

  def __init__(self, name: str, config, fields: tuple[str, ...]):
    values = {field: _set_fields(getattr(config, field)) for field in fields}
    self.fingerprint = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
    self.path = Path(config.out) / f"{name}.runs.jsonl"
    self.done: dict[str, dict] = {}
    self.resumed = 0  # runs read back from an earlier start
    print(f"finished runs are journaled in {self.path}", flush=True)
    if self.path.exists():
      text = self.path.read_text()
      if text and not text.endswith("\n"):  # a torn last line: the next run starts a line of its own
        with self.path.open("a") as file:
          file.write("\n")
      for number, line in enumerate(text.splitlines(), 1):
        try:
          entry = json.loads(line)
        except json.JSONDecodeError:
          print(f"{self.path}:{number}: a torn line (the run is trained again)", flush=True)
          continue
        if entry["fingerprint"] == self.fingerprint:
          self.done[entry["key"]] = entry["record"]
      self.resumed = len(self.done)
      if self.resumed:
        print(f"{self.path}: resuming, {self.resumed} runs already done", flush=True)

  def run(self, key: str, train: Callable[[], dict]) -> dict:
    """The journaled record of `key`, or train() once and journal it."""
    if key not in self.done:
      record = train()
      with self.path.open("a") as file:
        file.write(json.dumps({"fingerprint": self.fingerprint, "key": key, "record": record}) + "\n")
        file.flush()
        os.fsync(file.fileno())
      self.done[key] = json.loads(json.dumps(record))  # what a resumed run would read back
    return self.done[key]


def _set_fields(value):
  """A dataclass as a dict of the fields that differ from their defaults (recursively); other
  values as they are."""
  if not dataclasses.is_dataclass(value):
    return value
  kept = {}
  for field in dataclasses.fields(value):
    current = getattr(value, field.name)
    if field.default is not dataclasses.MISSING and current == field.default:
      continue
    if field.default_factory is not dataclasses.MISSING and current == field.default_factory():
      continue
    kept[field.name] = _set_fields(current)
  return kept
