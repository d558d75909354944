"""Every experiment in one command, cheapest first:

    python -m experiments all smoke                  # tiny configs; writes to /tmp/seqjax-smoke
    python -m experiments all default                # the README's numbers, into runs/<experiment>/ (git-ignored)
    python -m experiments all default --out results  # maintainers: over the committed numbers
    python -m experiments all large                  # for an accelerator, into runs/<experiment>/large/

Arguments after the config name go to every experiment (e.g. `--out DIR`, `--train.no-progress`).
Each experiment starts under a header and the command ends with a table: each experiment's
seconds, the folder it wrote and how many of its runs it read back from a journal (runs finished
by an earlier start, not trained again: delete `<out>/<name>.runs.jsonl` to train them afresh).
"""

import sys
import time

from experiments import (
  attention_scores,
  bahdanau_drill,
  bottleneck,
  charlm,
  clipping,
  contextual_embeddings,
  gradient_decay,
  hidden_state_drill,
  init_in_training,
  long_range,
  positional_encodings,
  tbptt,
  translation,
)
from harness import cli, report, runs
from harness.runs import duration

SUITE = (
  hidden_state_drill,
  bahdanau_drill,
  clipping,
  tbptt,
  gradient_decay,
  contextual_embeddings,
  positional_encodings,
  init_in_training,
  bottleneck,
  attention_scores,
  long_range,
  charlm,  # needs the corpus: python -m seqjax.data.bible prepare
  translation,  # needs the corpus too
)


def name_of(module) -> str:
  return module.__name__.rsplit(".", 1)[-1]


def run_one(module, argv: list[str], number: int) -> dict:
  """Runs one experiment under a header -> its row of the summary table."""
  out = cli.parse(module.CONFIGS, argv).out  # what the experiment will parse again: its output folder
  print(f"\n===== [{number} of {len(SUITE)}] python -m {module.__name__} {' '.join(argv)} =====", flush=True)
  before = len(runs.started)
  started = time.perf_counter()
  module.main(argv)
  reused = sum(plan.reused for plan in runs.started[before:])
  return {
    "experiment": name_of(module),
    "seconds": f"{time.perf_counter() - started:.0f}",
    "wrote to": report.portable(out),
    "runs read back from a journal": reused,
  }


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] != "all" or len(argv) < 2:
    raise SystemExit(__doc__)
  started, rows = time.perf_counter(), []
  try:
    for number, module in enumerate(SUITE, 1):
      rows.append(run_one(module, argv[1:], number))
  finally:  # also when one fails: the table of those that finished
    print(f"\n===== {len(rows)} of {len(SUITE)} experiments in {duration(time.perf_counter() - started)} =====")
    if rows:
      print(report.markdown_table(rows), flush=True)


if __name__ == "__main__":
  main()
