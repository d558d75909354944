"""Writes an experiment's numbers to <out>/<name>.json and .md with their provenance: the command
that made them, the machine and devices, the library versions and the date; then prints how they
compare with the committed ones of the same config (results/, results/*/).

Experiments write under runs/<name>/ by default (git-ignored); the committed numbers in results/
change only when a maintainer asks for it with `--out results` (`--out results/large` for a
large config, `--out results/full` for long_range's full)."""

import dataclasses
import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import flax
import jax
import numpy as np

from harness import compare, renames

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"  # the committed numbers (the README's), written only with --out results
RUNS = REPO / "runs"  # git-ignored: what experiments write by default


def default_out(experiment: str, config: str = "") -> str:
  """An experiment's default output folder: runs/<experiment>/, or runs/<experiment>/<config>/ for
  a config whose committed numbers are in results/<config>/ (large, full)."""
  return str(RUNS / experiment / config)


def portable(value):
  """value with every absolute path inside the repository made relative to it (recursively
  through dicts, lists and tuples), so results files hold no machine's checkout path."""
  if isinstance(value, dict):
    return {k: portable(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [portable(v) for v in value]
  if isinstance(value, str) and value.startswith(str(REPO) + os.sep):
    return os.path.relpath(value, REPO)
  return value


def cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
  """The CPU's model name and widest vector instruction set from /proc/cpuinfo (Linux), or the
  platform's processor string: XLA's CPU kernels, and so a float's last bits, follow both."""
  try:
    info = cpuinfo.read_text()
  except OSError:
    return platform.processor() or "cpu unknown"
  fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
  fields = {key.strip(): value.strip() for key, value in fields.items()}
  flags = set(fields.get("flags", "").split())
  isa = next((name for name in ("avx512f", "avx2", "avx", "neon", "asimd") if name in flags), "no vector flags")
  return f"{fields.get('model name', platform.processor() or 'cpu unknown')} ({isa})"


def device() -> str:
  """The devices the numbers were made on, as provenance records them: 'platform: kind xcount'."""
  return f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind} x{jax.device_count()}"


def provenance(script: str, argv) -> dict:
  """script: the module run with -m (pass __spec__.name); argv: its arguments (None: the command line's).
  The command is quoted for a POSIX shell, so it reruns as written (`--models "LSTM, forget bias 1"`)."""
  arguments = portable(list(sys.argv[1:] if argv is None else argv))
  return {
    "command": shlex.join(["python", "-m", script, *arguments]),
    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu()}, {platform.platform()}",
    "device": device(),
    "versions": {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__},
  }


def spread(values, fmt: str = ".3f", *, geometric: bool = False) -> str:
  """'mean [lowest-highest]' of the values over seeds; geometric=True takes the geometric mean
  (for quantities that span orders of magnitude)."""
  values = np.asarray(values, float)
  mean = np.exp(np.log(values).mean()) if geometric else values.mean()
  return f"{mean:{fmt}} [{values.min():{fmt}}-{values.max():{fmt}}]"


def markdown_table(rows: list[dict]) -> str:
  """A markdown table of rows that share their keys; the columns are the first row's keys, in order."""
  columns = list(rows[0])
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
  return "\n".join(lines)


def write(
  name: str, title: str, sections: list[tuple[str, str]], data: dict, *, config, script: str, argv=None
) -> Path:
  """Saves data (+ provenance and the config) as JSON and the (heading, markdown body) sections as .md under
  config.out; prints the .md. config: the run's dataclass config, with an `out` folder field."""
  meta = provenance(script, argv)
  out_dir = Path(config.out)
  out_dir.mkdir(parents=True, exist_ok=True)
  committed = committed_files(name)  # read before this run may write over one of them (--out results)
  record = portable({"provenance": meta, "config": dataclasses.asdict(config), **data})
  text = json.dumps(record, indent=2, default=float) + "\n"
  (out_dir / f"{name}.json").write_text(text)
  header = (
    f"# {title}\n\nMade by `{meta['command']}` on {meta['date']}; machine: {meta['machine']}; "
    f"device: {meta['device']}; jax {meta['versions']['jax']}, flax {meta['versions']['flax']}.\n"
  )
  body = "\n".join(f"\n## {heading}\n\n{text}\n" for heading, text in sections)
  (out_dir / f"{name}.md").write_text(header + body)
  print(header + body)
  print(f"wrote {out_dir / f'{name}.json'} and {out_dir / f'{name}.md'}")
  print(comparison(json.loads(text), committed, written=out_dir / f"{name}.json", config=config), flush=True)
  return out_dir / f"{name}.md"


def committed_files(name: str) -> list[tuple[Path, dict | None]]:
  """results/<name>.json, then results/*/<name>.json, each with its parsed content (None where it
  is not a readable JSON object)."""
  found = []
  for path in [RESULTS / f"{name}.json", *sorted(RESULTS.glob(f"*/{name}.json"))]:
    if path.is_file():
      try:
        document = json.loads(path.read_text())
      except (OSError, ValueError):
        document = None
      found.append((path, document if isinstance(document, dict) else None))
  return found


def _config_differences(first: dict, second: dict) -> list[compare.Difference]:
  return compare.differences({"config": first.get("config")}, {"config": second.get("config")})[0]


def _as_json(value):
  """value as a results file holds it (a dataclass as a dict, tuples as lists, paths portable)."""
  value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
  return portable(json.loads(json.dumps(value, default=float)))


def with_defaults(saved, config):
  """saved (a config as a results file holds it) completed, at any depth, with the fields of
  `config` it lacks that are at their defaults: options added after the file was written, whose
  defaults keep the old behaviour (a field it lacks at another value stays a difference)."""
  if not (dataclasses.is_dataclass(config) and isinstance(saved, dict)):
    return saved
  filled = dict(saved)
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if field.name in saved:
      filled[field.name] = with_defaults(saved[field.name], value)
    elif (field.default is not dataclasses.MISSING and value == field.default) or (
      field.default_factory is not dataclasses.MISSING and value == field.default_factory()
    ):
      filled[field.name] = _as_json(value)
  return filled


def comparison(record: dict, committed: list[tuple[Path, dict | None]], *, written: Path, config, show: int = 5) -> str:
  """How record's numbers compare with the first committed file made with the same config
  (harness.compare: identical, or the largest differences); if none was, why not. A committed
  config lacking fields that `config` (the run's dataclass config) holds at their defaults counts
  as the same config (with_defaults), its fields renamed since read under today's names
  (harness.renames)."""
  if not committed:
    return "no committed results of this experiment to compare with"
  committed = [
    (p, doc if doc is None else {**doc, "config": with_defaults(renames.current(doc).get("config"), config)})
    for p, doc in committed
  ]
  same = [(path, doc) for path, doc in committed if doc is not None and not _config_differences(doc, record)]
  if not same:
    path, doc = committed[0]
    if doc is None:
      return f"not compared: {portable(str(path))} is not a readable results file"
    names = [d.path.removeprefix("config.") for d in _config_differences(doc, record)]
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return (
      f"not compared with the committed numbers: {portable(str(path))} was made with another config "
      f"(differs in {', '.join(names[:8])}{more})"
    )
  path, doc = same[0]
  before = " as it was before this run" if path.resolve() == written.resolve() else ""
  found, count = compare.differences(doc, record)
  return f"compared with {portable(str(path))}{before} (same config): {compare.summary(found, count, show=show)}"
