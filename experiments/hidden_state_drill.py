"""Where information decays in a two-layer RNN (seed 000, "Hands-on drills": implement a two-layer
RNN, log hidden states over a toy sequence, visualize where information decays).

A two-layer Elman tanh RNN (orthogonal recurrent matrices scaled to spectral radius `gain`, the
contracting, edge and expanding regimes) and a two-layer LSTM (forget bias 1) read toy sequences
of random one-hot tokens, untrained. Each sequence is read twice: as drawn, and with only its
first token changed. The drill's logged hidden states are every layer's h_t for both; what the
first token still changes at step t is

    d_l(t) = mean_b || h_t^l(x) - h_t^l(x') || / mean_b || h_0^l(x) - h_0^l(x') ||,

1 at t = 0. Reported per model and layer: the first step where d_l(t) < `threshold` (the
information about the first token has decayed), over `seeds` (init and data), mean
[lowest-highest]; a figure of one sequence's logged hidden states and of d_l(t).

Commands:
    python -m experiments.hidden_state_drill default    # T=60, H=32, 256 sequences, 3 seeds: seconds
    python -m experiments.hidden_state_drill smoke
    python -m experiments.hidden_state_drill large      # T=400, H=256
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report
from seqjax.recurrent import StackedRNN

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}


@dataclasses.dataclass(frozen=True)
class Config:
  time: int = 60
  vocab: int = 4
  hidden_features: int = 32
  batch: int = 256
  gains: tuple[float, ...] = (0.5, 1.0, 1.5)  # the Elman RNN's recurrent spectral radius
  threshold: float = 0.01
  seeds: tuple[int, ...] = (0, 1, 2)
  out: str = report.default_out("hidden_state_drill")

  def check(self) -> "Config":
    cli.at_least("time", self.time, 2)
    cli.at_least("vocab", self.vocab, 2)
    for name in ("hidden_features", "batch"):
      cli.at_least(name, getattr(self, name), 1)
    if not self.gains:
      raise ValueError("gains must name at least one recurrent gain")
    for gain in self.gains:
      cli.positive_number("gains", gain)
    cli.positive_number("threshold", self.threshold)
    cli.check_seeds(self.seeds)
    return self


CONFIGS = {
  "default": ("T=60, H=32, 256 sequences, 3 seeds (the README's numbers)", Config()),
  "smoke": (
    "T=6, H=4, 8 sequences, 1 seed",
    Config(time=6, hidden_features=4, batch=8, seeds=(0,), out="/tmp/seqjax-smoke"),
  ),
  "large": (
    "for an accelerator: T=400, H=256, 1024 sequences",
    Config(time=400, hidden_features=256, batch=1024, out=report.default_out("hidden_state_drill", "large")),
  ),
}


def models(config: Config) -> dict[str, tuple[str, dict]]:
  """name -> (cell kind, cell options)."""
  elman = {f"Elman tanh, gain {gain:g}": ("rnn_tanh", {"recurrent_gain": gain}) for gain in config.gains}
  return {**elman, "LSTM, forget bias 1": ("lstm", {})}


def hidden_states(stack: StackedRNN, x: jax.Array) -> list[jax.Array]:
  """Every layer's outputs [B, T, H]: the drill's log of hidden states."""
  states = []
  for layer in stack.layers:
    x, _ = layer(x)
    states.append(x)
  return states


def trace(kind: str, options: dict, config: Config, seed: int) -> dict:
  stack = StackedRNN(kind, config.vocab, config.hidden_features, num_layers=2, rngs=nnx.Rngs(seed), **options)
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, config.vocab, (config.batch, config.time))  # [B, T]
  changed = tokens.copy()
  changed[:, 0] = (tokens[:, 0] + rng.integers(1, config.vocab, config.batch)) % config.vocab  # another first token
  logs = [hidden_states(stack, jax.nn.one_hot(t, config.vocab)) for t in (tokens, changed)]
  decay = []
  for h, h_changed in zip(*logs, strict=True):  # per layer, [B, T, H]
    distance = jnp.linalg.norm(h - h_changed, axis=-1).mean(0)  # [T]
    decay.append(np.asarray(distance / distance[0]))
  return {"decay": decay, "example": np.asarray(logs[0][-1][0])}  # example: layer 2, sequence 0, [T, H]


def steps_to(decay: np.ndarray, threshold: float) -> int | None:
  below = np.flatnonzero(decay < threshold)
  return int(below[0]) if below.size else None


def draw(runs: list[dict], example: dict, config: Config):
  """Left: the example's logged hidden states (layer 2, one sequence); right: d_l(t) per model and layer, the
  seeds' geometric mean with their lowest-highest band. runs and example as the results file holds them."""
  fig, (heat, curves) = figures.figure(12.0, 4.6, columns=2)
  image = heat.imshow(np.array(example["states"]).T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
  heat.set_xlabel("time step t")
  heat.set_ylabel("hidden unit of layer 2")
  heat.set_title(
    f"Logged hidden states h_t, layer 2, one sequence\n({example['model']}, seed {example['seed']})", fontsize=10
  )
  fig.colorbar(image, ax=heat, label="activation")
  t = np.arange(config.time)
  for index, name in enumerate(dict.fromkeys(r["model"] for r in runs)):
    for r in (r for r in runs if r["model"] == name):
      floor = np.maximum(np.array(r["decay"]), 1e-12)  # [seeds, T]
      style = "--" if r["layer"] == 1 else "-"
      label = f"{name}, layer {r['layer']}"
      curves.semilogy(t, np.exp(np.log(floor).mean(0)), style, color=f"C{index}", label=label)
      curves.fill_between(t, floor.min(0), floor.max(0), color=f"C{index}", alpha=0.15)
  curves.axhline(config.threshold, color="gray", lw=0.8, ls=":", label=f"threshold {config.threshold:g}")
  curves.set_xlabel("time step t")
  curves.set_ylabel("effect of the first token on h_t (relative to t = 0)")
  curves.set_title(
    "Where information decays: what changing token 0 still changes at step t\n"
    f"(untrained, H={config.hidden_features}; geometric mean, band: {len(config.seeds)} seeds; "
    "float32 floor near 1e-7)",
    fontsize=9,
  )
  curves.legend(fontsize=6, ncol=2)
  curves.grid(alpha=0.3, which="both")
  return figures.save(fig, config.out, "hidden_state_drill")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["runs"], record["example"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  traces = {
    name: [trace(kind, options, config, seed) for seed in config.seeds]
    for name, (kind, options) in models(config).items()
  }
  rows, runs = [], []
  probe = min(10, config.time - 1)
  for name, seeds in traces.items():
    for layer in (0, 1):
      steps = [steps_to(r["decay"][layer], config.threshold) for r in seeds]
      reached = [s for s in steps if s is not None]
      at_probe = [r["decay"][layer][probe] for r in seeds]
      rows.append(
        {
          "model": name,
          "layer": layer + 1,
          f"steps until below {config.threshold:g}, mean [lowest-highest]": (
            report.spread(reached, ".1f")
            if len(reached) == len(steps)
            else f"not within T={config.time} on {len(steps) - len(reached)} of {len(steps)} seeds"
          ),
          f"effect at t = {probe}, geometric mean [range]": report.spread(
            np.maximum(at_probe, 1e-30), ".2e", geometric=True
          ),
        }
      )
      runs.append(
        {"model": name, "layer": layer + 1, "steps": steps, "decay": [r["decay"][layer].tolist() for r in seeds]}
      )
  shown = next((n for n in traces if n.endswith("gain 1")), next(iter(traces)))  # the edge of chaos, if run
  example = {"model": shown, "seed": config.seeds[0], "states": traces[shown][0]["example"].tolist()}  # [T, H]
  figure_path = draw(runs, example, config)
  report.write(
    "hidden_state_drill",
    "Where information decays in a two-layer RNN",
    [
      (
        f"Untrained two-layer RNNs, H={config.hidden_features}, vocab {config.vocab}, T={config.time}, "
        f"{config.batch} random sequences read twice (the second with another first token); "
        f"seeds {list(config.seeds)} (init and data)",
        report.markdown_table(rows) + f"\n\n![logged hidden states and decay]({figure_path.name})",
      )
    ],
    {"seeds": len(config.seeds), "runs": runs, "example": example},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
