"""Draws the training curves of fit workdirs from their metrics.jsonl, for those without TensorBoard:

    python -m harness.plot runs/charlm/charlm-runs/gru-seed0                 # -> <that folder>/metrics.png
    python -m harness.plot runs/translation/*-seed0 --out /tmp/curves.png    # several runs, one line each

One row of panels per metric: the training loss, then every other number the records hold (a
loss_fn's metrics, evaluate's numbers such as a validation score) except fit's bookkeeping
(BOOKKEEPING); on the left against the step, on the right against training seconds (`train_s`,
compilation and evaluations left out, added up over the fit calls of a resumed run). A torn last
line (a run being written, or killed mid-write) is left out with a warning; any other bad line is an
error naming the file and line.
"""

import argparse
import math
from pathlib import Path

from harness import figures
from seqjax.train.records import cumulative_train_seconds, read_metrics

# what fit adds to every record beside the loss and the loss_fn's metrics (seqjax.train.trainer._record, _loop)
BOOKKEEPING = (
  "step",
  "grad_norm",
  "finite",
  "applied",
  "vanishing",
  "exploding",
  "skipped",
  "train_s",
  "step_time_s",
  "tokens_per_s",
  "tokens",
)


def read_records(workdir: Path) -> list[dict]:
  """The records of a workdir's metrics.jsonl (`seqjax.train.records.read_metrics`); none is an error."""
  records = read_metrics(workdir)
  if not records:
    raise ValueError(f"{workdir / 'metrics.jsonl'} holds no records yet")
  return records


def _number(value) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


def metric_names(records: list[dict]) -> list[str]:
  """'loss' first, then the other numeric entries that are not fit's bookkeeping, in order of appearance."""
  names = dict.fromkeys(
    name for record in records for name, value in record.items() if _number(value) and name not in BOOKKEEPING
  )
  return sorted(names, key=lambda name: name != "loss")


def seconds(records: list[dict]) -> list[float | None]:
  """Each record's training seconds from the run's start (`cumulative_train_seconds`: added up
  over the fit calls of a resumed run); None for all when a record lacks train_s."""
  return cumulative_train_seconds(records) if all(_number(r.get("train_s")) for r in records) else [None] * len(records)


def curves(records: list[dict], name: str) -> tuple[list, list, list]:
  """(steps, seconds, values) of the records that hold `name` as a number (NaN where it is not finite)."""
  times = seconds(records)
  kept = [(r["step"], t, r[name]) for r, t in zip(records, times, strict=True) if _number(r.get(name))]
  values = [v if math.isfinite(v) else math.nan for _, _, v in kept]  # a diverged step: a gap in the line
  return [s for s, _, _ in kept], [t for _, t, _ in kept], values


def draw(runs: dict[str, list[dict]], out: Path) -> Path:
  """One row per metric, against steps (left) and training seconds (right); one line per run."""
  names = list(dict.fromkeys(name for records in runs.values() for name in metric_names(records)))
  if not names:
    raise ValueError("the records hold no metric to draw (not even a loss)")
  fig, axes = figures.figure(11.0, 3.0 * len(names) + 0.6, columns=2, rows=len(names))
  axes = axes.reshape(len(names), 2)
  for row, name in zip(axes, names, strict=True):
    for label, records in runs.items():
      steps, times, values = curves(records, name)
      style = {"marker": "o", "markersize": 3} if len(values) <= 50 else {}
      (line,) = row[0].plot(steps, values, label=label, **style)
      timed = [(t, v) for t, v in zip(times, values, strict=True) if t is not None]
      if timed:
        row[1].plot([t for t, _ in timed], [v for _, v in timed], color=line.get_color(), label=label, **style)
    row[0].set_xlabel("step")
    row[1].set_xlabel("training seconds (compilation and evaluations left out)")
    for ax in row:
      ax.set_ylabel(name)
      ax.grid(alpha=0.3)
  axes[0, 0].legend(fontsize=8)
  fig.suptitle(f"{', '.join(names)} of {len(runs)} run{'s' if len(runs) > 1 else ''}, from metrics.jsonl")
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=120)
  figures.plt.close(fig)
  return out


def main(argv=None) -> Path:
  parser = argparse.ArgumentParser(prog="python -m harness.plot", description=__doc__.split("\n\n")[0])
  parser.add_argument("runs", nargs="+", type=Path, help="fit workdirs (each holding metrics.jsonl)")
  parser.add_argument("--out", type=Path, help="the PNG to write (default: <the workdir>/metrics.png for one run)")
  args = parser.parse_args(argv)
  if args.out is None and len(args.runs) > 1:
    parser.error("with several runs, --out must name the PNG to write")
  runs = {}
  for folder in args.runs:
    path = folder / "metrics.jsonl"
    if not path.is_file():
      parser.error(f"{folder} must be a fit workdir holding metrics.jsonl (no {path})")
    label = str(folder)
    if label in runs:
      parser.error(f"{folder} is named twice")
    try:
      runs[label] = read_records(folder)
    except (OSError, UnicodeDecodeError, ValueError) as error:
      parser.error(str(error))
  out = args.out or args.runs[0] / "metrics.png"
  if out.suffix.lower() != ".png":
    parser.error(f"--out must name a .png file, got {str(out)!r}")
  draw(runs, out)
  print(f"wrote {out}")
  return out


if __name__ == "__main__":
  main()
