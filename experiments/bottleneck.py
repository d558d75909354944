"""The encoder-decoder bottleneck (seed 000, section 1.6): translation quality against sentence
length for a fixed-context seq2seq model and for attention models, trained the same way, each
from several seeds (the seed sets the initialization and the batch order; the data are fixed).

Data: the synthetic translation task of `seqjax.data.synthetic` (SVO -> SOV reordering, relative
clauses moved before their verb, the final verb agreeing with the subject across every clause);
a sentence with k relative clauses has 5 + 4k source words. Trained on k = 0..max_clauses;
tested on k = 0..test_clauses, so the longest buckets (41 words at k = 9) lie beyond the training
range and are reported as such. The test set is disjoint from training by construction: a hash
of the source sentence puts `held_out_percent` of all possible sentences in the test partition,
and training draws only from the rest (the overlap is counted and recorded, 0). Short lengths
have few distinct sentences (300 at 5 words), so their buckets hold fewer test sentences.

Capacity against slow learning: the fixed-context model is trained at several widths H and, at
one width, for twice the steps. If more steps leave the long buckets where they are while a wider
context moves the cliff, the cliff is the fixed context's capacity, not slow learning. The
attention models run at the smallest width.

BLEU (sacrebleu) and exact match by source length, as the mean over seeds with the lowest and
highest seed. The seed's table (BLEU 35-40 at 5-10 words falling under 15 at 40+) comes from real
translation; this measures the same mechanism on a task where length is the only thing that varies.

Commands:
    python -m experiments.bottleneck default     # 6 models x 3 seeds: the longest, about an hour on 2 CPU cores
    python -m experiments.bottleneck smoke
    python -m experiments.bottleneck large       # H up to 1024, 10000 steps: for an accelerator
"""

import dataclasses

from harness import cli, figures, report, synthetic_translation
from harness.runs import Runs
from harness.synthetic_translation import SMOKE, Config, datasets, draw_quality, evaluate, parameters, summary_cells

FIXED = {"attention": "none"}
BAHDANAU = {"attention": "bahdanau", "bidirectional_encoder": True}
LUONG = {"attention": "luong", "score": "general"}
# config fields renamed since a committed results file was written (harness.renames): the task's
RENAMED = synthetic_translation.RENAMED


CONFIGS = {
  "default": ("train k = 0..6 clauses, test to k = 9 (41 words), H 64-256 (the README's numbers)", Config()),
  "smoke": ("tiny", SMOKE),
  "large": (
    "for an accelerator: H up to 1024, 10000 steps, 20000-step control",
    Config(
      fixed_hidden_features=(128, 256, 512, 1024),
      attention_hidden_features=128,
      control_hidden_features=256,
      control_steps=20000,
      test_sentences=500,
      train=dataclasses.replace(Config().train, steps=10000),
      out=report.default_out("bottleneck", "large"),
    ),
  ),
}


def variants(config: Config) -> list[tuple[str, dict, int, int]]:
  """(name, Seq2Seq options, hidden, steps) of every model the experiment trains."""
  steps = config.train.steps
  runs = [(f"fixed context, H={h}", FIXED, h, steps) for h in config.fixed_hidden_features]
  runs.append(
    (f"fixed context, H={config.control_hidden_features}, {config.control_steps} steps", FIXED,
     config.control_hidden_features, config.control_steps)
  )  # fmt: skip
  h = config.attention_hidden_features
  return [*runs, (f"Bahdanau (bidirectional), H={h}", BAHDANAU, h, steps), (f"Luong (general), H={h}", LUONG, h, steps)]


def plot(data: dict, config: Config):
  fig, (exact_ax, bleu_ax) = figures.figure(11, 4.5, columns=2)
  draw_quality(exact_ax, bleu_ax, data, config)
  fig.suptitle(
    "Seq2seq quality against sentence length: fixed context at several widths H, and attention\n"
    f"(mean and min-max over {len(config.seeds)} seeds; test sentences never trained on)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "bottleneck")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [plot(record["models"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  vocab, train_pairs, test, overlap = datasets(config)
  rows, data, sizes = [], {}, {}
  plan = Runs(len(variants(config)) * len(config.seeds))
  for variant in variants(config):
    runs = [
      plan.run(variant[0], s, lambda s=s, v=variant: evaluate(v, vocab, train_pairs, test, config, s))
      for s in config.seeds
    ]
    data[variant[0]] = runs
    sizes[variant[0]] = parameters(variant[1], variant[2], vocab, config)
    rows.append({"model": variant[0], "parameters": f"{sizes[variant[0]]:,}", **summary_cells(runs, config)})
  counts = {b["lengths"]: b["sentences"] for b in runs[0]["buckets"]}  # the same test set for every run
  figure_path = plot(data, config)
  report.write(
    "bottleneck",
    "Seq2seq quality against sentence length: the fixed-context bottleneck",
    [
      (
        f"BLEU / exact match by source length: mean over seeds {list(config.seeds)} [lowest-highest seed] "
        f"(BLEU n/a: references under 4 words); trained on {config.train_sentences} sentences of "
        f"5-{5 + 4 * config.max_clauses} words († = longer than any training sentence), {config.train.steps} "
        f"Adam steps of {config.train.batch_size} unless named, greedy decoding; test sentences per bucket "
        f"{counts}, {overlap} of them in the training set",
        report.markdown_table(rows) + f"\n\n![exact match and BLEU against length]({figure_path.name})",
      )
    ],
    {
      "seeds": len(config.seeds),
      "train_test_overlap": overlap,
      "test_sentences": counts,
      "parameters": sizes,
      "models": data,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
