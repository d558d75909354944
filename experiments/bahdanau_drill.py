"""The seed's hands-on drill (seed 000, "Hands-on drills"): a tiny Bahdanau attention over a
3-token source and a 2-token target; print the attention weights to see which source positions
are favored.

So that the weights have something to show, the tiny model first learns a task whose right
alignment is known: the target is (3rd source token, 1st source token). Of the 6^3 = 216 possible
sources, a fixed 20% (43) are held out of training; accuracy and weights are measured on them
alone. Printed: the weights of one held-out example before and after training, and the mean
weights over all held-out sources, for each of `seeds` (init and batch order); the learned model
should look at source position 3 for the first output and position 1 for the second.

Commands:
    python -m experiments.bahdanau_drill default     # 300 Adam steps x 3 seeds
    python -m experiments.bahdanau_drill smoke
"""

import dataclasses
import itertools

import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report
from harness.runs import Runs
from seqjax.data.batching import seq2seq_batch
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import TrainConfig, fit

SYMBOLS = 6  # token ids 4..9 (0-3 are PAD, BOS, EOS, UNK)
SOURCES = np.array(list(itertools.product(range(4, 4 + SYMBOLS), repeat=3)))  # all 216 sources [216, 3]
_ORDER = np.random.default_rng(2026).permutation(len(SOURCES))
HELD_OUT, TRAINING = SOURCES[_ORDER[: len(SOURCES) // 5]], SOURCES[_ORDER[len(SOURCES) // 5 :]]  # 43 / 173
# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}


@dataclasses.dataclass(frozen=True)
class Config:
  hidden_features: int = 16
  seeds: tuple[int, ...] = (0, 1, 2)  # each run's train.seed
  train: TrainConfig = TrainConfig(steps=300, batch_size=64, learning_rate=1e-2, clip_norm=None)
  out: str = report.default_out("bahdanau_drill")

  def check(self) -> "Config":
    self.train.check()
    cli.at_least("hidden_features", self.hidden_features, 1)
    cli.check_seeds(self.seeds)
    return self


CONFIGS = {
  "default": ("300 steps (the README's numbers)", Config()),
  "smoke": (
    "3 steps, 1 seed",
    Config(seeds=(0,), train=dataclasses.replace(Config().train, steps=3), out="/tmp/seqjax-smoke"),
  ),
  "large": (
    "H=64, 10 seeds",
    Config(hidden_features=64, seeds=tuple(range(10)), out=report.default_out("bahdanau_drill", "large")),
  ),
}


def examples(sources: np.ndarray) -> dict:
  return seq2seq_batch([(list(s), [s[2], s[0]]) for s in sources])


def training_batch(step: int, rows: slice, seed: int, batch_size: int) -> dict:
  draw = np.random.default_rng([seed, step]).integers(0, len(TRAINING), batch_size)  # held-in sources only
  batch = examples(TRAINING[draw])
  return {name: array[rows] for name, array in batch.items()}


def attention_table(weights: np.ndarray) -> str:
  rows = [{"output step": t + 1, **{f"source {s + 1}": f"{weights[t, s]:.3f}" for s in range(3)}} for t in range(2)]
  return report.markdown_table(rows)


def weights_of(model, batch) -> np.ndarray:
  _, weights = model(batch["src"], batch["tgt_in"], batch["src_mask"])
  return np.asarray(weights)[:, :2]  # [B, 2 output steps, 3 source positions]; step 3 is EOS


def run(config: Config, seed: int, model_config: Seq2SeqConfig, probe: dict, held_out: dict) -> dict:
  model = Seq2Seq(model_config, rngs=nnx.Rngs(seed))
  before = weights_of(model, probe)[0]
  train = dataclasses.replace(config.train, seed=seed)
  result = fit(model, teacher_forced_loss, lambda step, rows: training_batch(step, rows, seed, train.batch_size), train)
  model = result.model
  logits, _ = model(held_out["src"], held_out["tgt_in"], held_out["src_mask"])
  accuracy = float(jnp.mean(jnp.argmax(logits[:, :2], -1) == held_out["tgt_out"][:, :2]))
  mean = weights_of(model, held_out).mean(0)
  return {
    "seed": seed,
    "final_loss": result.history[-1]["loss"],
    "accuracy": accuracy,
    "before": before.tolist(),
    "after": weights_of(model, probe)[0].tolist(),
    "mean": mean.tolist(),
    "on_the_right_position": [float(mean[0, 2]), float(mean[1, 0])],  # output 1 -> source 3, output 2 -> source 1
  }


def draw(runs: list[dict], config: Config):
  """Mean attention over the held-out sources, averaged over seeds, as a heatmap with values."""
  mean = np.mean([r["mean"] for r in runs], axis=0)  # [2 outputs, 3 sources]
  fig, ax = figures.figure(6.5, 3.4)
  image = ax.imshow(mean, vmin=0, vmax=1, cmap="Blues")
  for t in range(2):
    for s in range(3):
      ax.text(s, t, f"{mean[t, s]:.2f}", ha="center", va="center", color="white" if mean[t, s] > 0.5 else "black")
  ax.set_xticks(range(3), [f"source {s + 1}" for s in range(3)])
  ax.set_yticks(range(2), ["output 1 (= source 3)", "output 2 (= source 1)"])
  fig.colorbar(image, ax=ax, label="attention weight")
  fig.suptitle(
    f"Bahdanau attention finds the alignment on {len(HELD_OUT)} unseen sources\n"
    f"(mean over sources and {len(config.seeds)} seeds)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "bahdanau_drill")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["runs"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  model_config = Seq2SeqConfig(
    4 + SYMBOLS,
    4 + SYMBOLS,
    embed_dim=8,
    hidden_features=config.hidden_features,
    attention="bahdanau",
    bidirectional_encoder=True,
  )
  probe, held_out = examples(HELD_OUT[:1]), examples(HELD_OUT)
  plan = Runs(len(config.seeds))
  runs = [plan.run("Bahdanau", s, lambda s=s: run(config, s, model_config, probe, held_out)) for s in config.seeds]
  first = runs[0]
  source = " ".join(str(t) for t in probe["src"][0])
  right = np.array([r["on_the_right_position"] for r in runs])  # [seeds, 2]
  accuracy = [r["accuracy"] for r in runs]
  summary = [
    {
      "output step": t + 1,
      "should look at": f"source {3 if t == 0 else 1}",
      "mean weight there [lowest-highest seed]": report.spread(right[:, t]),
    }
    for t in range(2)
  ]
  figure_path = draw(runs, config)
  report.write(
    "bahdanau_drill",
    "A tiny Bahdanau attention: 3-token source, 2-token target",
    [
      (
        f"Held-out example [{source}], target (3rd, 1st); weights before training (seed {first['seed']})",
        attention_table(np.array(first["before"])),
      ),
      (
        f"The same example after {config.train.steps} steps (seed {first['seed']}, "
        f"final loss {first['final_loss']:.4f})",
        attention_table(np.array(first["after"])),
      ),
      (
        f"Mean weights over the {len(HELD_OUT)} held-out sources (none seen in training; "
        f"{len(TRAINING)} of the 216 possible are trained on), seeds {list(config.seeds)}; output accuracy "
        f"{report.spread(accuracy)}",
        report.markdown_table(summary) + "\n\nAdditive score e_j = v^T tanh(W1 h_j + W2 s_{i-1}) over a bidirectional "
        f"LSTM encoder, H={config.hidden_features}.\n\n![mean attention on held-out sources]({figure_path.name})",
      ),
    ],
    {"seeds": len(config.seeds), "train_test_overlap": 0, "held_out": HELD_OUT.tolist(), "runs": runs},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
