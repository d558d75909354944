"""Truncated BPTT cannot learn a dependency longer than its backward window k2 (seed 000,
section 1.3: "Small k2: can't learn distant dependencies").

Recall task: a sequence of T random tokens; at the last step the model must output the first
token. Only the last step has a loss, so with TBPTT(k1, k2) its gradient reaches back k2 steps:
for k2 < T - 1 the first token lies outside every window and can only be guessed (chance is
1 / vocab); for k2 >= T the LSTM can learn it. Same model, data, optimizer and number of
updates for each k2; accuracy on fresh sequences.

Commands:
    python -m experiments.tbptt default     # T=20, LSTM H=64, k1=5, k2 in {5, 10, 20}, 3 seeds
    python -m experiments.tbptt smoke
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from experiments import cli, figures, report
from seqjax import _validate
from seqjax.recurrent import LSTMCell
from seqjax.train.step import optimizer_init, optimizer_update
from seqjax.train.tbptt import truncated_bptt


@dataclasses.dataclass(frozen=True)
class Config:
  time: int = 20
  vocab: int = 4
  hidden: int = 64
  k1: int = 5
  k2s: tuple[int, ...] = (5, 10, 20)
  steps: int = 250  # passes over a fresh batch; each makes T / k1 updates
  batch: int = 64
  learning_rate: float = 1e-2
  seeds: tuple[int, ...] = (0, 1, 2)  # each run's init and data order
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    cli.at_least("time", self.time, 2)
    for name in ("vocab", "hidden", "k1", "steps", "batch"):
      _validate.positive_int(name, getattr(self, name))
    cli.check_seeds(self.seeds)
    _validate.finite_number("learning_rate", self.learning_rate, low=0.0, inclusive=False)
    if not self.k2s or any(not isinstance(k2, int) or k2 < self.k1 for k2 in self.k2s):
      raise ValueError(f"k2s must name at least one window, each an integer >= k1 = {self.k1}, got {self.k2s}")
    return self


CONFIGS = {
  "default": ("T=20, k1=5, k2 in {5, 10, 20} (the README's numbers)", Config()),
  "smoke": (
    "T=6, 3 steps, 1 seed",
    Config(time=6, k1=2, k2s=(2, 6), steps=3, hidden=8, batch=8, seeds=(0,), out="/tmp/seqjax-smoke"),
  ),
}


class Recaller(nnx.Module):
  """One-hot token -> LSTM cell -> logits; a step function for TBPTT."""

  def __init__(self, config: Config, rngs: nnx.Rngs):
    self.cell = LSTMCell(config.vocab, config.hidden, rngs=rngs)
    self.readout = nnx.Linear(config.hidden, config.vocab, rngs=rngs)

  def __call__(self, carry, x_t):
    carry, h = self.cell(carry, x_t)
    return carry, self.readout(h)


def batch(rng: np.random.Generator, config: Config):
  tokens = rng.integers(0, config.vocab, (config.time, config.batch))  # [T, B], time-major
  xs = jax.nn.one_hot(tokens, config.vocab)  # [T, B, V]
  targets = jnp.zeros((config.time, config.batch), jnp.int32).at[-1].set(tokens[0])
  weights = jnp.zeros((config.time, config.batch)).at[-1].set(1.0)  # only the last step is scored
  return xs, (targets, weights)


def train(config: Config, k2: int, seed: int) -> dict:
  model = Recaller(config, nnx.Rngs(seed))
  graphdef, params = nnx.split(model)
  tx = optax.adam(config.learning_rate)
  opt_state = optimizer_init(tx, params)

  def step_fn(params, carry, x_t):
    return nnx.merge(graphdef, params)(carry, x_t)

  def loss_fn(logits, targets):
    labels, weights = targets
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels) * weights) / config.batch

  update = jax.jit(lambda params, grads, opt_state: optimizer_update(tx, grads, opt_state, params))

  def apply(params, grads):
    nonlocal opt_state
    params, opt_state = update(params, grads, opt_state)
    return params

  rng = np.random.default_rng(seed)
  carry0 = model.cell.initialize_carry((config.batch,))
  seen = set()  # training sequences, to count the test set's overlap with them
  for _ in range(config.steps):
    xs, targets = batch(rng, config)
    seen.update(map(bytes, np.asarray(jnp.argmax(xs, -1)).T.astype(np.uint8)))
    params, _, _, _ = truncated_bptt(step_fn, loss_fn, params, carry0, xs, targets, k1=config.k1, k2=k2, update=apply)

  test = dataclasses.replace(config, batch=1024)
  xs, (labels, _) = batch(np.random.default_rng(10_000 + seed), test)  # fresh sequences
  overlap = sum(bytes(s) in seen for s in np.asarray(jnp.argmax(xs, -1)).T.astype(np.uint8))
  _, logits = jax.lax.scan(lambda c, x: step_fn(params, c, x), model.cell.initialize_carry((test.batch,)), xs)
  accuracy = float(jnp.mean(jnp.argmax(logits[-1], -1) == labels[-1]))
  return {"k2": k2, "seed": seed, "accuracy": accuracy, "train_test_overlap": overlap}


def draw(runs: list[dict], config: Config):
  fig, ax = figures.figure(6.5, 4.2)
  by_k2 = {k2: [r["accuracy"] for r in runs if r["k2"] == k2] for k2 in config.k2s}
  for seed in config.seeds:
    ax.plot(config.k2s, [r["accuracy"] for r in runs if r["seed"] == seed], "o", color="0.6", ms=4)
  means = [np.mean(v) for v in by_k2.values()]
  ax.plot(config.k2s, means, "-o", color="C0", label=f"mean of {len(config.seeds)} seeds")
  ax.plot([], [], "o", color="0.6", ms=4, label="one seed")
  ax.axhline(1 / config.vocab, color="C3", ls="--", label=f"chance (1/{config.vocab})")
  ax.axvline(config.time, color="0.3", ls=":", label=f"dependency length T = {config.time}")
  ax.set_xlabel("backward window k2 (steps)")
  ax.set_ylabel("recall accuracy on fresh sequences")
  ax.set_ylim(0, 1.05)
  ax.set_title(f"TBPTT(k1={config.k1}, k2) learns a {config.time}-step dependency only when k2 >= T", fontsize=10)
  ax.legend(fontsize=8)
  return figures.save(fig, config.out, "tbptt")


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  runs = [train(config, k2, seed) for k2 in config.k2s for seed in config.seeds]
  rows = []
  for k2 in config.k2s:
    accuracy = [r["accuracy"] for r in runs if r["k2"] == k2]
    rows.append(
      {
        "k2 (backward window)": k2,
        "first token inside the window": "yes" if k2 >= config.time else "no",
        "recall accuracy, mean [lowest-highest seed]": report.spread(accuracy),
      }
    )
  figure_path = draw(runs, config)
  report.write(
    "tbptt",
    "Truncated BPTT and a dependency of length T",
    [
      (
        f"Recall the first of T={config.time} tokens (vocab {config.vocab}, chance {1 / config.vocab:.2f}), "
        "accuracy on 1024 fresh sequences; "
        f"LSTM H={config.hidden}, k1={config.k1}, {config.steps} batches of {config.batch}, "
        f"Adam {config.learning_rate}, seeds {list(config.seeds)} (init and data order); test sequences seen in "
        f"training: {sum(r['train_test_overlap'] for r in runs)}",
        report.markdown_table(rows) + f"\n\n![recall accuracy against k2]({figure_path.name})",
      )
    ],
    {"seeds": len(config.seeds), "runs": runs, "train_test_overlap": max(r["train_test_overlap"] for r in runs)},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
