"""Gradient clipping (seed 000, section 1.3, "Hands-on drills": add gradient clipping to an RNN
and compare loss curves with and without it), measured on the adding problem.

The adding problem (Hochreiter & Schmidhuber 1997): a sequence of T (value, marker) pairs,
values uniform in [0, 1], exactly two markers set; the target is the sum of the two marked
values. An Elman tanh RNN whose recurrent matrix starts at spectral radius `recurrent_gain`
(> 1: the exploding regime) is trained by SGD with the same seed and data, once with global-norm
clipping and once without, for each of `seeds` (init and data order); the monitor's gradient
norms and any skipped non-finite steps are recorded for both. The unclipped run is expected to
overflow: its `skip_limit` lets it skip every step after that, which is what is measured.

Learning rates: `train.learning_rate` for both trainings, or, with `learning_rates` (a grid; the
default's), each training's own (with clipping, without), chosen first by harness.sweep's protocol:
a pilot per rate of `pilot_steps` SGD steps (the default's: all 400, as the runs) from the first
seed's init and batches, scored by its MSE on `valid_size` validation sequences (drawn by a
generator of their own, VALIDATION_DRAW: never a training batch; the results report training
losses), then every seed at the chosen rate. An unclipped pilot whose parameters overflow scores
a huge MSE, or none where its outputs are not finite (never chosen); where every pilot of a
training scores none the sweep stops with "every pilot diverged" (its pilots stay journaled: rerun
with a grid reaching lower). The grid, each pilot's validation MSE and the choice are in the
results. The default: 10-14 pilots (four timed at its shapes: 7-13 s each, with compilation)
beside the 6 runs, ~3 minutes in all on 2 CPU cores (an estimate, unmeasured).

Budget and convergence of each run (harness.budget), computed from its record when the report is
built, so journaled runs get them too: parameters; training tokens, steps x batch x T (a token is
one time step); nominal FLOPs, 6 per parameter every step passes through (input and recurrent
kernels, bias) plus the readout's spread over the T steps (harness.budget.predictor_flops_per_token;
tanh not counted); training seconds, the compiling step excluded (recorded since runs record
them: the journaled runs before have none, "not recorded"). Converged: the mean training MSE fell
by less than `converged_below` (0.005) from one window of 20% of the steps to the next, over the
last 40% (SGD's rate is constant). Every step draws a fresh batch, so the training MSE estimates
held-out MSE without bias. In MSE, the claim's own units, and 0.005 because it is about the
clipped runs' distance below the mean predictor (0.1723 against 0.1661 at the committed rate) and
about the noise of the comparison (the standard deviation of the difference of two 80-step means
of one batch's MSE, ~0.006): a run still falling by more could yet cross the mean predictor.

Commands:
    python -m experiments.clipping default     # T=50, H=64, 400 SGD steps, each training's lr tuned, 3 seeds
    python -m experiments.clipping default --learning-rates   # (no grid) both at lr 0.05, as the committed results
    python -m experiments.clipping smoke
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import budget, cli, figures, report, sweep
from harness.journal import Journal
from harness.runs import Runs
from seqjax import zoo
from seqjax.heads import SequencePredictor
from seqjax.train import TrainConfig, fit

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}
GRID = (5e-3, 1.5e-2, 5e-2, 0.15, 0.5)  # the default's SGD learning rates tried per training (harness.sweep)
VALIDATION_DRAW = 10**9  # the validation sequences' generator: [seed, VALIDATION_DRAW], past any training step's


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
  learning_rates: tuple[float, ...] = GRID  # a grid: each training's rate tuned (harness.sweep); (): train's for both
  pilot_steps: int = 400  # with learning_rates: each pilot's SGD steps, from seed seeds[0]'s init and batches
  extend_grid: int = 2  # with learning_rates: pilots added past the grid's edge while the best rate is on it
  valid_size: int = 512  # with learning_rates: the validation sequences a pilot is scored on
  converged_below: float = 0.005  # training MSE: a run is `converged` if it fell less (harness.budget)
  out: str = report.default_out("clipping")

  def check(self) -> "Config":
    self.train.check()
    cli.at_least("time", self.time, 2)
    cli.at_least("hidden_features", self.hidden_features, 1)
    cli.positive_number("recurrent_gain", self.recurrent_gain)
    cli.positive_number("clip_norm", self.clip_norm)
    cli.check_seeds(self.seeds)
    if self.learning_rates:
      sweep.check_grid(self.learning_rates)
      sweep.check_pilots(self.pilot_steps, self.extend_grid, self.train)
      cli.at_least("valid_size", self.valid_size, 1)
    cli.positive_number("converged_below", self.converged_below)
    return self


CONFIGS = {
  "default": ("T=50, H=64, 400 steps, each training's SGD rate tuned (5 rates, 400-step pilots), 3 seeds", Config()),
  "smoke": (
    "T=8, H=8, 6 steps, one rate (with --learning-rates: the tuned path, tests/test_clipping.py)",
    Config(
      time=8,
      hidden_features=8,
      seeds=(0,),
      train=dataclasses.replace(Config().train, steps=6),
      learning_rates=(),
      pilot_steps=2,
      valid_size=8,
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


def regressor(config: Config, rngs: nnx.Rngs) -> SequencePredictor:
  """An Elman tanh RNN over [B, T, 2] -> [B, 1]: the sum, read from the last hidden state."""
  return SequencePredictor(
    1, config.hidden_features, zoo.elman_tanh, causal=True, in_features=2, recurrent_gain=config.recurrent_gain,
    rngs=rngs,
  )  # fmt: skip


def adding_problem(rng: np.random.Generator, size: int, time: int) -> dict:
  """`size` sequences of the adding problem: x [size, time, 2] (value, marker), y [size] the marked values' sum."""
  values = rng.uniform(0, 1, (size, time)).astype(np.float32)
  markers = np.zeros((size, time), np.float32)
  for b in range(size):
    markers[b, rng.choice(time, 2, replace=False)] = 1.0
  return {"x": np.stack([values, markers], axis=-1), "y": (values * markers).sum(axis=1)}


def adding_batch(step: int, rows: slice, config: Config) -> dict:
  batch = adding_problem(np.random.default_rng([config.train.seed, step]), config.train.batch_size, config.time)
  return {"x": batch["x"][rows], "y": batch["y"][rows]}


def validation_set(config: Config) -> dict:
  """The pilots' validation sequences: valid_size of the first seed's generator VALIDATION_DRAW."""
  return adding_problem(np.random.default_rng([config.seeds[0], VALIDATION_DRAW]), config.valid_size, config.time)


def mse(model, batch, rng):
  del rng
  return jnp.mean((model(batch["x"])[:, 0] - batch["y"]) ** 2), {}


def trained(config: Config, clip_norm: float | None, seed: int, rate: float):
  """fit's result of one run: `seed`'s init and batches, SGD at `rate`, clipped at clip_norm (None: not)."""
  train = dataclasses.replace(config.train, clip_norm=clip_norm, seed=seed, learning_rate=rate)
  config = dataclasses.replace(config, train=train)
  return fit(regressor(config, nnx.Rngs(seed)), mse, lambda s, r: adding_batch(s, r, config), train)


def run(config: Config, clip_norm: float | None, seed: int, rate: float) -> dict:
  result = trained(config, clip_norm, seed, rate)
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
    "train_seconds": result.history[-1]["train_s"],  # the compiling step excluded
  }


def budget_and_convergence(record: dict, config: Config) -> dict:
  """A run's budget and `converged` flag (harness.budget; the module docstring) from its record,
  so journaled runs get them too (those journaled before runs recorded seconds: None)."""
  model = nnx.eval_shape(lambda: regressor(config, nnx.Rngs(0)))
  train = dataclasses.replace(config.train, learning_rate=record.get("learning_rate", config.train.learning_rate))
  return budget.budget_and_convergence(
    parameters=zoo.count_params(model),
    tokens=train.steps * train.batch_size * config.time,
    flops_per_token=budget.predictor_flops_per_token(model, config.time),
    train_seconds=record.get("train_seconds"),
    curve=list(enumerate(record["losses"], start=1)),
    train=train,
    threshold=config.converged_below,
    score="training MSE",
  )


def pilot(config: Config, clip_norm: float | None, rate: float, valid: dict) -> dict:
  """One grid point: pilot_steps SGD steps at `rate` from the first seed's init and batches, scored
  by its MSE on the validation sequences `valid` (None where it is not finite: the run overflowed)."""
  config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=config.pilot_steps))
  result = trained(config, clip_norm, config.seeds[0], rate)
  out = np.asarray(nnx.jit(lambda model, x: model(x))(result.model, jnp.asarray(valid["x"])))[:, 0]  # [N]
  error = float(np.mean((out.astype(np.float64) - valid["y"]) ** 2))
  return {
    "valid_mse": error if np.isfinite(error) else None,
    "final_train_loss": float(result.history[-1]["loss"]),
    "first_nonfinite_step": next((h["step"] for h in result.history if not h["finite"]), None),
  }


def label(clip_norm: float | None) -> str:
  return "no clipping" if clip_norm is None else f"clip global norm {clip_norm}"


def trainings(config: Config, journal: Journal, plan: Runs) -> tuple[list[dict], dict[str, sweep.Tuning]]:
  """Each seed's run without and with clipping, at train.learning_rate or (learning_rates) at the
  rate each training's pilots chose -> (runs, {label: its tuning})."""
  valid = validation_set(config) if config.learning_rates else None
  runs, tunings = [], {}
  for clip in (None, config.clip_norm):
    rate = config.train.learning_rate
    if config.learning_rates:
      tunings[label(clip)] = sweep.tune(
        label(clip), lambda _variant, r, clip=clip: pilot(config, clip, r, valid), journal, plan,
        learning_rates=config.learning_rates, seed=config.seeds[0], score="valid_mse", extend=config.extend_grid,
      )  # fmt: skip
      print(tunings[label(clip)].line(), flush=True)
      rate = tunings[label(clip)].learning_rate
    for seed in config.seeds:
      record = sweep.train_at(
        label(clip), label(clip), seed, sweep.NO_VARIANT, rate, lambda c=clip, s=seed, r=rate: run(config, c, s, r),
        journal, plan,
      )  # fmt: skip
      record = {**record, "learning_rate": rate} if tunings else record
      runs.append(record | budget_and_convergence(record, config))
  return runs, tunings


def pilots_text(tunings: dict[str, sweep.Tuning], config: Config, valid: dict) -> str:
  """The report's pilots section: how the rates were chosen, one line per training, every pilot."""
  return (
    f"Each training's SGD rate is chosen by harness.sweep's protocol: pilots of {config.pilot_steps} steps at "
    f"{', '.join(f'{r:g}' for r in config.learning_rates)}, up to {config.extend_grid} more past the grid's edge "
    f"while the best sits on it, from seed {config.seeds[0]}'s init and batches; each is scored by its MSE on "
    f"{config.valid_size} validation sequences of their own generator, never a training batch (predicting the mean "
    f"scores {float(np.var(valid['y'])):.4f} there); a pilot whose outputs overflow scores none, never chosen.\n\n"
    + "\n".join(f"- {tuning.line()}" for tuning in tunings.values())
    + "\n\n"
    + report.markdown_table(sweep.pilot_rows(tunings, "validation MSE"))
  )


def budget_text(config: Config) -> str:
  """The report's note on the table's budget and convergence columns."""
  return (
    f"Budget per run (harness.budget): training tokens = steps x batch x T ({config.time} steps per sequence); "
    "nominal FLOPs = 6 per parameter every step passes through (input and recurrent kernels, bias) plus the "
    "readout's spread over the sequence, times the tokens (tanh not counted); train s: the compiling step "
    "excluded, not recorded by runs journaled before runs recorded it. Converged: the mean training MSE fell by "
    f"less than {config.converged_below:g} from one window of 20% of the steps to the next, over the last 40% "
    "(the rate is constant); every step draws a fresh batch, so the training MSE estimates held-out MSE without "
    f"bias. The threshold is in MSE, the claim's units: {config.converged_below:g} is about the clipped runs' "
    "distance below the mean predictor and about the noise of the comparison (at the default's 400 steps, two "
    "80-step means of one batch's MSE differ by ~0.006 from noise alone), so a run still falling by more could yet "
    "cross the mean predictor."
  )


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
  journal = Journal("clipping", config, fields=("time", "hidden_features", "recurrent_gain", "train", "pilot_steps",
                                                "valid_size"))  # fmt: skip
  plan = Runs(2 * (len(config.seeds) + len(config.learning_rates)))
  runs, tunings = trainings(config, journal, plan)
  baseline = float(np.var([adding_batch(s, slice(None), config)["y"] for s in range(20)]))
  rows = []
  for clip in (None, config.clip_norm):
    mine = [r for r in runs if r["clip_norm"] == clip]
    rows.append(
      {
        "training": label(clip),
        **({"SGD lr (tuned)": f"{tunings[label(clip)].learning_rate:g}"} if tunings else {}),
        "final loss (last 10%)": report.spread([r["final_loss"] for r in mine], ".4f"),
        "best loss": report.spread([r["best_loss"] for r in mine], ".4f"),
        "max grad norm": report.spread([r["max_grad_norm"] for r in mine], ".3g"),
        "steps with grad norm > 10": report.spread([r["steps_grad_norm_over_10"] for r in mine], ".0f"),
        "skipped (NaN/Inf)": report.spread([r["skipped_nonfinite"] for r in mine], ".0f"),
        "first non-finite step, per seed": ", ".join(str(r["first_nonfinite_step"] or "none") for r in mine),
        **budget.run_cells(mine),
      }
    )
  figure_path = draw(runs, baseline, config)
  rates = "SGD at each training's tuned rate" if tunings else f"SGD lr {config.train.learning_rate}"
  sections = [
    (
      f"Elman tanh RNN, T={config.time}, H={config.hidden_features}, recurrent gain {config.recurrent_gain}, "
      f"{rates}, {config.train.steps} steps, batch {config.train.batch_size}; "
      f"mean [lowest-highest] over seeds {list(config.seeds)} (init and data order)"
      + (sweep.seeds_note(config.seeds) if tunings else ""),
      report.markdown_table(rows)
      + f"\n\nPredicting the mean scores MSE {baseline:.4f} (the variance of the target). "
      + budget_text(config)
      + f"\n\n![training loss with and without clipping]({figure_path.name})",
    ),
  ]
  if tunings:
    sections.append(("Learning-rate pilots", pilots_text(tunings, config, validation_set(config))))
  tuning = {"tuning": {name: t.record() for name, t in tunings.items()}} if tunings else {}
  report.write(
    "clipping",
    "Gradient clipping on the adding problem",
    sections,
    {"seeds": len(config.seeds), "runs": runs, "predict_mean_mse": baseline, **tuning},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
