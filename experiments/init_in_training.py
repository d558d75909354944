"""Initialization strategies in training, not only at initialization (seed 000, section 1.4:
LSTM forget-gate bias "1 or 2"; orthogonal recurrent matrices; identity for ReLU RNNs, IRNN).

One recurrent layer of `hidden_features` units trained on two long-range tasks of `seqjax.data.long_range`
(copy at distance `copy_distance`, adding at `adding_distance`), the same optimizer, data and
steps for every variant:

    LSTM, forget bias 0 / 1 / 2
    GRU, update-gate bias 0 / 2        (z = 1 keeps the old state: bias 2 starts near "remember")
    Elman tanh, recurrent Xavier / orthogonal; IRNN (ReLU, identity recurrence, Le et al. 2015)

Reported: training-loss curves over `seeds` (init and data order) and the test score at the end
(copy accuracy, chance 1/8; adding variance explained, 1 - MSE / Var, 0 for the mean
predictor), on fresh sequences; and each run's budget and convergence (harness.budget, computed
from the run's record by harness.long_range_runs.budget_and_convergence, so journaled runs get
them too): parameters, training tokens (steps x batch x sequence length: D + 1 on copy, T on
adding), nominal FLOPs (6 per parameter a step passes through, the readout's spread over the
sequence; elementwise gate work not counted), training seconds, and `converged` by the log10
training loss at `converged_below` decades per window (0.05, as long_range's and for its reason;
harness.budget.decades_criterion states the rule, the report prints it). Decades, because these
losses span 1e-6 to 2 nats: an absolute threshold would call every solved run converged and
every run near chance unconverged by the same margin.

Learning rates: `train.learning_rate` for every variant, or, with `learning_rates` (a grid; the
default's), each variant's own on each task, chosen first by harness.sweep's protocol: a pilot per
rate of `pilot_steps` steps (the default's: all 800, as the runs: under Adam's constant rate a
shorter pilot favours rates that learn fast and then stall) from the first seed's init and
training batches, scored by the task's loss (cross-entropy on copy, squared error on adding) on
`test_size` validation sequences: the seed's data stream at a generator of their own
(harness.long_range_runs.HELD_OUT), never a training batch or a test sequence. Then every seed
trains at the chosen rate. The grid, each pilot's validation loss and score and the choice are in
the results; the table shows each variant's rate per task. The default: 64 pilots of 800 steps
(up to 32 more past the grid's edge) beside the 48 runs the committed untuned default trained in
8.7 minutes, so ~20-30 minutes in all on 2 CPU cores (an estimate, unmeasured).

Commands:
    python -m experiments.init_in_training default   # H=64, copy D=64, adding T=100, 800 steps, lr tuned, 3 seeds
    python -m experiments.init_in_training default --learning-rates   # (no grid) all at 3e-3, as the committed results
    python -m experiments.init_in_training smoke
    python -m experiments.init_in_training large     # H=256, copy D=256, adding T=400, 5 seeds
"""

import dataclasses
import math
import time

import numpy as np
from flax import nnx

from harness import budget, cli, figures, report, sweep
from harness.journal import Journal
from harness.long_range_runs import budget_and_convergence, run_text, score_text, train_and_test
from harness.runs import Runs
from seqjax import zoo
from seqjax.data.long_range import ADDING_VARIANCE, SYMBOLS, shape
from seqjax.heads import SequencePredictor
from seqjax.train import TrainConfig

VARIANTS = {
  "LSTM, forget bias 0": ("lstm", {"forget_bias": 0.0}),
  "LSTM, forget bias 1": ("lstm", {"forget_bias": 1.0}),
  "LSTM, forget bias 2": ("lstm", {"forget_bias": 2.0}),
  "GRU, update bias 0": ("gru", {"update_bias": 0.0}),
  "GRU, update bias 2": ("gru", {"update_bias": 2.0}),
  "Elman tanh, Xavier recurrent": ("rnn_tanh", {"recurrent_init": "xavier_uniform"}),
  "Elman tanh, orthogonal recurrent": ("rnn_tanh", {"recurrent_init": "orthogonal"}),
  "IRNN (ReLU, identity recurrent)": ("rnn_relu", {"recurrent_init": "identity"}),
}
TASK_NAMES = ("copy", "adding")
# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}
GRID = (1e-3, 3e-3, 1e-2, 3e-2)  # the default's learning rates tried per variant and task (harness.sweep)


@dataclasses.dataclass(frozen=True)
class Config:
  variants: tuple[str, ...] = ()  # () = all of VARIANTS
  hidden_features: int = 64
  copy_distance: int = 64
  adding_distance: int = 100
  train: TrainConfig = TrainConfig(steps=800, batch_size=32, learning_rate=3e-3, clip_norm=1.0)
  test_size: int = 512  # fresh test sequences per run (and, with learning_rates, validation sequences per pilot)
  seeds: tuple[int, ...] = (0, 1, 2)
  learning_rates: tuple[float, ...] = GRID  # a grid: each variant's rate tuned per task (harness.sweep); (): train's
  pilot_steps: int = 800  # with learning_rates: each pilot's steps, from seed seeds[0]'s init and batches
  extend_grid: int = 2  # with learning_rates: pilots added past the grid's edge while the best rate is on it
  converged_below: float = 0.05  # decades of training loss: a run is `converged` if it fell less (harness.budget)
  out: str = report.default_out("init_in_training")

  def check(self) -> "Config":
    cli.known("variants", self.variants, VARIANTS)
    cli.at_least("hidden_features", self.hidden_features, 1)
    cli.at_least("copy_distance", self.copy_distance, 2)
    cli.at_least("adding_distance", self.adding_distance, 2)
    self.train.check()
    cli.at_least("test_size", self.test_size, 1)
    cli.check_seeds(self.seeds)
    if self.learning_rates:
      sweep.check_grid(self.learning_rates)
      sweep.check_pilots(self.pilot_steps, self.extend_grid, self.train)
    cli.positive_number("converged_below", self.converged_below)
    return self


def distance(task: str, config: Config) -> int:
  return config.copy_distance if task == "copy" else config.adding_distance


def predictor(name: str, task: str, config: Config):
  """build(rngs): one recurrent layer of the variant `name` reading the task's inputs, answering from its last step."""
  kind, options = VARIANTS[name]
  features, outputs = shape(task)
  return lambda rngs: SequencePredictor(
    outputs, config.hidden_features, zoo.rnn, causal=True, in_features=features, kind=kind, rngs=rngs, **options
  )


def pilot(name: str, task: str, rate: float, config: Config) -> dict:
  """One grid point: pilot_steps steps at `rate` from the first seed's init and training batches,
  scored by the task's loss on test_size validation sequences (never a test sequence)."""
  train = dataclasses.replace(config.train, learning_rate=rate, steps=config.pilot_steps)
  run = train_and_test(
    name, predictor(name, task, config), task, distance(task, config), config.seeds[0], train, config.test_size,
    split="validation",
  )  # fmt: skip
  loss = run.get("held_out_loss")  # none where fit stopped the run: diverged
  return {
    "valid_loss": loss if loss is not None and math.isfinite(loss) else None,
    "valid_score": run["score"],
    "diverged": run["diverged"],
    "train_valid_overlap": run["train_test_overlap"],
  }


def model_key(name: str, task: str, config: Config) -> str:
  """What the journal knows a variant on a task by: its name, the task and the fingerprint of its
  parameters at seed 0 (names, shapes and initial values), so a changed init is trained again."""
  return f"{name}|{task}|{zoo.fingerprint(predictor(name, task, config)(nnx.Rngs(0)))}"


def variant_runs(
  name: str, task: str, config: Config, journal: Journal, plan: Runs
) -> tuple[list[dict], sweep.Tuning | None]:
  """Each seed's run of `name` on `task` at train.learning_rate, or (learning_rates) at the rate its
  pilots chose -> (runs, its tuning or None)."""
  key, tuning, rate = model_key(name, task, config), None, config.train.learning_rate
  if config.learning_rates:
    tuning = sweep.tune(
      f"{name}, {task}", lambda _variant, r: pilot(name, task, r, config), journal, plan,
      learning_rates=config.learning_rates, seed=config.seeds[0], score="valid_loss", extend=config.extend_grid,
      key=key,
    )  # fmt: skip
    print(tuning.line(), flush=True)
    rate = tuning.learning_rate
  train = dataclasses.replace(config.train, learning_rate=rate)

  def one(seed: int) -> dict:
    return train_and_test(
      name, predictor(name, task, config), task, distance(task, config), seed, train, config.test_size
    )

  runs = [
    sweep.train_at(f"{name}, {task}", key, s, sweep.NO_VARIANT, rate, lambda s=s: one(s), journal, plan)
    for s in config.seeds
  ]
  runs = [{**r, "learning_rate": rate} for r in runs] if tuning else runs
  build = predictor(name, task, config)
  return [r | budget_and_convergence(r, build, train, config.converged_below) for r in runs], tuning


def pilots_text(tunings: dict[str, sweep.Tuning], config: Config) -> str:
  """The report's pilots section: how the rates were chosen, one line per variant and task, every pilot."""
  pilots = [p for tuning in tunings.values() for p in tuning.pilots]
  rows = [
    {**{k: v for k, v in row.items() if k != "chosen"}, "validation score": run_text({"score": p["valid_score"]}),
     "chosen": row["chosen"]}
    for row, p in zip(sweep.pilot_rows(tunings, "validation loss"), pilots, strict=True)
  ]  # fmt: skip
  return (
    f"Each variant's learning rate on each task is chosen by harness.sweep's protocol: pilots of "
    f"{config.pilot_steps} steps at {', '.join(f'{r:g}' for r in config.learning_rates)}, up to "
    f"{config.extend_grid} more past the grid's edge while the best sits on it, from seed {config.seeds[0]}'s init "
    f"and training batches; each is scored by the task's loss (cross-entropy on copy, squared error on adding) on "
    f"{config.test_size} validation sequences drawn apart from the test sequences (the validation score: accuracy, "
    "or variance explained).\n\n"
    + "\n".join(f"- {tuning.line()}" for tuning in tunings.values())
    + "\n\n"
    + report.markdown_table(rows)
  )


def minutes_text(runs: list[dict], plan: Runs, started: float) -> str:
  """The report's time: this process's, and what of it was read back from the journal, and the seed runs' training."""
  trained = sum(r["budget"]["train_seconds"] for r in runs if r["budget"] is not None)
  return plan.process_text(started) + f"; the seed runs' training alone: {trained / 60:.1f} minutes (pilots not timed)"


def budget_text(runs: list[dict], names: list[str], config: Config) -> str:
  """The report's budget section: how budget and convergence are counted, one row per variant and task."""
  rows = []
  for task in TASK_NAMES:
    for name in names:
      mine = [r for r in runs if r["model"] == name and r["task"] == task]
      rows.append({"variant": name, "task": task, **budget.run_cells(mine)})
  return (
    "Per run (harness.budget, from its record): parameters; training tokens = steps x batch x sequence length "
    f"({distance('copy', config) + 1} on copy, {distance('adding', config)} on adding); nominal FLOPs = 6 per "
    "parameter every step passes through (input and recurrent kernels, biases) plus the readout's spread over "
    "the sequence, times the tokens (gate nonlinearities and other elementwise work not counted); training "
    "seconds, compilation excluded, on a shared machine. "
    + budget.decades_criterion(config.converged_below, fresh_batches=True)
    + " The losses span 1e-6 to 2 nats: a run at chance is flat at 2.08 nats while a solved one still falls by "
    "orders of magnitude (the training loss is one batch per logged step, so noisy).\n\n" + report.markdown_table(rows)
  )


def draw(runs: list[dict], config: Config):
  fig, axes = figures.figure(11.0, 4.6, columns=2)
  for ax, task in zip(axes, TASK_NAMES, strict=True):
    for index, name in enumerate(VARIANTS):
      curves = [r["train_loss"] for r in runs if r["model"] == name and r["task"] == task and r["score"] is not None]
      if not curves:
        continue
      steps = np.array([s for s, _ in curves[0]])
      losses = np.array([[loss for _, loss in curve] for curve in curves])  # [seeds, logged steps]
      style = "-" if index < 5 else "--"
      ax.plot(steps, np.nanmean(losses, 0), style, color=f"C{index}", label=name)
      ax.fill_between(steps, np.nanmin(losses, 0), np.nanmax(losses, 0), color=f"C{index}", alpha=0.12)
    baseline = np.log(SYMBOLS) if task == "copy" else ADDING_VARIANCE
    ax.axhline(baseline, color="gray", lw=0.8, ls="-.", label="chance" if task == "copy" else "mean predictor")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss, cross-entropy (nats)" if task == "copy" else "training loss, MSE")
    ax.set_title(f"{task} at distance {distance(task, config)}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
  axes[1].legend(fontsize=7)
  fig.suptitle(
    f"Initialization in training: one recurrent layer, H={config.hidden_features} (mean, band: lowest-highest of "
    f"{len(config.seeds)} seeds; diverged runs left out)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "init_in_training")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["runs"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  started = time.perf_counter()
  runs, tunings = [], {}
  names = list(config.variants or VARIANTS)
  journal = Journal(
    "init_in_training", config, fields=("hidden_features", "copy_distance", "adding_distance", "train", "test_size",
                                        "pilot_steps")
  )  # fmt: skip
  plan = Runs(len(TASK_NAMES) * len(names) * (len(config.seeds) + len(config.learning_rates)))
  for task in TASK_NAMES:
    for name in names:
      mine, tuning = variant_runs(name, task, config, journal, plan)
      runs += mine
      if tuning:
        tunings[f"{name}, {task}"] = tuning
  rows = []
  for name in names:
    row = {"variant": name}
    for task in TASK_NAMES:
      mine = [r for r in runs if r["model"] == name and r["task"] == task]
      score = "accuracy" if task == "copy" else "variance explained"
      if tunings:
        row[f"{task}: lr (tuned)"] = f"{tunings[f'{name}, {task}'].learning_rate:g}"
      row[f"{task} D={distance(task, config)}: {score}, mean [range]"] = score_text(mine)
      row[f"{task}: solved seeds"] = f"{sum(r['solved'] for r in mine)} of {len(mine)}"
      row[f"{task}: converged"] = budget.converged_count(r["convergence"]["converged"] for r in mine)
    rows.append(row)
  overlap = sum(r["train_test_overlap"] for r in runs)
  figure_path = draw(runs, config)
  rate = "each variant's tuned learning rate per task (the table's lr)" if tunings else "learning rate "
  rate += "" if tunings else f"{config.train.learning_rate:g}"
  pilots = [("Learning-rate pilots", pilots_text(tunings, config))] if tunings else []
  report.write(
    "init_in_training",
    "Initialization strategies in training: forget and update biases, recurrent inits",
    [
      (
        "Test score after training",
        f"One recurrent layer, H={config.hidden_features}; {config.train.steps} Adam steps of batch "
        f"{config.train.batch_size}, {rate}, clip {config.train.clip_norm}; "
        f"seeds {list(config.seeds)} (init and data order)"
        + (sweep.seeds_note(config.seeds) if tunings else "")
        + f"; {config.test_size} fresh test sequences per run "
        f"({overlap} also drawn in training, all runs together). Solved: accuracy >= 0.95, variance explained "
        f">= 0.9. {minutes_text(runs, plan, started)}.\n\n"
        + report.markdown_table(rows)
        + f"\n\n![training loss curves]({figure_path.name})",
      ),
      ("Budget and convergence of each run", budget_text(runs, names, config)),
      *pilots,
    ],
    {
      "seeds": len(config.seeds),
      "runs": runs,
      **({"tuning": {name: t.record() for name, t in tunings.items()}} if tunings else {}),
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


CONFIGS = {
  "default": (
    "H=64, copy D=64, adding T=100, 800 steps, each variant's lr tuned per task (4 rates), 3 seeds",
    Config(),
  ),
  "smoke": (
    "two variants, H=4, D=4, 3 steps, 1 seed, one rate (--learning-rates: tuned, tests/test_init_in_training.py)",
    Config(
      variants=("LSTM, forget bias 0", "IRNN (ReLU, identity recurrent)"),
      hidden_features=4,
      copy_distance=4,
      adding_distance=4,
      train=TrainConfig(steps=3, batch_size=8, learning_rate=3e-3, log_every=1),
      test_size=8,
      seeds=(0,),
      learning_rates=(),
      pilot_steps=2,
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: H=256, copy D=256, adding T=400, 3000 steps, 5 seeds",
    Config(
      hidden_features=256,
      copy_distance=256,
      adding_distance=400,
      train=TrainConfig(steps=3000, batch_size=64, learning_rate=1e-3, clip_norm=1.0),
      test_size=2048,
      seeds=(0, 1, 2, 3, 4),
      out=report.default_out("init_in_training", "large"),
    ),
  ),
}


if __name__ == "__main__":
  main()
