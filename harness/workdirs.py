"""Where an experiment's `fit` runs keep their checkpoints: one workdir per run record.

`run_workdir(parent, name, record)` is parent/<name>-<8 hex digits>, the digits a hash of the
record `fit` writes to the workdir's config.json (its `run_config`). A run of another config,
model, seed or rate gets a workdir of its own, so experiments call `fit` without `overwrite`:
no start empties a workdir that holds another run's checkpoints (a killed run resumes from its
own; before, a renamed config field changed the record and the long translation run's
checkpoints were emptied). A record should hold what identifies the run, not where its files go
(no `out` or `workdir`), so that a moved output folder still resumes.
"""

import hashlib
import json
from pathlib import Path


def run_workdir(parent: str | Path, name: str, record: dict) -> Path:
  """parent/<name>-<the first 8 hex digits of sha256 of the record's sorted JSON>."""
  if not isinstance(record, dict):
    raise ValueError(f"record must be a dict (the run's config.json), got {type(record).__name__}")
  if not name or "/" in name or name in (".", ".."):
    raise ValueError(f"name must be one folder name (no '/'), got {name!r}")
  digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:8]
  return Path(parent) / f"{name}-{digest}"
