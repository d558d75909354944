"""Gradient clipping (seed 000, section 1.3, "Hands-on drills": add gradient clipping to an RNN
and compare loss curves with and without it), measured on the adding problem.

The adding problem (Hochreiter & Schmidhuber 1997): a sequence of T (value, marker) pairs,
values uniform in [0, 1], exactly two markers set; the target is the sum of the two marked
values. An Elman tanh RNN whose recurrent matrix starts at spectral radius `recurrent_gain`
(> 1: the exploding regime) is trained by SGD with the same seed and data, once with global-norm
clipping and once without, for each of `seeds` (init and data order); the monitor's gradient
norms and any skipped non-finite steps are recorded for both. The unclipped run is expected to
overflow: its `skip_limit` lets it skip every step after that, which is what is measured.

Commands:
    python -m experiments.clipping default     # T=50, H=64, 400 SGD steps, 3 seeds
    python -m experiments.clipping smoke
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report
from harness.runs import Runs
from seqjax.recurrent import StackedRNN
from seqjax.train import TrainConfig, fit

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}


@dataclasses.dataclass(frozen=True)
class Config:
  time: int = 50
  hidden_features: int = 64
  recurrent_gain: float = 1.5
  clip_norm: float = 1.0
  seeds: tuple[int, ...] = (0, 1, 2)  # each pair of runs' train.seed
  train: TrainConfig = TrainConfig(
    steps=400,
    batch_size=32,
    learning_rate=0.05,
    optimizer="sgd",
    clip_norm=None,
    log_every=1,
    skip_limit=400,  # the unclipped run diverges on purpose: keep measuring
  )
  out: str = report.default_out("clipping")

  def check(self) -> "Config":
    self.train.check()
    cli.at_least("time", self.time, 2)
    cli.at_least("hidden_features", self.hidden_features, 1)
    cli.positive_number("recurrent_gain", self.recurrent_gain)
    cli.positive_number("clip_norm", self.clip_norm)
    cli.check_seeds(self.seeds)
    return self


CONFIGS = {
  "default": ("T=50, H=64, 400 steps (the README's numbers)", Config()),
  "smoke": (
    "T=8, H=8, 6 steps",
    Config(
      time=8,
      hidden_features=8,
      seeds=(0,),
      train=dataclasses.replace(Config().train, steps=6),
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: T=200, H=256, 2000 steps, 5 seeds",
    Config(
      time=200,
      hidden_features=256,
      seeds=(0, 1, 2, 3, 4),
      train=dataclasses.replace(Config().train, steps=2000, skip_limit=2000),
      out=report.default_out("clipping", "large"),
    ),
  ),
}


class Regressor(nnx.Module):
  """RNN over [B, T, 2] -> a scalar prediction from the last hidden state."""

  def __init__(self, config: Config, rngs: nnx.Rngs):
    self.rnn = StackedRNN("rnn_tanh", 2, config.hidden_features, recurrent_gain=config.recurrent_gain, rngs=rngs)
    self.readout = nnx.Linear(config.hidden_features, 1, rngs=rngs)

  def __call__(self, x):
    outputs = self.rnn(x)  # [B, T, H]
    return self.readout(outputs[:, -1])[:, 0]  # [B]


def adding_batch(step: int, rows: slice, config: Config) -> dict:
  rng = np.random.default_rng([config.train.seed, step])
  B, T = config.train.batch_size, config.time
  values = rng.uniform(0, 1, (B, T)).astype(np.float32)
  markers = np.zeros((B, T), np.float32)
  for b in range(B):
    markers[b, rng.choice(T, 2, replace=False)] = 1.0
  x = np.stack([values, markers], axis=-1)  # [B, T, 2]
  y = (values * markers).sum(axis=1)  # [B]
  return {"x": x[rows], "y": y[rows]}


def mse(model, batch, rng):
  del rng
  return jnp.mean((model(batch["x"]) - batch["y"]) ** 2), {}


def run(config: Config, clip_norm: float | None, seed: int) -> dict:
  config = dataclasses.replace(config, train=dataclasses.replace(config.train, clip_norm=clip_norm, seed=seed))
  result = fit(Regressor(config, nnx.Rngs(seed)), mse, lambda s, r: adding_batch(s, r, config), config.train)
  losses = np.array([h["loss"] for h in result.history])
  norms = np.array([h["grad_norm"] for h in result.history])
  tail = max(1, len(losses) // 10)
  return {
    "clip_norm": clip_norm,
    "seed": seed,
    "losses": losses.tolist(),
    "grad_norms": norms.tolist(),
    "final_loss": float(np.nanmean(losses[-tail:])),
    "best_loss": float(np.nanmin(losses)),
    "max_grad_norm": float(np.nanmax(norms)),
    "steps_grad_norm_over_10": int((norms > 10).sum()),
    "skipped_nonfinite": int(sum(not h["applied"] for h in result.history)),
    "first_nonfinite_step": next((h["step"] for h in result.history if not h["finite"]), None),
  }


SMOOTHING = 20  # steps in the figure's running mean of the clipped runs' loss


def draw(runs: list[dict], baseline: float, config: Config):
  """Left: every run's training loss on a log axis (the unclipped runs overflow to 1e30 and beyond). Right: the
  clipped runs alone on a linear axis cut at 3x the mean predictor's MSE, with each run's running mean over
  SMOOTHING steps, against predicting the mean."""
  fig, (whole, near) = figures.figure(12.0, 4.6, columns=2)
  clipped = [r for r in runs if r["clip_norm"] is not None]
  unclipped = [r for r in runs if r["clip_norm"] is None]
  for r in runs:
    label = f"clip global norm {r['clip_norm']}" if r["clip_norm"] is not None else "no clipping"
    style = {"color": "C0" if r["clip_norm"] is not None else "C3", "alpha": 0.7}
    first = r["seed"] == config.seeds[0]
    steps = np.arange(1, len(r["losses"]) + 1)
    whole.semilogy(steps, r["losses"], **style, label=label if first else None)
    if r["first_nonfinite_step"]:
      whole.axvline(r["first_nonfinite_step"], color="C3", ls=":", alpha=0.7)
    if r["clip_norm"] is not None:
      near.plot(steps, r["losses"], color="C0", lw=0.5, alpha=0.3, label="one SGD step's batch" if first else None)
      window = min(SMOOTHING, len(steps))
      running = np.convolve(r["losses"], np.ones(window) / window, mode="valid")
      near.plot(steps[window - 1 :], running, color="C0", lw=1.5, label=f"{label}: running mean of {window} steps"
                if first else None)  # fmt: skip
  whole.plot([], [], color="C3", ls=":", label="unclipped run overflows (NaN, updates skipped)")
  cut = 3 * baseline
  above = sum(int(np.sum(np.asarray(r["losses"], float) > cut)) for r in clipped)
  for ax in (whole, near):
    ax.axhline(baseline, color="0.4", ls="--", label="predicting the mean")
    ax.set_xlabel("SGD step")
    ax.legend(fontsize=8)
  whole.set_ylabel("training MSE (log scale)")
  whole.set_title("every run (log scale)", fontsize=9)
  near.set_ylim(0, cut)
  near.set_ylabel("training MSE")
  near.set_title(f"the clipped runs, linear scale (cut at {cut:.2f}: {above} steps above it)", fontsize=9)
  overflowed = [r["first_nonfinite_step"] for r in unclipped if r["first_nonfinite_step"]]
  finals = [r["final_loss"] for r in clipped]
  fig.suptitle(
    f"Adding problem, Elman tanh RNN, recurrent gain {config.recurrent_gain}, {len(config.seeds)} seeds: without "
    f"clipping {len(overflowed)} of {len(unclipped)} runs overflow"
    + (f" (first non-finite step {min(overflowed)}-{max(overflowed)})" if overflowed else "")
    + (
      f";\nwith clipping training stays finite and ends at MSE {min(finals):.3f}-{max(finals):.3f} (the mean of its "
      f"last 10% of steps), against {baseline:.3f} for predicting the mean"
      if finals
      else ""
    ),
    fontsize=10,
  )
  return figures.save(fig, config.out, "clipping")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["runs"], record["predict_mean_mse"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  plan = Runs(2 * len(config.seeds))
  runs = [
    plan.run("no clipping" if clip is None else f"clip norm {clip:g}", s, lambda c=clip, s=s: run(config, c, s))
    for clip in (None, config.clip_norm)
    for s in config.seeds
  ]
  baseline = float(np.var([adding_batch(s, slice(None), config)["y"] for s in range(20)]))
  rows = []
  for clip in (None, config.clip_norm):
    mine = [r for r in runs if r["clip_norm"] == clip]
    rows.append(
      {
        "training": "no clipping" if clip is None else f"clip global norm {clip}",
        "final loss (last 10%)": report.spread([r["final_loss"] for r in mine], ".4f"),
        "best loss": report.spread([r["best_loss"] for r in mine], ".4f"),
        "max grad norm": report.spread([r["max_grad_norm"] for r in mine], ".3g"),
        "steps with grad norm > 10": report.spread([r["steps_grad_norm_over_10"] for r in mine], ".0f"),
        "skipped (NaN/Inf)": report.spread([r["skipped_nonfinite"] for r in mine], ".0f"),
        "first non-finite step, per seed": ", ".join(str(r["first_nonfinite_step"] or "none") for r in mine),
      }
    )
  figure_path = draw(runs, baseline, config)
  report.write(
    "clipping",
    "Gradient clipping on the adding problem",
    [
      (
        f"Elman tanh RNN, T={config.time}, H={config.hidden_features}, recurrent gain {config.recurrent_gain}, "
        f"SGD lr {config.train.learning_rate}, {config.train.steps} steps, batch {config.train.batch_size}; "
        f"mean [lowest-highest] over seeds {list(config.seeds)} (init and data order)",
        report.markdown_table(rows)
        + f"\n\nPredicting the mean scores MSE {baseline:.4f} (the variance of the target)."
        + f"\n\n![training loss with and without clipping]({figure_path.name})",
      ),
    ],
    {"seeds": len(config.seeds), "runs": runs, "predict_mean_mse": baseline},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
