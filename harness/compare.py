"""Compares two results files of one experiment or benchmark number by number, leaving out their
provenance (date, machine, versions, command), the folders they were written to and whether a
progress bar was shown (CONFIG_IGNORED):

    python -m harness.compare results/clipping.json /tmp/rerun/clipping.json [--rtol 1e-3]

prints "identical" or how many numbers differ and the most different entries by their path in
the file; exits 1 when any number differs by more than rtol
(default 0: bit for bit) or the two files are not shaped alike. A config field renamed since a
file was written is read under today's name (the writing script's RENAMED, `harness.renames`).
This is how a rerun is checked against the committed numbers (docs/experiments.md, "Reproducing
the committed numbers")."""

import argparse
import json
import math
import sys
from pathlib import Path
from typing import NamedTuple

from harness import renames

IGNORED = ("provenance",)  # when and on what the numbers were made, not what they are
# Config fields that change what a run shows, not what it computes: a run shown with a progress bar
# is the same run as one without (harness.journal leaves them out of its fingerprints too)
DISPLAY_ONLY = ("progress",)
CONFIG_IGNORED = ("out", *DISPLAY_ONLY)  # at any depth of "config" (a nested config's output folder too)


class Difference(NamedTuple):
  path: str  # e.g. "runs[3].loss"
  first: object  # the value in the first file (None where the entry is missing)
  second: object

  def relative(self) -> float:
    """|first - second| / max(|first|, |second|) for two numbers, inf for anything else."""
    a, b = self.first, self.second
    if not (_number(a) and _number(b)) or math.isnan(a) or math.isnan(b):
      return math.inf
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def _number(value) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a, b) -> bool:
  if _number(a) and _number(b):
    return a == b or (math.isnan(a) and math.isnan(b))  # NaN where both diverged is a match
  return a == b


def differences(first, second, path: str = "") -> tuple[list[Difference], int]:
  """Every leaf of two parsed JSON documents that differs, and how many leaves were compared;
  dicts are matched by key (IGNORED and CONFIG_IGNORED skipped), lists by position."""
  if isinstance(first, dict) and isinstance(second, dict):
    keys = [k for k in sorted(set(first) | set(second), key=str) if not _ignored(_join(path, k))]
    found = [Difference(_join(path, k), first.get(k), second.get(k)) for k in keys if k not in first or k not in second]
    pairs = [(_join(path, k), first[k], second[k]) for k in keys if k in first and k in second]
  elif isinstance(first, list) and isinstance(second, list):
    if len(first) != len(second):
      return [Difference(f"{path} (length)", len(first), len(second))], 1
    found, pairs = [], [(f"{path}[{i}]", a, b) for i, (a, b) in enumerate(zip(first, second, strict=True))]
  else:
    return ([] if _same(first, second) else [Difference(path, first, second)]), 1
  count = len(found)  # an entry present on one side only counts as one compared value
  for where, a, b in pairs:
    more, n = differences(a, b, where)
    found += more
    count += n
  return found, count


def _join(path: str, key) -> str:
  return f"{path}.{key}" if path else str(key)


def _ignored(path: str) -> bool:
  return path in IGNORED or (path.startswith("config.") and path.rsplit(".", 1)[-1] in CONFIG_IGNORED)


def summary(found: list[Difference], count: int, *, rtol: float = 0.0, show: int = 12) -> str:
  """The comparison in words: identical, or how many of the `count` values differ (and how many by
  more than rtol), with the `show` most different entries by their path, largest first."""
  if not found:
    return f"identical: all {count} values equal (provenance and output folder left out)"
  beyond = [d for d in found if d.relative() > rtol]
  largest = sorted(found, key=Difference.relative, reverse=True)
  lines = [
    f"{len(found)} of {count} values differ, {len(beyond)} by more than rtol {rtol:g}; "
    f"largest relative difference {largest[0].relative():.3g} at {largest[0].path}"
  ]
  lines += [f"  {d.path}: {d.first!r} -> {d.second!r} (relative {d.relative():.3g})" for d in largest[:show]]
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m harness.compare", description=__doc__.split("\n\n")[0])
  parser.add_argument("first", type=Path, help="a results .json, e.g. the committed one")
  parser.add_argument("second", type=Path, help="the same experiment's .json from a rerun")
  parser.add_argument("--rtol", type=float, default=0.0, help="relative difference allowed (default 0: exact)")
  parser.add_argument("--show", type=int, default=12, help="how many differing entries to list")
  args = parser.parse_args(argv)
  if not (args.rtol >= 0 and math.isfinite(args.rtol)):
    parser.error(f"--rtol must be a finite number >= 0, got {args.rtol}")
  if args.show < 0:
    parser.error(f"--show must be >= 0, got {args.show}")
  documents = []
  for name, path in (("first", args.first), ("second", args.second)):
    try:
      documents.append(renames.current(json.loads(path.read_text())))
    except (OSError, ValueError) as error:
      parser.error(f"{name} must be a readable results .json, got {str(path)!r}: {error}")
  found, count = differences(*documents)
  print(summary(found, count, rtol=args.rtol, show=args.show))
  return 1 if any(d.relative() > args.rtol for d in found) else 0


if __name__ == "__main__":
  sys.exit(main())
