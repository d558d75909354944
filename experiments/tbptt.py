"""Truncated BPTT cannot learn a dependency longer than its backward window k2 (seed 000,
section 1.3: "Small k2: can't learn distant dependencies").

Recall task: a sequence of T random tokens; at the last step the model must output the first
token. Only the last step has a loss, so with TBPTT(k1, k2) its gradient reaches back k2 steps:
for k2 < T - 1 the first token lies outside every window and can only be guessed (chance is
1 / vocab); for k2 >= T the LSTM can learn it. Same model, data, optimizer and number of
updates for each k2; accuracy on fresh sequences.

Commands:
    python -m experiments.tbptt default     # T=20, LSTM H=64, k1=5, k2 in {5, 10, 20}; ~1 min on 2 cores
    python -m experiments.tbptt smoke
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from experiments import cli, report
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
  seed: int = 0
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    cli.at_least("time", self.time, 2)
    for name in ("vocab", "hidden", "k1", "steps", "batch"):
      _validate.positive_int(name, getattr(self, name))
    _validate.nonnegative_int("seed", self.seed)
    _validate.finite_number("learning_rate", self.learning_rate, low=0.0, inclusive=False)
    if not self.k2s or any(not isinstance(k2, int) or k2 < self.k1 for k2 in self.k2s):
      raise ValueError(f"k2s must name at least one window, each an integer >= k1 = {self.k1}, got {self.k2s}")
    return self


CONFIGS = {
  "default": ("T=20, k1=5, k2 in {5, 10, 20} (the README's numbers)", Config()),
  "smoke": ("T=6, 3 steps", Config(time=6, k1=2, k2s=(2, 6), steps=3, hidden=8, batch=8, out="/tmp/seqjax-smoke")),
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


def train(config: Config, k2: int) -> dict:
  model = Recaller(config, nnx.Rngs(config.seed))
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

  rng = np.random.default_rng(config.seed)
  carry0 = model.cell.initialize_carry((config.batch,))
  for _ in range(config.steps):
    xs, targets = batch(rng, config)
    params, _, _, _ = truncated_bptt(step_fn, loss_fn, params, carry0, xs, targets, k1=config.k1, k2=k2, update=apply)

  test = dataclasses.replace(config, batch=1024)
  xs, (labels, _) = batch(np.random.default_rng(config.seed + 1), test)  # fresh sequences
  _, logits = jax.lax.scan(lambda c, x: step_fn(params, c, x), model.cell.initialize_carry((test.batch,)), xs)
  accuracy = float(jnp.mean(jnp.argmax(logits[-1], -1) == labels[-1]))
  return {"k2": k2, "accuracy": accuracy}


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  runs = [train(config, k2) for k2 in config.k2s]
  rows = [
    {
      "k2 (backward window)": r["k2"],
      "first token inside the window": "yes" if r["k2"] >= config.time else "no",
      "recall accuracy": f"{r['accuracy']:.3f}",
    }
    for r in runs
  ]
  report.write(
    "tbptt",
    "Truncated BPTT and a dependency of length T",
    [
      (
        f"Recall the first of T={config.time} tokens (vocab {config.vocab}, chance {1 / config.vocab:.2f}), "
        "accuracy on 1024 fresh sequences; "
        f"LSTM H={config.hidden}, k1={config.k1}, {config.steps} batches of {config.batch}, "
        f"Adam {config.learning_rate}",
        report.markdown_table(rows),
      )
    ],
    {"runs": runs},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
