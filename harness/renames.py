"""A results file's config under today's field names. A script that renames or regroups a config
field names the move in its `RENAMED`:

    RENAMED = {"hidden": "hidden_features", "steps": "train.steps", "seeds": ("seeds", seed_tuple)}

old name -> today's dotted path, or (path, convert) where the value's form changed too (convert
takes the old value, or today's, and returns today's). An old name is a top-level field or a
dotted path into a nested config ("task.embed": "task.embed_dim"). So a file written before the
move still draws (`harness.redraw`) and still compares as the same config (`harness.compare`, and
the comparison each run prints against the committed file)."""

import importlib
import json
import re

COMMAND = re.compile(r"python -m ((?:experiments|benchmarks)\.[a-z0-9_]+)(?: .*)?")


def script_name(record) -> str | None:
  """The module a results record's provenance command runs ("experiments.NAME" or
  "benchmarks.NAME"), else None."""
  provenance = record.get("provenance") if isinstance(record, dict) else None
  command = provenance.get("command", "") if isinstance(provenance, dict) else ""
  match = COMMAND.fullmatch(command) if isinstance(command, str) else None
  return match[1] if match else None


def of_record(record) -> dict:
  """The RENAMED of the script that wrote `record` ({} where its provenance names no script that
  imports, or the script has none)."""
  name = script_name(record)
  if name is None:
    return {}
  try:
    module = importlib.import_module(name)
  except ImportError:
    return {}
  return getattr(module, "RENAMED", {})


def moved(values: dict, renamed: dict) -> dict:
  """A copy of `values` (a results file's config) with each old field of `renamed` (top-level, or a
  dotted path) moved to its dotted path (e.g. "train.batch_size"), its value converted where the
  entry says how."""
  values = json.loads(json.dumps(values))  # a copy to move fields in
  for old, new in renamed.items():
    *old_parents, old_leaf = old.split(".")
    holder = _nested(values, old_parents)
    if holder is not None and old_leaf in holder:
      path, convert = new if isinstance(new, tuple) else (new, None)
      value = holder.pop(old_leaf)
      *parents, leaf = path.split(".")
      inner = values
      for parent in parents:
        inner = inner.setdefault(parent, {})
      inner[leaf] = value if convert is None else convert(value)
  return values


def _nested(values: dict, parents: list[str]) -> dict | None:
  """The object at `parents` inside `values` (values itself for []), or None where one is absent."""
  for parent in parents:
    values = values.get(parent) if isinstance(values, dict) else None
  return values if isinstance(values, dict) else None


def current(record):
  """`record` with its config under today's field names (the record itself where nothing moved)."""
  renamed = of_record(record)
  if not renamed or not isinstance(record.get("config"), dict):
    return record
  return {**record, "config": moved(record["config"], renamed)}
