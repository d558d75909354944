"""A journal of finished runs, so that a long experiment killed midway resumes where it stopped.

Each finished run is appended to `<out>/<name>.runs.jsonl` as one JSON line (flushed and fsynced)
holding the fingerprint of the config fields a run depends on, the run's key, its record (a JSON
object), the version of the code that trained it and a checksum of all of these. A later start
reads the runs of the same fingerprint back instead of training them again (several processes may
share one journal, each running some of the keys); lines of other fingerprints are not read back.
Fields of nested dataclasses (a TrainConfig) left at their defaults do not enter the fingerprint,
so an option added later with a default that keeps the old behaviour does not void earlier runs;
display-only ones (harness.compare.DISPLAY_ONLY: whether a progress bar was shown) enter at one
fixed value, so showing progress or not never changes it. A field renamed since runs were
journaled enters under the name it had then (`renamed`), so a rename voids no run.
The journal stays after the results are written (git ignores it): delete it to measure every run
afresh.

Nothing in the file is trusted as written. Each line that cannot be read back as a run (a torn
line from a kill during the write, invalid UTF-8, a JSON value that is not an entry such as `{}`,
`[1, 2]` or `null`, an entry without `record` or with a field of the wrong type, a JSON object
that names a field twice, a checksum that does not match: a value edited by hand) is reported
with the file and line and skipped, and its run is trained again. A run journaled twice (two
processes that trained the same key at once) is reported and its first line kept. Lines written
before checksums and code versions were journaled (no `checksum`: an earlier journal, whose
fingerprints stay valid) are accepted as they are, taken on trust, with one note per start that
counts them.

The code version is a hash of the source of the module that creates the journal (the experiment
script) and of the `seqjax` and `harness` packages, with the git commit checked out (None outside
a git checkout; the tree may hold changes the hash sees and the commit does not). A start whose
code (its source hash: the commit alone may change for a change elsewhere) differs from the code of
runs it reads back warns once, counting the runs of each version: results would then mix versions
(delete those lines to train them again with today's code).
"""

import collections
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness.compare import DISPLAY_ONLY

_REPOSITORY = Path(__file__).resolve().parents[1]
_PACKAGES = ("seqjax", "harness")  # the library code a run's record depends on, beside its script
_FIELDS = {"fingerprint": str, "key": str, "record": dict, "version": dict, "checksum": str}
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
_REQUIRED = ("fingerprint", "key", "record")


class Journal:
  """`fields`: the config fields a run's record depends on beyond its key (runs of configs that
  differ elsewhere, e.g. in which tasks they run, share their journaled runs). `renamed`: {today's
  name: the name a field had when runs were journaled} for fields renamed since (each one of
  `fields`): it enters the fingerprint under that name, so the runs journaled before the rename
  are still read back."""

  def __init__(self, name: str, config, fields: tuple[str, ...], renamed: dict[str, str] | None = None):
    names = _fingerprint_names(fields, renamed or {})
    values = {names[field]: _set_fields(getattr(config, field)) for field in fields}
    self.fingerprint = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
    self.path = Path(config.out) / f"{name}.runs.jsonl"
    self.version = code_version(Path(sys._getframe(1).f_code.co_filename))  # the caller: the experiment
    self.done: dict[str, dict] = {}
    self.resumed = 0  # runs read back from an earlier start
    print(f"finished runs are journaled in {self.path}", flush=True)
    if self.path.exists():
      self._read()

  def _read(self) -> None:
    data = self.path.read_bytes()
    if data and not data.endswith(b"\n"):  # a torn last line: the next run starts a line of its own
      with self.path.open("a") as file:
        file.write("\n")
    first_line, unchecked, versions = {}, [], []  # versions: of the runs read back with a checksum
    for number, line in enumerate(data.splitlines(), 1):
      entry, problem = _parse(line)
      if problem:
        print(f"{self.path}:{number}: {problem}: skipped (the run is trained again)", flush=True)
        continue
      if entry["fingerprint"] != self.fingerprint:
        continue
      key = entry["key"]
      if key in self.done:
        same = "the same record" if _text(entry["record"]) == _text(self.done[key]) else "a different record"
        print(f"{self.path}:{number}: run {key!r} journaled again ({same}): line {first_line[key]} kept", flush=True)
        continue
      first_line[key], self.done[key] = number, entry["record"]
      if "checksum" in entry:
        versions.append(entry["version"])
      else:
        unchecked.append(number)
    self.resumed = len(self.done)
    self._note_versions(unchecked, versions)
    if self.resumed:
      print(f"{self.path}: resuming, {self.resumed} runs already done", flush=True)

  def _note_versions(self, unchecked: list[int], versions: list[dict]) -> None:
    """A note on the runs read back of unknown code (`unchecked`: their lines, written before
    checksums), a warning on those of code other than this start's."""
    if unchecked:
      print(
        f"{self.path}: {len(unchecked)} runs (line{'s' * (len(unchecked) > 1)} {_spans(unchecked)}) were journaled "
        "before checksums and code versions: accepted unchecked, their code unknown",
        flush=True,
      )
    others = collections.defaultdict(list)  # source -> the commits of its runs
    for version in versions:
      if version["source"] != self.version["source"]:
        others[version["source"]].append(str(version["commit"]))
    if others:
      commits = {source: ", ".join(sorted(set(found))) for source, found in others.items()}
      counts = "; ".join(f"{len(others[source])} by source {source} (commit {commits[source]})" for source in others)
      print(
        f"{self.path}: WARNING {sum(map(len, others.values()))} of the {self.resumed} runs read back were trained by "
        f"other code than this start's (source {self.version['source']}, commit {self.version['commit']}): {counts}; "
        "results mix code versions unless their lines are deleted (their runs are then trained again)",
        flush=True,
      )

  def run(self, key: str, train: Callable[[], dict]) -> dict:
    """The journaled record of `key`, or train() once and journal it (train must return a dict
    that JSON can write)."""
    if key not in self.done:
      record = train()
      if not isinstance(record, dict):
        raise ValueError(f"the record of run {key!r} must be a dict (a JSON object), got {type(record).__name__}")
      entry = json.loads(json.dumps({"fingerprint": self.fingerprint, "key": key, "record": record}))
      entry["version"] = self.version
      entry["checksum"] = _checksum(entry)
      with self.path.open("a") as file:
        file.write(json.dumps(entry) + "\n")
        file.flush()
        os.fsync(file.fileno())
      self.done[key] = entry["record"]  # as a resumed run reads it back
    return self.done[key]


def _fingerprint_names(fields: tuple[str, ...], renamed: dict[str, str]) -> dict[str, str]:
  """Each field's name in the fingerprint: the one `renamed` gives it, else its own."""
  unknown = [name for name in renamed if name not in fields]
  if unknown:
    raise ValueError(f"renamed: {unknown[0]!r} is not one of the journal's fields {list(fields)}")
  names = {field: renamed.get(field, field) for field in fields}
  if len(set(names.values())) < len(names):
    shared = next(name for name, count in collections.Counter(names.values()).items() if count > 1)
    raise ValueError(f"renamed: two of the journal's fields would enter its fingerprint as {shared!r}")
  return names


def code_version(script: Path) -> dict:
  """{"source": a hash of the script's source (of its name where it is no file, e.g. `python -c`'s
  "<string>") and of every .py file in the packages, "commit": the git commit checked out, or None}."""
  digest = hashlib.sha256(script.read_bytes() if script.is_file() else str(script).encode())
  for package in _PACKAGES:
    for path in sorted((_REPOSITORY / package).rglob("*.py")):
      digest.update(b"\0" + str(path.relative_to(_REPOSITORY)).encode() + b"\0" + path.read_bytes())
  return {"source": digest.hexdigest()[:16], "commit": _git_commit()}


def _git_commit() -> str | None:
  try:
    found = subprocess.run(
      ["git", "rev-parse", "HEAD"], cwd=_REPOSITORY, capture_output=True, text=True, timeout=30, check=True
    )
  except (OSError, subprocess.SubprocessError):
    return None
  return found.stdout.strip()


def _text(value) -> str:
  """The canonical JSON of a value read back (NaN included, which == does not compare)."""
  return json.dumps(value, sort_keys=True)


def _checksum(entry: dict) -> str:
  fields = {name: value for name, value in entry.items() if name != "checksum"}
  return hashlib.sha256(_text(fields).encode()).hexdigest()[:16]


class _DuplicateName(ValueError):
  pass


def _unique_names(pairs: list[tuple[str, object]]) -> dict:
  """A JSON object's pairs -> a dict, or _DuplicateName where json's default would keep the last."""
  kept = dict(pairs)
  if len(kept) < len(pairs):
    raise _DuplicateName(next(name for name, count in collections.Counter(n for n, _ in pairs).items() if count > 1))
  return kept


def _parse(line: bytes) -> tuple[dict | None, str | None]:
  """One journal line -> (the entry, None), or (None, why it is no run)."""
  try:
    text = line.decode("utf-8")
  except UnicodeDecodeError:
    return None, "invalid UTF-8"
  try:
    entry = json.loads(text, object_pairs_hook=_unique_names)
  except _DuplicateName as name:
    return None, f"a JSON object names {str(name)!r} twice"
  except json.JSONDecodeError:
    return None, "a torn line"
  except RecursionError:
    return None, "a JSON value nested too deeply"
  problem = _entry_problem(entry, text)
  return (None, problem) if problem else (entry, None)


def _entry_problem(entry, text: str) -> str | None:
  """Why a JSON value read from a journal line (`text`) is no entry, or None."""
  if not isinstance(entry, dict):
    return f"not a journal entry (a JSON {_json_type(entry)}: {text[:40]!r})"
  missing = [name for name in _REQUIRED if name not in entry]
  if missing:
    return f"an entry without {', '.join(map(repr, missing))}"
  for name, value in entry.items():
    if name not in _FIELDS:
      return f"an entry with an unknown field {name!r}"
    if not isinstance(value, _FIELDS[name]):
      return f"{name!r} must be a JSON {_JSON_TYPES[_FIELDS[name]]}, got {_json_type(value)} {value!r:.40}"
  if ("checksum" in entry) != ("version" in entry):
    return "an entry with only one of 'checksum' and 'version'"
  version = entry.get("version", {"source": "", "commit": None})
  if set(version) != {"source", "commit"} or not isinstance(version["source"], str):
    return f"'version' must hold a string 'source' and a 'commit', got {version!r:.80}"
  if not isinstance(version["commit"], str | None):
    return f"'version' must hold a string or null 'commit', got {version['commit']!r:.40}"
  if "checksum" in entry and entry["checksum"] != _checksum(entry):
    return "the checksum does not match: the line was edited after it was written"
  return None


def _json_type(value) -> str:
  return "null" if value is None else _JSON_TYPES[type(value)]


def _spans(numbers: list[int]) -> str:
  """[1, 2, 3, 7] -> '1-3, 7'."""
  spans, start = [], numbers[0]
  for previous, number in zip(numbers, [*numbers[1:], None], strict=True):
    if number != previous + 1:
      spans.append(f"{start}" if start == previous else f"{start}-{previous}")
      start = number
  return ", ".join(spans)


def _set_fields(value):
  """A dataclass as a dict of the fields that differ from their defaults (recursively); other
  values as they are. A display-only field (a progress bar: the same run shown or not) enters as
  False whatever its value: every experiment journaled with progress=False before bars were shown
  by default, so their fingerprints, and the runs journaled under them, stay valid."""
  if not dataclasses.is_dataclass(value):
    return value
  kept = {}
  for field in dataclasses.fields(value):
    current = False if field.name in DISPLAY_ONLY else getattr(value, field.name)
    if field.default is not dataclasses.MISSING and current == field.default:
      continue
    if field.default_factory is not dataclasses.MISSING and current == field.default_factory():
      continue
    kept[field.name] = _set_fields(current)
  return kept
