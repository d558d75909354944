"""Attention scores and windows for recurrent encoder-decoders (seed 000, section 2: "simple
dot-product attention works nearly as well as the more complex additive variant, and it's much
faster because it's just a matrix multiply"; global against local attention).

Every variant trains the same way (`task`: experiments.bottleneck's synthetic translation, in
harness/synthetic_translation.py: its held-out test partition, its seeds) with one
unidirectional LSTM encoder and decoder of width H, so only the attention
differs (`seqjax.seq2seq.model.NAMED_ATTENTIONS`):

    Bahdanau (additive)    e_j = v^T tanh(W1 h_j + W2 s_{i-1}), context fed into the decoder
    Luong dot              e_j = h_j^T h_t                      (global: every source position)
    Luong general          e_j = h_j^T W h_t
    Luong concat           e_j = v^T tanh(W [h_j; h_t])
    Luong general, local-m window [t - D, t + D]  (monotonic: the source position equals the step)
    Luong general, local-p window around p_t = S sigmoid(v^T tanh(W h_t)), Gaussian-weighted

The task reorders (SVO -> SOV, relative clauses before their verb), so the alignment is not
monotonic: local-m's assumption is wrong here by design, a test of what the window costs.
The speed half of the claim is a benchmark: `python -m benchmarks.seq2seq_step default`.

Commands:
    python -m experiments.attention_scores default   # 6 variants x 3 seeds, H=32; ~12 minutes on 2 CPU cores
    python -m experiments.attention_scores smoke
    python -m experiments.attention_scores large     # H=128, 6000 steps: for an accelerator
"""

import dataclasses
import time

from harness import cli, figures, report, synthetic_translation
from harness.runs import Runs
from seqjax.seq2seq.model import NAMED_ATTENTIONS
from seqjax.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class Config:
  task: synthetic_translation.Config = synthetic_translation.Config(
    max_clauses=6,
    test_clauses=8,
    test_sentences=100,
    fixed_hiddens=(32,),  # unused here: every variant runs at task.attention_hidden
    attention_hidden=32,
    embed=32,
    train=TrainConfig(steps=1200, batch_size=64, learning_rate=3e-3, clip_norm=1.0),
  )
  variants: tuple[str, ...] = ()  # () = all of NAMED_ATTENTIONS
  window_half_width: int = 5  # D of the local windows
  out: str = report.default_out("attention_scores")

  def check(self) -> "Config":
    self.task.check()
    cli.known("variants", self.variants, NAMED_ATTENTIONS)
    cli.at_least("window_half_width", self.window_half_width, 0)
    return self


def options(name: str, config: Config) -> dict:
  return {**NAMED_ATTENTIONS[name], "window_half_width": config.window_half_width}


def plot(quality: dict, config: Config):
  fig, (exact_ax, bleu_ax) = figures.figure(11, 4.5, columns=2)
  synthetic_translation.draw_quality(exact_ax, bleu_ax, quality, config.task)
  fig.suptitle(
    f"Attention scores and windows on the same translation task, LSTM encoder-decoder H={config.task.attention_hidden}"
    f"\n(mean, band: lowest-highest of {len(config.task.seeds)} seeds, where bands overlap the difference is within "
    "seed noise; test sentences never trained on)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "attention_scores")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [plot(record["models"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  task = config.task
  started = time.perf_counter()
  vocab, train_pairs, test, overlap = synthetic_translation.datasets(task)
  quality, rows, sizes = {}, [], {}
  hidden, steps = task.attention_hidden, task.train.steps
  names = config.variants or NAMED_ATTENTIONS
  plan = Runs(len(names) * len(task.seeds))
  for name in names:
    variant = (name, options(name, config), hidden, steps)
    evaluate = lambda s, v=variant: synthetic_translation.evaluate(v, vocab, train_pairs, test, task, s)  # noqa: E731
    runs = [plan.run(name, s, lambda s=s, evaluate=evaluate: evaluate(s)) for s in task.seeds]
    quality[name] = runs
    sizes[name] = synthetic_translation.parameters(options(name, config), hidden, vocab, task)
    rows.append({"variant": name, "parameters": f"{sizes[name]:,}", **synthetic_translation.summary_cells(runs, task)})
  counts = {b["lengths"]: b["sentences"] for b in next(iter(quality.values()))[0]["buckets"]}
  figure_path = plot(quality, config)
  report.write(
    "attention_scores",
    "Attention scores (additive, dot, general, concat) and windows (global, local-m, local-p)",
    [
      (
        f"BLEU / exact match by source length, mean over seeds {list(task.seeds)} [lowest-highest seed]",
        f"LSTM encoder and decoder, H={hidden}, embeddings {task.embed}; {task.train_sentences} training sentences "
        f"of 5-{5 + 4 * task.max_clauses} words († = longer than any), {steps} Adam steps of "
        f"{task.train.batch_size}, learning rate {task.train.learning_rate:g}, greedy decoding; local windows "
        f"D={config.window_half_width}. Test sentences per bucket {counts}, {overlap} of them in the training set. "
        f"All runs: {(time.perf_counter() - started) / 60:.1f} minutes. Time per decoding step: "
        "results/bench/seq2seq_step.md.\n\n"
        + report.markdown_table(rows)
        + f"\n\n![quality by length]({figure_path.name})",
      )
    ],
    {
      "seeds": len(task.seeds),
      "train_test_overlap": overlap,
      "test_sentences": counts,
      "parameters": sizes,
      "models": quality,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


CONFIGS = {
  "default": ("6 variants x 3 seeds at H=32, 1200 steps (the README's numbers)", Config()),
  "smoke": (
    "tiny",
    Config(task=synthetic_translation.SMOKE, variants=("Luong dot", "Luong general, local-p"), out="/tmp/seqjax-smoke"),
  ),
  "large": (
    "for an accelerator: H=128, 6000 steps, 500 test sentences per bucket",
    Config(
      task=dataclasses.replace(
        Config().task,
        attention_hidden=128,
        embed=128,
        test_sentences=500,
        train=dataclasses.replace(Config().task.train, steps=6000),
      ),
      out=report.default_out("attention_scores", "large"),
    ),
  ),
}


if __name__ == "__main__":
  main()
