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
import numpy as np
from flax import nnx

from experiments import cli, report
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
  ("GRU", "gru", {}),
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


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])

  table = multiplier_norms(config.hidden)
  multiplier_rows = [
    {"lambda": lam, **{f"after {k} steps": f"{v:.4g}" for k, v in zip(STEPS, norms, strict=True)}}
    for lam, norms in table.items()
  ]

  rows, curves = [], {}
  T = config.time
  for label, kind, options in MODELS:
    runs = [input_gradient_norms(kind, options, config, seed) for seed in range(config.seeds)]
    norms = np.mean([r[0] for r in runs], axis=0)
    curves[label] = norms.tolist()
    rows.append(
      {
        "model": label,
        "rho(W_h)": f"{np.mean([r[1] for r in runs]):.2f}",
        "‖dL/dx_0‖": f"{norms[0]:.3g}",
        f"‖dL/dx_{T // 2}‖": f"{norms[T // 2]:.3g}",
        f"‖dL/dx_{T - 1}‖": f"{norms[-1]:.3g}",
        "first/last": f"{norms[0] / norms[-1]:.3g}",
      }
    )

  report.write(
    "gradient_decay",
    "Vanishing and exploding gradients through time",
    [
      (
        "Multiplier table: ||dh_k/dh_0|| for h_t = lambda Q h_{t-1}, Q orthogonal",
        report.markdown_table(multiplier_rows),
      ),
      (
        f"Input-gradient norm by position, T={T}, H={config.hidden}, "
        f"mean over {config.seeds} seeds x {config.batch} sequences",
        report.markdown_table(rows)
        + "\n\nrho(W_h): spectral radius of the (first gate's) recurrent matrix at init."
        + " first/last << 1 is vanishing, >> 1 exploding.",
      ),
    ],
    {
      "multipliers": {str(k): v for k, v in table.items()},
      "steps": STEPS,
      "rows": rows,
      "curves": curves,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
