"""Vanishing and exploding gradients through time (seed 000, section 1.3), measured.

Part 1, the multiplier table: for h_t = lambda * Q h_{t-1} with Q orthogonal, autodiff
gives ||dh_k/dh_0|| = lambda^k; the seed's table lists 0.9, 0.95, 1.05, 1.1 over 30, 50, 100 steps.

Part 2, real cells: a readout of the last hidden state, L = sum(h_T w), differentiated with
respect to every input x_t. The ratio ||dL/dx_0|| / ||dL/dx_{T-1}|| says how much learning
signal reaches the first position. Claims checked: tanh RNNs with Xavier or shrunken
recurrent weights vanish; orthogonal init delays it; LSTM (forget bias 1) and GRU keep far
more gradient at the start; a recurrent gain > 1 with ReLU explodes. Beside them, a causal
Transformer encoder of `num_layers` pre-LN blocks (the seed's "a 24-layer Transformer has 24
gradient steps, not 512"): the path from any input to the last output crosses `num_layers` blocks,
whatever the distance.

Part 3, after training: every model (same init) is trained by `fit` to output the first input's
first feature from its last step (MSE; predicting 0 scores 1.0), then measured again with its
trained readout on the same inputs. Training can learn to keep the gradient (or not): the final
loss says whether the model learned the T-step dependency.

Commands (the README's main job):
    python -m experiments.gradient_decay default [--time 100] [--hidden-features 64] [--batch 16] [--seeds 0 1 2]
    python -m experiments.gradient_decay smoke
    python -m experiments.gradient_decay large     # T=512 (the seed's 512 tokens), H=256, 2000 training steps
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx

from harness import cli, figures, report
from harness.runs import Runs
from seqjax import zoo
from seqjax.heads import SequenceEncoder
from seqjax.recurrent import StackedRNN, initializer, spectrum
from seqjax.train import TrainConfig, fit

MULTIPLIERS = (0.9, 0.95, 1.05, 1.1)
STEPS = (30, 50, 100)

# (label, kind, options for the cell): the zoo's recurrent stack of that kind, or its Transformer (`encoder`)
MODELS = [
  ("Elman tanh, Xavier W_h", "rnn_tanh", {"recurrent_init": "xavier_uniform"}),
  ("Elman tanh, orthogonal W_h", "rnn_tanh", {"recurrent_init": "orthogonal"}),
  ("Elman tanh, orthogonal W_h x0.5", "rnn_tanh", {"recurrent_init": "orthogonal", "recurrent_gain": 0.5}),
  ("Elman ReLU, identity W_h (IRNN)", "rnn_relu", {"recurrent_init": "identity"}),
  ("Elman ReLU, identity W_h x1.1", "rnn_relu", {"recurrent_init": "identity", "recurrent_gain": 1.1}),
  ("LSTM, forget bias 0", "lstm", {"forget_bias": 0.0}),
  ("LSTM, forget bias 1", "lstm", {"forget_bias": 1.0}),
  ("LSTM, forget bias 2", "lstm", {"forget_bias": 2.0}),
  # the seed's listing as written: PyTorch's default init, U(+-1/sqrt(H)), no forget bias (biases 0 here)
  (
    "LSTM, PyTorch default init",
    "lstm",
    {"kernel_init": "pytorch_uniform", "recurrent_init": "pytorch_uniform", "forget_bias": 0.0},
  ),
  ("GRU", "gru", {}),
  ("GRU, update-gate bias 2", "gru", {"update_bias": 2.0}),
  ("Transformer encoder, causal, pre-LN", "transformer", {}),
]
KINDS = tuple(dict.fromkeys(kind for _, kind, _ in MODELS))


def seeds_of_count(seeds):
  """`seeds` as a results file written before issue #29 holds it, a count n (the seeds 0..n-1), as
  today's list of seeds (today's passes unchanged)."""
  return list(range(seeds)) if isinstance(seeds, int) else seeds


# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features", "layers": "num_layers", "seeds": ("seeds", seeds_of_count)}


@dataclasses.dataclass(frozen=True)
class Config:
  time: int = 100
  hidden_features: int = 64
  features: int = 8
  batch: int = 16
  seeds: tuple[int, ...] = (0, 1, 2)  # each draws init, inputs and training batches
  num_layers: int = 2  # the Transformer encoder's blocks (width `hidden_features`, 4 heads)
  kinds: tuple[str, ...] = KINDS  # the rows of MODELS to run, by kind
  train: TrainConfig = TrainConfig(steps=300, batch_size=32, learning_rate=1e-3, clip_norm=1.0)
  out: str = report.default_out("gradient_decay")

  def check(self) -> "Config":
    self.train.check()
    for name in ("time", "hidden_features", "features", "batch", "num_layers"):
      cli.at_least(name, getattr(self, name), 1)
    cli.check_seeds(self.seeds)
    if not self.kinds or any(kind not in KINDS for kind in self.kinds):
      raise ValueError(f"kinds must name at least one of {KINDS}, got {self.kinds}")
    if self.hidden_features % 4:
      raise ValueError(
        f"hidden_features must be a multiple of 4 (the Transformer's 4 heads), got {self.hidden_features}"
      )
    return self


CONFIGS = {
  "default": ("T=100, H=64, 3 seeds, 300 training steps (the README's numbers)", Config()),
  "smoke": (
    "T=12, H=8, 1 seed, 2 training steps",
    Config(
      time=12,
      hidden_features=8,
      batch=2,
      seeds=(0,),
      kinds=("gru", "transformer"),
      train=dataclasses.replace(Config().train, steps=2, batch_size=8),
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: T=512, H=256, 4 layers, 2000 training steps",
    Config(
      time=512,
      hidden_features=256,
      num_layers=4,
      train=dataclasses.replace(Config().train, steps=2000),
      out=report.default_out("gradient_decay", "large"),
    ),
  ),
}


def build(kind: str, options: dict, config: Config, seed: int) -> SequenceEncoder:
  """The encoder x [B, T, F] -> [B, T, H] of a row of MODELS (`seqjax.zoo`): one recurrent layer of
  `kind` reading x, or for "transformer" a projection to H, sinusoidal positions and `num_layers` causal
  pre-LN blocks of 4 heads."""
  if kind == "transformer":
    spec, options = (
      "transformer",
      {"num_layers": config.num_layers, "num_heads": 4, "ff_factor": 4, "position": "sinusoidal"},
    )
  else:
    spec, options = "rnn", {"kind": kind, **options}
  builder = zoo.resolve(spec).builder
  return SequenceEncoder(
    config.hidden_features,
    builder,
    causal=True,
    in_features=config.features,
    context=config.time,
    rngs=nnx.Rngs(seed),
    **options,
  )


class LastStepRegressor(nnx.Module):
  """encoder, then a linear readout of its last output: x [B, T, F] -> [B]. This experiment's own,
  not `seqjax.heads.SequencePredictor` (pool="last"), which would draw the same encoder but its
  readout from the encoder's stream after it: here the readout draws from a seed of its own
  (10_000 + seed), the draw the committed trained numbers were made with; and `trained` hands back
  the trained encoder alone (`model.encoder`, outputs [B, T, H]) for its gradients to be measured,
  where a SequencePredictor's call always pools and reads out."""

  def __init__(self, encoder: SequenceEncoder, hidden_features: int, *, rngs: nnx.Rngs):
    self.encoder = encoder
    self.readout = nnx.Linear(hidden_features, 1, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.readout(self.encoder(x)[:, -1])[:, 0]


def first_input_loss(model: LastStepRegressor, batch: dict, rng):
  """MSE of the model's output against the first input's first feature (predicting 0 scores 1.0)."""
  x = batch["x"]
  return jnp.mean((model(x) - x[:, 0, 0]) ** 2), {}


def trained(kind: str, options: dict, config: Config, seed: int) -> tuple[nnx.Module, jax.Array, float]:
  """The model of `seed` trained on the first-input task -> (encoder, readout vector [H], final loss)."""
  model = LastStepRegressor(build(kind, options, config, seed), config.hidden_features, rngs=nnx.Rngs(10_000 + seed))

  def batch_fn(step: int, rows: slice) -> dict:
    x = np.random.default_rng((seed, step)).standard_normal((config.train.batch_size, config.time, config.features))
    return {"x": x[rows].astype(np.float32)}

  result = fit(model, first_input_loss, batch_fn, dataclasses.replace(config.train, seed=seed))
  return result.model.encoder, result.model.readout.kernel[...][:, 0], result.history[-1]["loss"]


def multiplier_norms(hidden: int) -> dict[float, list[float]]:
  """||d h_k / d h_0|| for the linear recurrence h_t = lambda Q h_{t-1}, by reverse-mode autodiff."""
  q = initializer("orthogonal")(jax.random.key(0), (hidden, hidden), jnp.float32)
  h0 = jax.random.normal(jax.random.key(1), (hidden,))
  table = {}
  for lam in MULTIPLIERS:
    norms = []
    for k in STEPS:

      def final_state(h, k=k, lam=lam):
        return jax.lax.fori_loop(0, k, lambda _, h: lam * (q @ h), h)

      jacobian = jax.jacfwd(final_state)(h0)  # [H, H]
      norms.append(float(np.linalg.norm(np.asarray(jacobian), ord=2)))
    table[lam] = norms
  return table


def input_gradient_norms(model: nnx.Module, config: Config, seed: int, readout=None) -> np.ndarray:
  """||dL/dx_t|| for L = sum(h_T . readout), averaged over a batch of `seed`'s inputs, t = 0..T-1.
  readout [H]: None draws the random one of `seed` (at init)."""
  graphdef, params = nnx.split(model)
  keys = jax.random.split(jax.random.key(1000 + seed), 2)
  x = jax.random.normal(keys[0], (config.batch, config.time, config.features))
  H = config.hidden_features
  readout = jax.random.normal(keys[1], (H,)) / np.sqrt(H) if readout is None else readout

  @jax.jit
  def grads(params, x):
    def loss(x):
      outputs = nnx.merge(graphdef, params)(x)  # [B, T, H]
      return jnp.sum(outputs[:, -1] @ readout)

    return jax.grad(loss)(x)  # [B, T, F]

  g = np.asarray(grads(params, x))
  return np.linalg.norm(g, axis=-1).mean(axis=0)  # [T]


def spectral_radius(model: SequenceEncoder, config: Config) -> float | None:
  """Of the first layer's recurrent matrix (its first gate); None for the Transformer."""
  if not isinstance(model.stack, StackedRNN):
    return None
  recurrent = np.asarray(model.stack.layers[0].cell.recurrent_kernel[...])  # [H, gates x H]
  return spectrum(recurrent[:, : config.hidden_features]).spectral_radius


def draw(per_seed: dict, config: Config):
  """Gradient norm by position, at init and after training: geometric mean with the min-max band."""
  fig, axes = figures.figure(14.0, 6.0, columns=2)
  positions = np.arange(config.time)
  colors = matplotlib.colormaps["tab20"].colors[::2] + matplotlib.colormaps["tab20"].colors[1::2]
  for ax, stage in zip(axes, ("norms", "norms_trained"), strict=True):
    for (label, runs), color in zip(per_seed.items(), colors, strict=False):
      norms = np.asarray(runs[stage])  # [seeds, T]
      with np.errstate(divide="ignore"):  # an underflowed 0 plots as nothing, not as a warning
        ax.semilogy(positions, np.exp(np.log(norms).mean(axis=0)), label=label, color=color)
      ax.fill_between(positions, norms.min(axis=0), norms.max(axis=0), color=color, alpha=0.15)
    ax.set_xlabel("input position t (the loss reads the last step, t = T-1)")
    ax.set_ylabel("‖dL/dx_t‖ (gradient norm, log scale)")
    ax.grid(True, which="major", alpha=0.3)
  axes[0].set_title("at initialization", fontsize=10)
  axes[1].set_title(f"after {config.train.steps} training steps on recalling x_0", fontsize=10)
  axes[0].legend(fontsize=7, ncol=2)
  fig.suptitle(
    f"Gradient reaching input t (T={config.time}, {len(config.seeds)} seeds, band = min-max): tanh RNNs, GRU and the "
    "PyTorch-default LSTM vanish;\nforget bias 2 keeps it, and through attention it does not decay with distance",
    fontsize=10,
  )
  return figures.save(fig, config.out, "gradient_decay")


def draw_multipliers(table: dict, config: Config):
  """lambda^k against k for the seed's multipliers, with autodiff's values at 30, 50, 100 steps."""
  fig, ax = figures.figure(6.5, 4.2)
  k = np.arange(0, max(STEPS) + 1)
  for lam, norms in table.items():
    (line,) = ax.semilogy(k, float(lam) ** k, label=f"λ = {lam}: λ^k")
    ax.plot(STEPS, norms, "o", color=line.get_color())
  ax.plot([], [], "o", color="0.3", label="autodiff ‖dh_k/dh_0‖")
  ax.axhline(1, color="0.5", lw=0.8)
  ax.set_xlabel("steps k back through h_t = λ Q h_{t-1}")
  ax.set_ylabel("gradient multiplier (log scale)")
  ax.set_title("Small deviations from 1 compound: 0.9^100 = 2.7e-5, 1.1^100 = 1.4e4", fontsize=10)
  ax.legend(fontsize=8)
  ax.grid(True, which="major", alpha=0.3)
  return figures.save(fig, config.out, "gradient_multipliers")


def redraw(record: dict, config: Config) -> list:
  """The figures of a results file (harness.redraw)."""
  return [draw(record["per_seed"], config), draw_multipliers(record["multipliers"], config)]


def measure_seed(kind: str, options: dict, config: Config, seed: int) -> dict:
  """Gradient norms by position at init and after training, spectral radius, final loss."""
  model = build(kind, options, config, seed)
  norms, rho = input_gradient_norms(model, config, seed).tolist(), spectral_radius(model, config)
  encoder, readout, final_loss = trained(kind, options, config, seed)
  trained_norms = input_gradient_norms(encoder, config, seed, readout).tolist()
  return {"norms": norms, "norms_trained": trained_norms, "rho": rho, "final_loss": float(final_loss)}


def measure(label: str, kind: str, options: dict, config: Config, plan: Runs) -> dict:
  """measure_seed's numbers of every seed, as lists over seeds; each seed is one run of `plan`."""
  per_seed = [plan.run(label, s, lambda s=s: measure_seed(kind, options, config, s)) for s in config.seeds]
  return {name: [numbers[name] for numbers in per_seed] for name in ("norms", "norms_trained", "rho", "final_loss")}


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])

  table = multiplier_norms(config.hidden_features)
  multiplier_rows = [
    {"lambda": lam, **{f"after {k} steps": f"{v:.4g}" for k, v in zip(STEPS, norms, strict=True)}}
    for lam, norms in table.items()
  ]

  rows, trained_rows, per_seed = [], [], {}
  T = config.time
  models = [model for model in MODELS if model[1] in config.kinds]
  plan = Runs(len(models) * len(config.seeds))
  for label, kind, options in models:
    runs = measure(label, kind, options, config, plan)
    norms, after = np.asarray(runs["norms"]), np.asarray(runs["norms_trained"])  # [seeds, T]
    # first/last per seed spans orders of magnitude, so the spread is geometric
    runs["first_over_last"] = (norms[:, 0] / norms[:, -1]).tolist()
    runs["first_over_last_trained"] = (after[:, 0] / after[:, -1]).tolist()
    per_seed[label] = runs
    rows.append(
      {
        "model": label,
        "rho(W_h)": "n/a" if runs["rho"][0] is None else f"{np.mean(runs['rho']):.2f}",
        "‖dL/dx_0‖": report.spread(norms[:, 0], ".2g", geometric=True),
        f"‖dL/dx_{T // 2}‖": report.spread(norms[:, T // 2], ".2g", geometric=True),
        f"‖dL/dx_{T - 1}‖": report.spread(norms[:, -1], ".2g", geometric=True),
        "first/last": report.spread(runs["first_over_last"], ".2g", geometric=True),
      }
    )
    trained_rows.append(
      {
        "model": label,
        "last training batch loss (0 = recalled; about 1 = not)": report.spread(runs["final_loss"], ".3f"),
        "first/last at init": report.spread(runs["first_over_last"], ".2g", geometric=True),
        "first/last after training": report.spread(runs["first_over_last_trained"], ".2g", geometric=True),
      }
    )
  figure_path = draw(per_seed, config)
  multipliers_path = draw_multipliers(table, config)

  report.write(
    "gradient_decay",
    "Vanishing and exploding gradients through time",
    [
      (
        "Multiplier table: ||dh_k/dh_0|| for h_t = lambda Q h_{t-1}, Q orthogonal",
        report.markdown_table(multiplier_rows) + f"\n\n![multiplier curves]({multipliers_path.name})",
      ),
      (
        f"Input-gradient norm by position, T={T}, H={config.hidden_features}: geometric mean over "
        f"{len(config.seeds)} seeds [lowest-highest seed], each the mean over {config.batch} sequences",
        report.markdown_table(rows)
        + "\n\nrho(W_h): spectral radius of the (first gate's) recurrent matrix at init."
        + " first/last << 1 is vanishing, >> 1 exploding. 0: the gradient underflows float32."
        + f" The Transformer encoder: {config.num_layers} causal pre-LN blocks, width {config.hidden_features},"
        + " 4 heads.",
      ),
      (
        f"After training: {config.train.steps} Adam steps (batch {config.train.batch_size}, lr "
        f"{config.train.learning_rate}, clip {config.train.clip_norm}) to output x_0's first feature at step T-1; "
        "the same measurement with the trained readout; the loss: mean [lowest-highest seed], the ratios: geometric "
        "mean [lowest-highest seed]",
        report.markdown_table(trained_rows) + f"\n\n![gradient norm by position]({figure_path.name})",
      ),
    ],
    {
      "seeds": len(config.seeds),
      "multipliers": {str(k): v for k, v in table.items()},
      "steps": STEPS,
      "rows": rows,
      "trained_rows": trained_rows,
      "per_seed": per_seed,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
