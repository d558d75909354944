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

Budget and convergence of each run (harness.budget), computed from its record when the report is
built, so journaled runs get them too: parameters; training tokens, steps x batch x the padded
target length (every batch has one shape: the longest source and target, padding counted);
nominal FLOPs per target token, harness.synthetic_translation.flops_per_target_token's count (6
per encoder parameter per source position, 6 per other parameter per target position, 12 x
source length x width for each target position's scores and weighted sum; lookups and
elementwise work not counted); training seconds, the compiling step excluded; `converged` by
the log10 training loss at `converged_below` decades per window (0.05, as in init_in_training
and long_range: losses here span 1e-3 to 1 nat; harness.budget.decades_criterion states the
rule). Unlike the long-range tasks the
batches are drawn from a fixed set of training sentences (each pair seen ~1.5 times in 1,200
steps of 64 from 50,000), so the training loss is not a held-out estimate: it says whether
training had stopped, not whether the test score would move. Runs journaled before runs recorded
their curve and seconds (the committed ones) are not judged, their seconds "not recorded".

Learning rates: `task.train.learning_rate` for every variant, or, with `learning_rates` (a grid;
the default's), each variant's own, chosen first by harness.sweep's protocol: a pilot per rate of
`pilot_steps` steps (the default's: all 1,200, as the runs: under Adam's constant rate a shorter
pilot favours rates that learn fast and then stall) from the first seed's init, trained on the
training sentences less a validation band and scored by its teacher-forced cross-entropy (nats per
target token) on that band's sentences, one pair per source. The band: the sources whose hash
(the one that puts the test partition apart, harness.synthetic_translation.held_out) falls in the
`valid_percent` points above the test partition's `held_out_percent`, so no validation sentence
is a test sentence or a pilot's training sentence. Then every seed trains at the chosen rate on
all the training sentences. The grid, each pilot's validation loss and the choice are in the
results. The default, an estimate (unmeasured) from the committed untuned run, whose 18 runs of
1,200 steps took ~12 minutes: its 24 pilots of 1,200 steps (up to 12 more past the grid's edge)
beside those runs, ~30-40 minutes in all on 2 CPU cores.

Commands:
    python -m experiments.attention_scores default   # 6 variants x 3 seeds, H=32, each variant's lr tuned
    python -m experiments.attention_scores default --learning-rates   # (no grid) all at 3e-3, as the committed results
    python -m experiments.attention_scores smoke
    python -m experiments.attention_scores large     # H=128, 6000 steps: for an accelerator
"""

import dataclasses
import time

import numpy as np
from flax import nnx

from harness import budget, cli, figures, report, sweep, synthetic_translation
from harness.journal import Journal
from harness.runs import Runs
from seqjax import zoo
from seqjax.data.batching import seq2seq_batch
from seqjax.seq2seq.model import NAMED_ATTENTIONS, teacher_forced_loss
from seqjax.train import TrainConfig

GRID = (1e-3, 3e-3, 1e-2, 3e-2)  # the default's learning rates tried per variant (harness.sweep)
# config fields renamed since a committed results file was written (harness.renames): the task's
RENAMED = {f"task.{old}": f"task.{new}" for old, new in synthetic_translation.RENAMED.items()}


@dataclasses.dataclass(frozen=True)
class Config:
  task: synthetic_translation.Config = synthetic_translation.Config(
    max_clauses=6,
    test_clauses=8,
    test_sentences=100,
    fixed_hidden_features=(32,),  # unused here: every variant runs at task.attention_hidden_features
    attention_hidden_features=32,
    embed_dim=32,
    train=TrainConfig(steps=1200, batch_size=64, learning_rate=3e-3, clip_norm=1.0),
  )
  variants: tuple[str, ...] = ()  # () = all of NAMED_ATTENTIONS
  window_half_width: int = 5  # D of the local windows
  learning_rates: tuple[float, ...] = GRID  # a grid: each variant's rate tuned (harness.sweep); (): task.train's
  pilot_steps: int = 1200  # with learning_rates: each pilot's steps (at most task.train.steps), seed task.seeds[0]
  extend_grid: int = 2  # with learning_rates: pilots added past the grid's edge while the best rate is on it
  valid_percent: int = 10  # with learning_rates: the validation band of source sentences, in hash points
  converged_below: float = 0.05  # decades of training loss: a run is `converged` if it fell less (harness.budget)
  out: str = report.default_out("attention_scores")

  def check(self) -> "Config":
    self.task.check()
    cli.known("variants", self.variants, NAMED_ATTENTIONS)
    cli.at_least("window_half_width", self.window_half_width, 0)
    if self.learning_rates:
      sweep.check_grid(self.learning_rates)
      sweep.check_pilots(self.pilot_steps, self.extend_grid, self.task.train)
      if not isinstance(self.valid_percent, int) or not 1 <= self.valid_percent <= 50:
        raise ValueError(f"valid_percent must be an integer in [1, 50], got {self.valid_percent!r}")
    cli.positive_number("converged_below", self.converged_below)
    return self


def options(name: str, config: Config) -> dict:
  return {**NAMED_ATTENTIONS[name], "window_half_width": config.window_half_width}


def validation_split(vocab, train_pairs: list, config: Config) -> tuple[list, list]:
  """(the pilots' training pairs, the validation pairs): the training pairs whose source falls in
  the valid_percent hash points above the test partition's (harness.synthetic_translation.held_out)
  are the validation band, one pair per source; the pilots train on the others. A ValueError
  naming valid_percent where the band leaves no validation pair or too few to train on."""
  task = config.task
  band = task.held_out_percent + config.valid_percent
  inside = [synthetic_translation.held_out(vocab.decode(source), band) for source, _ in train_pairs]
  pilot_pairs = [pair for pair, valid in zip(train_pairs, inside, strict=True) if not valid]
  by_source = {tuple(pair[0]): pair for pair, valid in zip(train_pairs, inside, strict=True) if valid}
  if not by_source or len(pilot_pairs) < task.train.batch_size:
    raise ValueError(
      f"valid_percent={config.valid_percent} puts {len(by_source)} distinct sources of {len(train_pairs)} training "
      f"pairs in the validation band and leaves {len(pilot_pairs)} to train pilots on: it needs at least one and "
      f"task.train.batch_size = {task.train.batch_size}"
    )
  return pilot_pairs, list(by_source.values())


def pilot(name: str, rate: float, vocab, data: tuple[list, list], config: Config) -> dict:
  """One grid point: pilot_steps steps at `rate` from the first seed's init on the pilots' training
  pairs, scored by its teacher-forced cross-entropy on the validation pairs (None where not finite).
  data: (the pilots' training pairs, the validation pairs)."""
  pilot_pairs, valid_pairs = data
  task = dataclasses.replace(config.task, train=dataclasses.replace(config.task.train, learning_rate=rate))
  hidden = task.attention_hidden_features
  result = synthetic_translation.train(
    options(name, config), hidden, config.pilot_steps, vocab, pilot_pairs, task, task.seeds[0]
  )
  loss = float(nnx.jit(lambda m, batch: teacher_forced_loss(m, batch)[0])(result.model, seq2seq_batch(valid_pairs)))
  return {"valid_loss": loss if np.isfinite(loss) else None, "final_train_loss": float(result.history[-1]["loss"])}


def budget_and_convergence(record: dict, model, lengths: tuple[int, int], train: TrainConfig, threshold: float):
  """A run's budget and `converged` flag (harness.budget; the module docstring) from its record,
  so journaled runs get them too: model, its shapes; lengths, the batches' padded (source, target)
  positions; train, its training at its rate."""
  return budget.budget_and_convergence(
    parameters=zoo.count_params(model),
    tokens=train.steps * train.batch_size * lengths[1],
    flops_per_token=synthetic_translation.flops_per_target_token(model, *lengths),
    train_seconds=record.get("train_seconds"),
    curve=budget.in_decades(record.get("train_loss") or []),  # none in runs journaled before runs recorded it
    train=train,
    threshold=threshold,
    score="log10 training loss",
    not_recorded="the run recorded no training curve (journaled before runs did)",
  )


def tuned(name: str, vocab, data: tuple[list, list], config: Config, journal: Journal, plan: Runs) -> sweep.Tuning:
  """`name`'s learning rate by harness.sweep's protocol (its pilots journaled, announced in plan)."""
  tuning = sweep.tune(
    name, lambda _variant, rate: pilot(name, rate, vocab, data, config), journal, plan,
    learning_rates=config.learning_rates, seed=config.task.seeds[0], score="valid_loss", extend=config.extend_grid,
  )  # fmt: skip
  print(tuning.line(), flush=True)
  return tuning


def pilots_text(tunings: dict[str, sweep.Tuning], config: Config, data: tuple[list, list]) -> str:
  """The report's pilots section: how the rates were chosen, one line per variant, every pilot."""
  pilot_pairs, valid_pairs = data
  return (
    f"Each variant's learning rate is chosen by harness.sweep's protocol: pilots of {config.pilot_steps} steps at "
    f"{', '.join(f'{r:g}' for r in config.learning_rates)}, up to {config.extend_grid} more past the grid's edge "
    f"while the best sits on it, from seed {config.task.seeds[0]}'s init; each trains on {len(pilot_pairs):,} "
    f"training pairs and is scored by its teacher-forced cross-entropy (nats per target token) on "
    f"{len(valid_pairs):,} validation pairs (the sources of {config.valid_percent} hash points above the test "
    "partition's: no test sentence, no pilot's training sentence).\n\n"
    + "\n".join(f"- {tuning.line()}" for tuning in tunings.values())
    + "\n\n"
    + report.markdown_table(sweep.pilot_rows(tunings, "validation loss"))
  )


def budget_text(config: Config, lengths: tuple[int, int], unrecorded: bool) -> str:
  """The report's note on the table's budget and convergence columns; unrecorded: some runs were
  journaled before runs recorded their training curve and seconds."""
  return (
    f"Budget per run (harness.budget): training tokens = steps x batch x {lengths[1]} target positions (every batch "
    f"padded to the longest source, {lengths[0]}, and target + EOS); nominal FLOPs per target token = 6 per encoder "
    f"parameter per source position, 6 per other parameter, 12 x {lengths[0]} x width for the scores and weighted "
    "sum (a dot product's count for every score), times the tokens; lookups and elementwise work not counted. "
    + budget.decades_criterion(config.converged_below, fresh_batches=False)
    + (
      " Runs journaled before runs recorded their training curve and seconds are not judged, their seconds not "
      "recorded."
      if unrecorded
      else ""
    )
  )


def plot(quality: dict, config: Config):
  fig, (exact_ax, bleu_ax) = figures.figure(11, 4.5, columns=2)
  synthetic_translation.draw_quality(exact_ax, bleu_ax, quality, config.task)
  fig.suptitle(
    "Attention scores and windows on the same translation task, LSTM encoder-decoder "
    f"H={config.task.attention_hidden_features}"
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
  hidden, steps = task.attention_hidden_features, task.train.steps
  names = config.variants or NAMED_ATTENTIONS
  journal = Journal("attention_scores", config, fields=("task", "window_half_width", "pilot_steps", "valid_percent"))
  plan = Runs(len(names) * (len(task.seeds) + len(config.learning_rates)))
  data = validation_split(vocab, train_pairs, config) if config.learning_rates else None
  tunings = {}
  lengths = synthetic_translation.padded_lengths(train_pairs)  # every training batch's (source, target) positions
  for name in names:
    rate = task.train.learning_rate
    if config.learning_rates:
      tunings[name] = tuned(name, vocab, data, config, journal, plan)
      rate = tunings[name].learning_rate
    at_rate = dataclasses.replace(task, train=dataclasses.replace(task.train, learning_rate=rate))
    variant = (name, options(name, config), hidden, steps)
    evaluate = lambda s, v=variant, t=at_rate: synthetic_translation.evaluate(v, vocab, train_pairs, test, t, s)  # noqa: E731
    runs = [
      sweep.train_at(name, name, s, sweep.NO_VARIANT, rate, lambda s=s, evaluate=evaluate: evaluate(s), journal, plan)
      for s in task.seeds
    ]
    model = synthetic_translation.abstract_model(options(name, config), hidden, vocab, task)
    runs = [r | budget_and_convergence(r, model, lengths, at_rate.train, config.converged_below) for r in runs]
    quality[name] = runs
    sizes[name] = zoo.count_params(model)
    tuned_rate = {"lr (tuned)": f"{rate:g}"} if tunings else {}
    rows.append(
      {
        "variant": name,
        "parameters": f"{sizes[name]:,}",
        **tuned_rate,
        **synthetic_translation.summary_cells(runs, task),
        **budget.run_cells(runs, parameters=False),
      }
    )
  counts = {b["lengths"]: b["sentences"] for b in next(iter(quality.values()))[0]["buckets"]}
  figure_path = plot(quality, config)
  rates = (
    "each variant's tuned learning rate (the table's lr)" if tunings else f"learning rate {task.train.learning_rate:g}"
  )
  pilots = [("Learning-rate pilots", pilots_text(tunings, config, data))] if tunings else []
  report.write(
    "attention_scores",
    "Attention scores (additive, dot, general, concat) and windows (global, local-m, local-p)",
    [
      (
        f"BLEU / exact match by source length, mean over seeds {list(task.seeds)} [lowest-highest seed]"
        + (sweep.seeds_note(task.seeds) if tunings else ""),
        f"LSTM encoder and decoder, H={hidden}, embeddings {task.embed_dim}; {task.train_sentences} training sentences "
        f"of 5-{5 + 4 * task.max_clauses} words († = longer than any), {steps} Adam steps of "
        f"{task.train.batch_size}, {rates}, greedy decoding; local windows "
        f"D={config.window_half_width}. Test sentences per bucket {counts}, {overlap} of them in the training set. "
        + plan.process_text(started)
        + ". Time per decoding step: results/bench/seq2seq_step.md. "
        + budget_text(
          config,
          lengths,
          unrecorded=any(r.get("train_loss") is None for runs in quality.values() for r in runs),
        )
        + "\n\n"
        + report.markdown_table(rows)
        + f"\n\n![quality by length]({figure_path.name})",
      ),
      *pilots,
    ],
    {
      "seeds": len(task.seeds),
      "train_test_overlap": overlap,
      "test_sentences": counts,
      "parameters": sizes,
      "models": quality,
      **({"tuning": {name: t.record() for name, t in tunings.items()}} if tunings else {}),
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


CONFIGS = {
  "default": (
    "6 variants x 3 seeds at H=32, 1200 steps, each variant's lr tuned (4 rates, 1200-step pilots)",
    Config(),
  ),
  "smoke": (
    "tiny, one rate (with --learning-rates: the tuned path, tests/test_attention_scores.py)",
    Config(
      task=synthetic_translation.SMOKE,
      variants=("Luong dot", "Luong general, local-p"),
      learning_rates=(),
      pilot_steps=2,
      valid_percent=25,
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: H=128, 6000 steps, 500 test sentences per bucket",
    Config(
      task=dataclasses.replace(
        Config().task,
        attention_hidden_features=128,
        embed_dim=128,
        test_sentences=500,
        train=dataclasses.replace(Config().task.train, steps=6000),
      ),
      out=report.default_out("attention_scores", "large"),
    ),
  ),
}


if __name__ == "__main__":
  main()
