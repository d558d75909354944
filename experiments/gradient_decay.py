"""Vanishing and exploding gradients through time (seed 000, section 1.3), measured.

Part 1, the multiplier table: for h_t = lambda * Q h_{t-1} with Q orthogonal, autodiff
gives ||dh_k/dh_0|| = lambda^k; the seed's table lists 0.9, 0.95, 1.05, 1.1 over 30, 50, 100 steps.

Part 2, real cells: a readout of the last hidden state, L = sum(h_T w), differentiated with
respect to every input x_t. The ratio ||dL/dx_0|| / ||dL/dx_{T-1}|| says how much learning
signal reaches the first position. Claims checked: tanh RNNs with Xavier or shrunken
recurrent weights vanish; orthogonal init delays it; LSTM (forget bias 1) and GRU keep far
more gradient at the start; a recurrent gain > 1 with ReLU explodes.

Command (the README's main job; about 10 s on 2 CPU cores):
    python -m experiments.gradient_decay default [--time 100] [--hidden 64] [--batch 16] [--seeds 3]
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx

from experiments import cli, figures, report
from seqjax import _validate
from seqjax.recurrent import StackedRNN, initializer, spectrum

MULTIPLIERS = (0.9, 0.95, 1.05, 1.1)
STEPS = (30, 50, 100)

# (label, kind, options for the cell)
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
]


@dataclasses.dataclass(frozen=True)
class Config:
  time: int = 100
  hidden: int = 64
  features: int = 8
  batch: int = 16
  seeds: int = 3
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    for name in ("time", "hidden", "features", "batch", "seeds"):
      _validate.positive_int(name, getattr(self, name))
    return self


CONFIGS = {
  "default": ("T=100, H=64, 3 seeds (the README's numbers)", Config()),
  "smoke": ("T=12, H=8, 1 seed", Config(time=12, hidden=8, batch=2, seeds=1, out="/tmp/seqjax-smoke")),
}


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


def input_gradient_norms(kind: str, options: dict, config: Config, seed: int) -> tuple[np.ndarray, float]:
  """||dL/dx_t|| averaged over the batch, for t = 0..T-1; and the spectral radius of W_h (first gate)."""
  model = StackedRNN(kind, config.features, config.hidden, rngs=nnx.Rngs(seed), **options)
  graphdef, params = nnx.split(model)
  keys = jax.random.split(jax.random.key(1000 + seed), 2)
  x = jax.random.normal(keys[0], (config.batch, config.time, config.features))
  readout = jax.random.normal(keys[1], (config.hidden,)) / np.sqrt(config.hidden)

  @jax.jit
  def grads(params, x):
    def loss(x):
      outputs, _ = nnx.merge(graphdef, params)(x)
      return jnp.sum(outputs[:, -1] @ readout)

    return jax.grad(loss)(x)  # [B, T, F]

  g = np.asarray(grads(params, x))
  norms = np.linalg.norm(g, axis=-1).mean(axis=0)  # [T]
  w_h = np.asarray(model.layers[0].cell.recurrent_kernel[...])[:, : config.hidden]
  return norms, spectrum(w_h).spectral_radius


def draw(curves: dict, per_seed: dict, config: Config):
  fig, ax = figures.figure(8.0, 5.5)
  positions = np.arange(config.time)
  colors = matplotlib.colormaps["tab20"].colors[::2] + matplotlib.colormaps["tab20"].colors[1::2]
  for (label, curve), color in zip(curves.items(), colors, strict=False):
    norms = np.asarray(per_seed[label]["norms"])
    (line,) = ax.semilogy(positions, curve, label=label, color=color)
    ax.fill_between(positions, norms.min(axis=0), norms.max(axis=0), color=line.get_color(), alpha=0.15)
  ax.set_xlabel("input position t (the loss reads the last step, t = T-1)")
  ax.set_ylabel("‖dL/dx_t‖ (gradient norm, log scale)")
  ax.set_title(
    f"Gradient reaching input t at init (T={config.time}): tanh RNNs, GRU and the\n"
    f"PyTorch-default LSTM vanish; forget bias 2 keeps it ({config.seeds} seeds, band = min-max)",
    fontsize=10,
  )
  ax.legend(fontsize=7, ncol=2)
  ax.grid(True, which="major", alpha=0.3)
  return figures.save(fig, config.out, "gradient_decay")


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])

  table = multiplier_norms(config.hidden)
  multiplier_rows = [
    {"lambda": lam, **{f"after {k} steps": f"{v:.4g}" for k, v in zip(STEPS, norms, strict=True)}}
    for lam, norms in table.items()
  ]

  rows, curves, per_seed = [], {}, {}
  T = config.time
  for label, kind, options in MODELS:
    runs = [input_gradient_norms(kind, options, config, seed) for seed in range(config.seeds)]
    norms = np.stack([r[0] for r in runs])  # [seeds, T]
    ratios = norms[:, 0] / norms[:, -1]  # first/last per seed: spans orders of magnitude, so
    curves[label] = np.exp(np.log(norms).mean(axis=0)).tolist()  # geometric means over seeds
    per_seed[label] = {"norms": norms.tolist(), "first_over_last": ratios.tolist()}
    rows.append(
      {
        "model": label,
        "rho(W_h)": f"{np.mean([r[1] for r in runs]):.2f}",
        "‖dL/dx_0‖": report.spread(norms[:, 0], ".2g", geometric=True),
        f"‖dL/dx_{T // 2}‖": report.spread(norms[:, T // 2], ".2g", geometric=True),
        f"‖dL/dx_{T - 1}‖": report.spread(norms[:, -1], ".2g", geometric=True),
        "first/last": report.spread(ratios, ".2g", geometric=True),
      }
    )
  figure_path = draw(curves, per_seed, config)

  report.write(
    "gradient_decay",
    "Vanishing and exploding gradients through time",
    [
      (
        "Multiplier table: ||dh_k/dh_0|| for h_t = lambda Q h_{t-1}, Q orthogonal",
        report.markdown_table(multiplier_rows),
      ),
      (
        f"Input-gradient norm by position, T={T}, H={config.hidden}: geometric mean over "
        f"{config.seeds} seeds [lowest-highest seed], each the mean over {config.batch} sequences",
        report.markdown_table(rows)
        + "\n\nrho(W_h): spectral radius of the (first gate's) recurrent matrix at init."
        + " first/last << 1 is vanishing, >> 1 exploding. 0: the gradient underflows float32."
        + f"\n\n![gradient norm by position]({figure_path.name})",
      ),
    ],
    {
      "seeds": config.seeds,
      "multipliers": {str(k): v for k, v in table.items()},
      "steps": STEPS,
      "rows": rows,
      "curves": curves,
      "per_seed": per_seed,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
