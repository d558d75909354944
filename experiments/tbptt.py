"""Truncated BPTT cannot learn a dependency longer than its backward window k2 (seed 000,
section 1.3: "Small k2: can't learn distant dependencies").

Recall task: a sequence of T random tokens; at the last step the model must output the first
token. Only the last step has a loss, so with TBPTT(k1, k2) its gradient reaches back k2 steps:
for k2 < T - 1 the first token lies outside every window and can only be guessed (chance is
1 / vocab); for k2 >= T the LSTM can learn it. Same model, data, optimizer and number of
updates for each k2; accuracy on fresh sequences.

The seed's trade-off table (k2 small: low memory, fast; full sequence: very high memory, very
slow) is measured on one sequence of `cost_time` steps (LSTM H = `cost_hidden_features`): the temporary
memory of one update's compiled gradient (XLA's memory analysis), the wall time of one update,
and of a pass over the whole sequence with k1 = k2 (the common choice) and with k1 fixed at
`cost_k1` (where a larger k2 re-runs more steps per update). Times are the median [fastest-
slowest] of `cost_runs` timed repeats after a warm-up, compile time apart.

Commands:
    python -m experiments.tbptt default     # T=20, LSTM H=64, k1=5, k2 in {5, 10, 20}, 3 seeds; cost at T=400
    python -m experiments.tbptt smoke
    python -m experiments.tbptt large       # T=100, H=256, k2 up to 100; cost at T=2000, H=1024
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from matplotlib import ticker

from harness import cli, figures, report, timing
from harness.runs import Runs
from seqjax.recurrent import LSTMCell
from seqjax.train import TrainConfig
from seqjax.train.step import optimizer_init, optimizer_update
from seqjax.train.tbptt import segment_gradient, truncated_bptt
from seqjax.train.trainer import build_optimizer


@dataclasses.dataclass(frozen=True)
class Config:
  time: int = 20
  vocab: int = 4
  hidden_features: int = 64
  k1: int = 5
  k2s: tuple[int, ...] = (5, 10, 20)
  # steps: passes over a fresh batch, each making T / k1 updates; no clipping, as the seed's trade-off is about k2 alone
  train: TrainConfig = TrainConfig(steps=250, batch_size=64, learning_rate=1e-2, clip_norm=None, progress=False)
  seeds: tuple[int, ...] = (0, 1, 2)  # each run's init and data order
  cost_time: int = 400  # the memory/time trade-off: one sequence of this length
  cost_hidden_features: int = 128
  cost_k1: int = 25
  cost_k2s: tuple[int, ...] = (25, 50, 100, 200, 400)  # 400 = the full sequence
  cost_runs: int = 5
  out: str = report.default_out("tbptt")

  def check(self) -> "Config":
    cli.at_least("time", self.time, 2)
    for name in ("vocab", "hidden_features", "k1"):
      cli.at_least(name, getattr(self, name), 1)
    cli.check_seeds(self.seeds)
    self.train.check()
    unsupported = [name for name in UNSUPPORTED if getattr(self.train, name) != getattr(TrainConfig(), name)]
    if unsupported:
      raise ValueError(f"train.{unsupported[0]}: the TBPTT loop here does not implement {', '.join(unsupported)}")
    if not self.k2s or any(not isinstance(k2, int) or k2 < self.k1 for k2 in self.k2s):
      raise ValueError(f"k2s must name at least one window, each an integer >= k1 = {self.k1}, got {self.k2s}")
    for name in ("cost_time", "cost_hidden_features", "cost_k1", "cost_runs"):
      cli.at_least(name, getattr(self, name), 1)
    if not self.cost_k2s or any(
      not isinstance(k2, int) or not self.cost_k1 <= k2 <= self.cost_time for k2 in self.cost_k2s
    ):
      raise ValueError(
        f"cost_k2s must name at least one window, each an integer in [cost_k1, cost_time] = "
        f"[{self.cost_k1}, {self.cost_time}], got {self.cost_k2s}"
      )
    return self


# results files written before the training options moved into `train` and before issue #29 (harness.renames)
RENAMED = {
  "steps": "train.steps",
  "batch": "train.batch_size",
  "learning_rate": "train.learning_rate",
  "hidden": "hidden_features",
  "cost_hidden": "cost_hidden_features",
}

# TrainConfig options that belong to `fit` (devices, precision, checkpoints, logging), not to this loop
UNSUPPORTED = (
  "accumulate_steps",
  "nonfinite",
  "precision",
  "model_parallel",
  "distributed",
  "save_every",
  "tensorboard",
)

CONFIGS = {
  "default": ("T=20, k1=5, k2 in {5, 10, 20} (the README's numbers)", Config()),
  "smoke": (
    "T=6, 3 steps, 1 seed",
    Config(
      time=6,
      k1=2,
      k2s=(2, 6),
      hidden_features=8,
      train=TrainConfig(steps=3, batch_size=8, learning_rate=1e-2, clip_norm=None, progress=False),
      seeds=(0,),
      cost_time=8,
      cost_hidden_features=8,
      cost_k1=2,
      cost_k2s=(2, 8),
      cost_runs=1,
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: T=100, H=256, k2 up to 100; the cost at T=2000, H=1024",
    Config(
      time=100,
      hidden_features=256,
      k1=10,
      k2s=(10, 25, 50, 100),
      train=TrainConfig(steps=2000, batch_size=64, learning_rate=1e-2, clip_norm=None, progress=False),
      cost_time=2000,
      cost_hidden_features=1024,
      cost_k1=50,
      cost_k2s=(50, 100, 200, 500, 1000, 2000),
      out=report.default_out("tbptt", "large"),
    ),
  ),
}


TEST_SIZE = 1024  # fresh test sequences per run


class Recaller(nnx.Module):
  """One-hot token -> LSTM cell -> logits, one step at a time: (carry, x_t [B, V]) -> (carry,
  logits [B, V]). This experiment's own, not a `seqjax.heads` model: TBPTT
  (`seqjax.train.tbptt.truncated_bptt`) steps a function whose carry goes in and out, which the
  heads, run over whole sequences, do not expose. SequenceLM's decoding step comes closest but
  embeds token ids where this cell reads one-hot vectors: another parameterization, and other
  numbers than the committed ones (drawn from the run's seed, the cell first, then the readout)."""

  def __init__(self, config: Config, rngs: nnx.Rngs):
    self.cell = LSTMCell(config.vocab, config.hidden_features, rngs=rngs)
    self.readout = nnx.Linear(config.hidden_features, config.vocab, rngs=rngs)

  def __call__(self, carry, x_t):
    carry, h = self.cell(carry, x_t)
    return carry, self.readout(h)


def batch(rng: np.random.Generator, config: Config, size: int):
  tokens = rng.integers(0, config.vocab, (config.time, size))  # [T, B], time-major
  xs = jax.nn.one_hot(tokens, config.vocab)  # [T, B, V]
  targets = jnp.zeros((config.time, size), jnp.int32).at[-1].set(tokens[0])
  weights = jnp.zeros((config.time, size)).at[-1].set(1.0)  # only the last step is scored
  return xs, (targets, weights)


def step_and_loss(graphdef, config: Config):
  """TBPTT's step_fn(params, carry, x_t) and loss_fn(logits, targets) for the Recaller."""

  def step_fn(params, carry, x_t):
    return nnx.merge(graphdef, params)(carry, x_t)

  def loss_fn(logits, targets):
    labels, weights = targets
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels) * weights) / labels.shape[1]

  return step_fn, loss_fn


def train(config: Config, k2: int, seed: int) -> dict:
  model = Recaller(config, nnx.Rngs(seed))
  graphdef, params = nnx.split(model)
  tx = build_optimizer(dataclasses.replace(config.train, seed=seed))
  opt_state = optimizer_init(tx, params)
  step_fn, loss_fn = step_and_loss(graphdef, config)

  update = jax.jit(lambda params, grads, opt_state: optimizer_update(tx, grads, opt_state, params))

  def apply(params, grads):
    nonlocal opt_state
    params, opt_state = update(params, grads, opt_state)
    return params

  rng = np.random.default_rng(seed)
  carry0 = model.cell.initialize_carry((config.train.batch_size,))
  seen = set()  # training sequences, to count the test set's overlap with them
  for _ in range(config.train.steps):
    xs, targets = batch(rng, config, config.train.batch_size)
    seen.update(map(bytes, np.asarray(jnp.argmax(xs, -1)).T.astype(np.uint8)))
    params, _, _, _ = truncated_bptt(step_fn, loss_fn, params, carry0, xs, targets, k1=config.k1, k2=k2, update=apply)

  xs, (labels, _) = batch(np.random.default_rng(10_000 + seed), config, TEST_SIZE)  # fresh sequences
  overlap = sum(bytes(s) in seen for s in np.asarray(jnp.argmax(xs, -1)).T.astype(np.uint8))
  _, logits = jax.lax.scan(lambda c, x: step_fn(params, c, x), model.cell.initialize_carry((TEST_SIZE,)), xs)
  accuracy = float(jnp.mean(jnp.argmax(logits[-1], -1) == labels[-1]))
  return {"k2": k2, "seed": seed, "accuracy": accuracy, "train_test_overlap": overlap}


def cost(config: Config, k2: int) -> dict:
  """Memory and time of TBPTT with backward window k2 on one sequence of cost_time steps."""
  shape = dataclasses.replace(config, time=config.cost_time, hidden_features=config.cost_hidden_features)
  model = Recaller(shape, nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  step_fn, loss_fn = step_and_loss(graphdef, shape)
  xs, targets = batch(np.random.default_rng(0), shape, config.train.batch_size)
  carry = model.cell.initialize_carry((config.train.batch_size,))
  segment = segment_gradient(step_fn, loss_fn)
  window = timing.time_jax(
    lambda params, carry, xs, targets: segment(params, carry, xs, targets, 0),
    *(params, carry, xs[:k2], jax.tree.map(lambda leaf: leaf[:k2], targets)),
    runs=config.cost_runs,
  )

  def one_pass(k1: int):  # every update's gradient over the whole sequence, without applying them
    return lambda: jax.block_until_ready(truncated_bptt(step_fn, loss_fn, params, carry, xs, targets, k1=k1, k2=k2)[2])

  return {
    "k2": k2,
    "update": window,
    "pass_k1_equal_k2": timing.time_calls(one_pass(k2), runs=config.cost_runs),
    "pass_k1_fixed": timing.time_calls(one_pass(config.cost_k1), runs=config.cost_runs),
  }


def cost_rows(costs: list[dict], config: Config) -> list[dict]:
  return [
    {
      "k2": c["k2"],
      "temporary memory of one update (MB)": f"{c['update']['temp_bytes'] / 1e6:.1f}",
      "one update (ms)": timing.spread(c["update"]),
      "compile (s)": f"{c['update']['compile_s']:.2f}",
      f"a {config.cost_time}-step pass, k1 = k2 (ms)": timing.spread(c["pass_k1_equal_k2"]),
      f"a {config.cost_time}-step pass, k1 = {config.cost_k1} (ms)": timing.spread(c["pass_k1_fixed"]),
    }
    for c in costs
  ]


def draw_cost(costs: list[dict], config: Config, device: str):
  fig, (memory_ax, time_ax) = figures.figure(10, 4.2, columns=2)
  k2s = [c["k2"] for c in costs]
  memory_ax.loglog(k2s, [c["update"]["temp_bytes"] / 1e6 for c in costs], "-o", label="one update's gradient")
  memory_ax.set_ylabel("temporary memory (MB)")
  memory_ax.set_title("memory grows with the backward window", fontsize=9)
  for key, label in (
    ("update", "one update"),
    ("pass_k1_equal_k2", f"{config.cost_time}-step pass, k1 = k2"),
    ("pass_k1_fixed", f"{config.cost_time}-step pass, k1 = {config.cost_k1}"),
  ):
    times = np.array([c[key]["times_s"] for c in costs]) * 1e3  # [k2s, runs]
    (line,) = time_ax.loglog(k2s, np.median(times, 1), "-o", label=label)
    time_ax.fill_between(k2s, times.min(1), times.max(1), color=line.get_color(), alpha=0.2)
  time_ax.set_ylabel("wall time (ms; median, band: fastest-slowest repeat)")
  time_ax.set_title("per update: grows with k2; per pass at k1 = k2: does not", fontsize=9)
  for ax in (memory_ax, time_ax):
    ax.set_xlabel("backward window k2 (steps)")
    ax.set_xticks(k2s, [str(k2) for k2 in k2s])  # the windows measured, not log-scale labels printing over each other
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
  fig.suptitle(
    f"The cost of TBPTT's backward window (LSTM H={config.cost_hidden_features}, batch {config.train.batch_size}, "
    f"{config.cost_time}-step sequence, {device})",
    fontsize=10,
  )
  return figures.save(fig, config.out, "tbptt_cost")


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


def redraw(record: dict, config: Config) -> list:
  """The figures of a results file (harness.redraw)."""
  return [draw(record["runs"], config), draw_cost(record["cost"], config, record["provenance"]["device"])]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  plan = Runs(len(config.k2s) * len(config.seeds))
  runs = [
    plan.run(f"LSTM, TBPTT k1 = {config.k1}, k2 = {k2}", s, lambda k2=k2, s=s: train(config, k2, s))
    for k2 in config.k2s
    for s in config.seeds
  ]
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
  costs = [cost(config, k2) for k2 in config.cost_k2s]
  cost_path = draw_cost(costs, config, report.device())
  report.write(
    "tbptt",
    "Truncated BPTT and a dependency of length T",
    [
      (
        f"Recall the first of T={config.time} tokens (vocab {config.vocab}, chance {1 / config.vocab:.2f}), "
        f"accuracy on {TEST_SIZE} fresh sequences; "
        f"LSTM H={config.hidden_features}, k1={config.k1}, {config.train.steps} batches of {config.train.batch_size}, "
        f"{config.train.optimizer} {config.train.learning_rate}, seeds {list(config.seeds)} (init and data order); "
        f"test sequences seen in training: {sum(r['train_test_overlap'] for r in runs)}",
        report.markdown_table(rows) + f"\n\n![recall accuracy against k2]({figure_path.name})",
      ),
      (
        f"The seed's memory/speed trade-off, measured: one {config.cost_time}-step sequence, LSTM "
        f"H={config.cost_hidden_features}, batch {config.train.batch_size}; times median [fastest-slowest] of "
        f"{config.cost_runs} repeats after a warm-up, compile apart",
        report.markdown_table(cost_rows(costs, config)) + f"\n\n![memory and time against k2]({cost_path.name})",
      ),
    ],
    {
      "seeds": len(config.seeds),
      "runs": runs,
      "train_test_overlap": max(r["train_test_overlap"] for r in runs),
      "cost": costs,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
