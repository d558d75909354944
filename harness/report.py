"""Writes an experiment's numbers to results/<name>.json and .md with their provenance:
the command that made them, the machine and devices, the library versions and the date."""

import dataclasses
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import flax
import jax
import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"  # what the default configs write: the README's numbers
LARGE = RESULTS / "large"  # what the large (accelerator) configs write, apart from them


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


def provenance(script: str, argv) -> dict:
  """script: the module run with -m (pass __spec__.name); argv: its arguments (None: the command line's)."""
  device = jax.devices()[0]
  return {
    "command": " ".join(["python -m", script, *portable(list(sys.argv[1:] if argv is None else argv))]),
    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu()}, {platform.platform()}",
    "device": f"{device.platform}: {device.device_kind} x{jax.device_count()}",
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
  record = portable({"provenance": meta, "config": dataclasses.asdict(config), **data})
  (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
  header = (
    f"# {title}\n\nMade by `{meta['command']}` on {meta['date']}; machine: {meta['machine']}; "
    f"device: {meta['device']}; jax {meta['versions']['jax']}, flax {meta['versions']['flax']}.\n"
  )
  body = "\n".join(f"\n## {heading}\n\n{text}\n" for heading, text in sections)
  (out_dir / f"{name}.md").write_text(header + body)
  print(header + body)
  print(f"wrote {out_dir / f'{name}.json'} and {out_dir / f'{name}.md'}")
  return out_dir / f"{name}.md"
