"""Draws a results file's figures again from the file alone, by the drawing code of the script that
wrote it: nothing is trained or timed again.

    python -m harness.redraw results/clipping.json [more results files]   # the figures beside each file
    python -m harness.redraw results/clipping.json --out /tmp/figures     # one file, its figures elsewhere

The script is the experiment or benchmark module the file's provenance names (`python -m
experiments.clipping default` -> experiments.clipping; no other module is imported); it defines
`redraw(record, config) -> list[Path]`, which hands the file's numbers to the same drawing
functions its `main` calls, so a script's figure has one source. The config is the file's `config`
rebuilt as the script's `Config` and checked: fields added since take the script's defaults, a field the
script names in its `RENAMED` (old name -> today's dotted path, `harness.renames`) moves there, and any other field
the script no longer has is refused by name, as is a file that is not a results file or lacks a
number the figures are drawn from.
"""

import argparse
import dataclasses
import importlib
import json
import pkgutil
import sys
import types
import typing
from pathlib import Path

from harness import renames

PACKAGES = ("experiments", "benchmarks")


def script(record: dict, source: Path) -> types.ModuleType:
  """The experiment or benchmark module that wrote `record` (its provenance's `python -m NAME ...`)."""
  found = renames.script_name(record)
  package, _, name = found.partition(".") if found else ("", "", "")
  if not found or name not in {info.name for info in pkgutil.iter_modules(importlib.import_module(package).__path__)}:
    command = record.get("provenance", {}).get("command", "") if isinstance(record.get("provenance"), dict) else ""
    raise ValueError(
      f"{source}: provenance.command must name an experiment or benchmark (python -m experiments.NAME ...), "
      f"got {command!r}"
    )
  module = importlib.import_module(found)
  if not hasattr(module, "redraw"):
    raise ValueError(f"{source}: {module.__name__} has no redraw(record, config): its figures need more than the file")
  return module


def _dataclass_type(hint):
  """The dataclass a field's type annotation names (alone or as `X | None`), else None."""
  options = typing.get_args(hint) or (hint,)
  return next((option for option in options if dataclasses.is_dataclass(option)), None)


def _tuples(value):
  """JSON's lists as the tuples the configs hold (recursively)."""
  return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def rebuild(cls, values, where: str, base=None):
  """values (a parsed JSON object) as the dataclass `cls`, its other fields from `base` (an instance of cls:
  the script's defaults) or cls's defaults; `where` names it in errors (e.g. "config"). A class whose
  constructor takes more names than its fields (`flat_fields`: a Transformer config's block fields
  given flat, as configs were written before the block was embedded) reads them too."""
  if not isinstance(values, dict):
    raise ValueError(f"{where} must be an object of {cls.__name__}'s fields, got {type(values).__name__}")
  hints = typing.get_type_hints(cls)
  names = {field.name for field in dataclasses.fields(cls)} | getattr(cls, "flat_fields", frozenset())
  unknown = [name for name in values if name not in names]
  if unknown:
    raise ValueError(f"{where}.{unknown[0]}: {cls.__qualname__} has no such field (renamed or removed since)")
  fields = {}
  for name, value in values.items():
    nested = _dataclass_type(hints[name]) if name in hints else None
    if nested and value is not None:
      default = getattr(base, name, None)
      fields[name] = rebuild(nested, value, f"{where}.{name}", default if isinstance(default, nested) else None)
    else:
      fields[name] = _tuples(value)
  return dataclasses.replace(base, **fields) if base is not None else cls(**fields)


def load(path: Path) -> tuple[types.ModuleType, dict, object]:
  """The script, the record and the rebuilt, checked config of the results file at `path`."""
  try:
    record = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
    raise ValueError(f"{path}: not a readable results file ({error})") from None
  if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
    raise ValueError(f"{path}: not a results file (no config object)")
  module = script(record, path)
  try:
    values = renames.moved(record["config"], getattr(module, "RENAMED", {}))
    config = rebuild(module.Config, values, "config", module.Config())
    config = config.check() if hasattr(config, "check") else config
  except (TypeError, ValueError) as error:
    raise ValueError(f"{path}: {error}") from None
  return module, record, config


def redraw(path: str | Path, out: str | Path | None = None) -> list[Path]:
  """Draws the figures of the results file at `path` into `out` (default: the file's folder); returns their paths."""
  path = Path(path)
  module, record, config = load(path)
  folder = Path(out) if out is not None else path.parent
  folder.mkdir(parents=True, exist_ok=True)
  try:
    return module.redraw(record, dataclasses.replace(config, out=str(folder)))
  except KeyError as error:
    raise ValueError(
      f"{path}: no {error} in the file, which {module.__name__}'s figures are drawn from (written before the "
      "script recorded it?)"
    ) from None


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("files", nargs="+", type=Path, help="results files (results/NAME.json)")
  parser.add_argument("--out", type=Path, help="the folder for the figures (default: beside each file; one file only)")
  args = parser.parse_args(argv)
  if args.out is not None and len(args.files) > 1:
    parser.error("--out takes one results file (the figures of several would overwrite each other)")
  try:
    for path in args.files:
      redraw(path, args.out)
  except ValueError as error:
    sys.exit(str(error))


if __name__ == "__main__":
  main()
