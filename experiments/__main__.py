"""Every experiment in one command, cheapest first:

    python -m experiments all smoke      # seconds each; writes to /tmp/seqjax-smoke, never over results/
    python -m experiments all default    # the README's numbers, into results/ (roughly 5 hours on 2 CPU cores)
    python -m experiments all large      # for an accelerator, into results/large/

Arguments after the config name go to every experiment (e.g. `--out DIR`).
"""

import sys

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


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] != "all" or len(argv) < 2:
    raise SystemExit(__doc__)
  for module in SUITE:
    module.main(argv[1:])


if __name__ == "__main__":
  main()
