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
predictor), on fresh sequences.

Commands:
    python -m experiments.init_in_training default   # H=64, copy D=64, adding T=100, 800 steps, 3 seeds
    python -m experiments.init_in_training smoke
    python -m experiments.init_in_training large     # H=256, copy D=256, adding T=400, 5 seeds
"""

import dataclasses
import time

import numpy as np

from harness import cli, figures, report
from harness.long_range_runs import score_text, train_and_test
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


@dataclasses.dataclass(frozen=True)
class Config:
  variants: tuple[str, ...] = ()  # () = all of VARIANTS
  hidden_features: int = 64
  copy_distance: int = 64
  adding_distance: int = 100
  train: TrainConfig = TrainConfig(steps=800, batch_size=32, learning_rate=3e-3, clip_norm=1.0)
  test_size: int = 512
  seeds: tuple[int, ...] = (0, 1, 2)
  out: str = report.default_out("init_in_training")

  def check(self) -> "Config":
    cli.known("variants", self.variants, VARIANTS)
    cli.at_least("hidden_features", self.hidden_features, 1)
    cli.at_least("copy_distance", self.copy_distance, 2)
    cli.at_least("adding_distance", self.adding_distance, 2)
    self.train.check()
    cli.at_least("test_size", self.test_size, 1)
    cli.check_seeds(self.seeds)
    return self


def distance(task: str, config: Config) -> int:
  return config.copy_distance if task == "copy" else config.adding_distance


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
  runs = []
  names = list(config.variants or VARIANTS)
  plan = Runs(len(TASK_NAMES) * len(names) * len(config.seeds))
  for task in TASK_NAMES:
    for name in names:
      kind, options = VARIANTS[name]

      def build(rngs, kind=kind, options=options, task=task):
        """One recurrent layer reading the task's inputs, answering from its last step."""
        features, outputs = shape(task)
        return SequencePredictor(
          outputs, config.hidden_features, zoo.rnn, causal=True, in_features=features, kind=kind, rngs=rngs, **options
        )

      def train(seed, name=name, build=build, task=task):
        return train_and_test(name, build, task, distance(task, config), seed, config.train, config.test_size)

      runs += [plan.run(f"{name}, {task}", s, lambda s=s, train=train: train(s)) for s in config.seeds]
  rows = []
  for name in names:
    row = {"variant": name}
    for task in TASK_NAMES:
      mine = [r for r in runs if r["model"] == name and r["task"] == task]
      score = "accuracy" if task == "copy" else "variance explained"
      row[f"{task} D={distance(task, config)}: {score}, mean [range]"] = score_text(mine)
      row[f"{task}: solved seeds"] = f"{sum(r['solved'] for r in mine)} of {len(mine)}"
    rows.append(row)
  overlap = sum(r["train_test_overlap"] for r in runs)
  figure_path = draw(runs, config)
  report.write(
    "init_in_training",
    "Initialization strategies in training: forget and update biases, recurrent inits",
    [
      (
        "Test score after training",
        f"One recurrent layer, H={config.hidden_features}; {config.train.steps} Adam steps of batch "
        f"{config.train.batch_size}, learning rate {config.train.learning_rate:g}, clip {config.train.clip_norm}; "
        f"seeds {list(config.seeds)} (init and data order); {config.test_size} fresh test sequences per run "
        f"({overlap} also drawn in training, all runs together). Solved: accuracy >= 0.95, variance explained "
        f">= 0.9. All runs: "
        f"{(time.perf_counter() - started) / 60:.1f} minutes.\n\n"
        + report.markdown_table(rows)
        + f"\n\n![training loss curves]({figure_path.name})",
      )
    ],
    {"seeds": len(config.seeds), "runs": runs},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


CONFIGS = {
  "default": ("H=64, copy D=64, adding T=100, 800 steps, 3 seeds (the README's numbers)", Config()),
  "smoke": (
    "two variants, H=4, D=4, 3 steps, 1 seed",
    Config(
      variants=("LSTM, forget bias 0", "IRNN (ReLU, identity recurrent)"),
      hidden_features=4,
      copy_distance=4,
      adding_distance=4,
      train=TrainConfig(steps=3, batch_size=8, learning_rate=3e-3, log_every=1),
      test_size=8,
      seeds=(0,),
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
