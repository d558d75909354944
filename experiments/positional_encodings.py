"""Positional encodings are not optional for an encoder; a causal decoder can do without them,
up to a length (seed 001/002: self-attention is order-blind, so "positional encodings are
added"; the seed 000 list of Transformer parts).

Task: reverse a sequence of n random symbols (8 of them). Two Transformers, each with five
position schemes (none, sinusoidal, learned, RoPE, T5 relative buckets), same width, depth,
optimizer and steps:

    encoder   bidirectional; reads x_1..x_n and answers y_i = x_{n+1-i} at every position i.
              Without positions self-attention is permutation-equivariant: position i sees the
              same multiset as every other, so the best it can do is name the most frequent
              symbol (`order_blind_ceiling`: 0.32, 0.26, 0.22 at n = 8, 16, 32; chance 1/8).
    decoder   causal; reads x_1..x_n, a separator, y_1..y_{n-1} and predicts y_1..y_n
              (teacher forcing). The causal mask leaks position (each step sees a different
              number of tokens), so it can infer where it is; how far that carries is measured
              by n.

Per-symbol test accuracy on fresh sequences (the sequences shared with training are counted),
over `seeds` (init and data order), for each n in `lengths`.

Each model is an architecture of `seqjax.zoo` under a per-token readout (`seqjax.heads.TokenTagger`,
read at the n answer positions): the five Transformers are the zoo's `transformer` with each
`position`. `--models` picks among them by scheme, and also takes any architecture of the zoo by
its name or as "package.module:builder" (your own: README, "Your own model"), built at width
`dim` and asked for causal=False as the encoder, causal=True as the decoder.

Commands:
    python -m experiments.positional_encodings default   # n = 8, 16, 32; 3 seeds; about 30 minutes on 2 CPU cores
    python -m experiments.positional_encodings smoke
    python -m experiments.positional_encodings smoke --models rope lstm mypkg.cells:build_indrnn
    python -m experiments.positional_encodings large     # n up to 256, wider, 5 seeds
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report
from harness.runs import Runs
from seqjax import zoo
from seqjax.heads import SequenceEncoder, TokenTagger
from seqjax.train import TrainConfig, fit

SYMBOLS = 8  # the alphabet; the decoder's separator is token SYMBOLS
POSITIONS = ("none", "sinusoidal", "learned", "rope", "relative")  # the compared models: a Transformer with each
KINDS = ("encoder", "decoder")
# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"positions": "models", "heads": "num_heads", "layers": "num_layers"}


def order_blind_ceiling(n: int, samples: int = 200_000, seed: int = 0) -> float:
  """The expected accuracy of naming each sequence's most frequent symbol at every position: the
  best a reader of the multiset alone (an encoder without positions) can do."""
  x = np.random.default_rng(seed).integers(0, SYMBOLS, (samples, n))  # [samples, n]
  counts = np.stack([(x == s).sum(1) for s in range(SYMBOLS)], 1)  # [samples, SYMBOLS]
  return float((counts.max(1) / n).mean())


@dataclasses.dataclass(frozen=True)
class Config:
  lengths: tuple[int, ...] = (8, 16, 32)
  models: tuple[str, ...] = POSITIONS  # Transformers' position schemes, or seqjax.zoo's: a name or "module:builder"
  dim: int = 64  # every model's width
  num_heads: int = 4  # the Transformers'
  num_layers: int = 2  # the Transformers'
  train: TrainConfig = TrainConfig(steps=600, batch_size=32, learning_rate=1e-3, clip_norm=1.0)
  test_size: int = 512
  seeds: tuple[int, ...] = (0, 1, 2)
  out: str = report.default_out("positional_encodings")

  def check(self) -> "Config":
    if not self.lengths or any(not isinstance(n, int) or n < 2 for n in self.lengths):
      raise ValueError(f"lengths must name at least one length, each an integer >= 2, got {self.lengths}")
    if not self.models:
      raise ValueError(f"models must name at least one of {POSITIONS} or of seqjax.zoo, got {self.models}")
    for name in ("dim", "num_heads", "num_layers", "test_size"):
      cli.at_least(name, getattr(self, name), 1)
    if self.dim % (2 * self.num_heads):
      raise ValueError(
        f"dim must be a multiple of 2 x num_heads (even RoPE head dims), got dim {self.dim}, num_heads {self.num_heads}"
      )
    for name in self.models:
      architecture(name, self)  # a ValueError naming it unless it is known
      for kind in KINDS if name not in POSITIONS else ():  # a zoo architecture must build for both (on shapes)
        try:
          nnx.eval_shape(lambda kind=kind, name=name: reverser(kind, name, 2, self, nnx.Rngs(0)))
        except (TypeError, ValueError) as error:
          raise ValueError(f"models: {name!r} does not build as the {kind} at width dim={self.dim}: {error}") from None
    self.train.check()
    cli.check_seeds(self.seeds)
    return self


def make_batch(kind: str, n: int, rng: np.random.Generator, size: int) -> dict:
  """tokens [B, L] int32 and targets [B, n]: encoder L = n; decoder L = 2n (x, separator, y_1..y_{n-1})."""
  x = rng.integers(0, SYMBOLS, (size, n))
  y = x[:, ::-1]
  if kind == "encoder":
    return {"tokens": x.astype(np.int32), "targets": y.astype(np.int32)}
  separator = np.full((size, 1), SYMBOLS)
  tokens = np.concatenate([x, separator, y[:, :-1]], axis=1)  # [B, 2n]
  return {"tokens": tokens.astype(np.int32), "targets": y.astype(np.int32)}


def architecture(name: str, config: Config) -> tuple[str, dict]:
  """(zoo spec, options) of a model's name: a position scheme's Transformer (pre-LN blocks,
  feed-forward 4 x dim) at the config's sizes, or a zoo spec's own (no options)."""
  transformers = {
    position: ("transformer", {"position": position, "num_layers": config.num_layers,
                               "num_heads": config.num_heads, "ff_factor": 4})
    for position in POSITIONS
  }  # fmt: skip
  return cli.model_choice(name, transformers, lambda spec: (spec, {}))


def reverser(kind: str, name: str, n: int, config: Config, rngs: nnx.Rngs) -> TokenTagger:
  """The model `name` reading kind's tokens [B, L] (L = n, or 2n for the decoder) -> logits
  [B, L, SYMBOLS]; the answers are the last n (`answer_logits`). Its learned positions, if any,
  are a table of L; the encoder asks the builder for causal=False."""
  spec, options = architecture(name, config)
  causal, length = kind == "decoder", 2 * n if kind == "decoder" else n
  builder = zoo.resolve(spec).builder
  return TokenTagger(
    SYMBOLS, config.dim, builder, causal=causal, vocab_size=SYMBOLS + 1, context=length, rngs=rngs, **options
  )


def answer_logits(model: TokenTagger, tokens: jax.Array, answers: int) -> jax.Array:
  """tokens [B, L] -> logits [B, answers, SYMBOLS], the readout of the last `answers` positions only
  (reading out every position and slicing after gives the readout's gradient other last bits)."""
  return model.readout(SequenceEncoder.__call__(model, tokens)[:, -answers:])


def loss_fn(model, batch, rng):
  del rng
  logits = answer_logits(model, batch["tokens"], batch["targets"].shape[1])
  loss = -jnp.take_along_axis(jax.nn.log_softmax(logits), batch["targets"][..., None], axis=-1).mean()
  return loss, {"accuracy": (logits.argmax(-1) == batch["targets"]).mean()}


def run(kind: str, name: str, n: int, seed: int, config: Config) -> dict:
  train = dataclasses.replace(config.train, seed=seed)
  stream = 1 + KINDS.index(kind)
  seen: set[bytes] = set()

  def batch_fn(step: int, rows: slice) -> dict:
    batch = make_batch(kind, n, np.random.default_rng([seed, stream, n, step]), train.batch_size)
    seen.update(row.tobytes() for row in batch["tokens"])
    return {k: v[rows] for k, v in batch.items()}

  start = time.perf_counter()
  result = fit(reverser(kind, name, n, config, nnx.Rngs(seed)), loss_fn, batch_fn, train)
  seconds = time.perf_counter() - start
  test = make_batch(kind, n, np.random.default_rng([seed, stream, n, 10**9]), config.test_size)
  logits = nnx.jit(answer_logits, static_argnums=2)(result.model, jnp.asarray(test["tokens"]), n)
  return {
    "kind": kind,
    "position": name,  # the model's name: a position scheme (the Transformer's), or the zoo architecture
    "length": n,
    "seed": seed,
    "accuracy": float((np.asarray(logits).argmax(-1) == test["targets"]).mean()),
    "final_train_loss": float(result.history[-1]["loss"]),
    "train_test_overlap": sum(row.tobytes() in seen for row in test["tokens"]),
    "train_seconds": seconds,
  }


def draw(runs: list[dict], config: Config):
  fig, axes = figures.figure(11.0, 4.4, columns=2)
  for ax, kind in zip(axes, KINDS, strict=True):
    for index, name in enumerate(config.models):
      scores = np.array(
        [
          [r["accuracy"] for r in runs if (r["kind"], r["position"], r["length"]) == (kind, name, n)]
          for n in config.lengths
        ]
      )  # [lengths, seeds]
      ax.plot(config.lengths, scores.mean(1), marker="o", ms=3, color=f"C{index}", label=name)
      ax.fill_between(config.lengths, scores.min(1), scores.max(1), color=f"C{index}", alpha=0.15)
    ax.axhline(1 / SYMBOLS, color="gray", lw=0.8, ls="-.", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length n (symbols to reverse)")
    ax.set_ylabel("test accuracy per symbol")
    ax.set_ylim(0, 1.05)
    ax.set_title(
      "bidirectional encoder: order-blind without positions"
      if kind == "encoder"
      else "causal decoder: the mask leaks position",
      fontsize=10,
    )
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize=8, title="positions" if set(config.models) <= set(POSITIONS) else "model")
  fig.suptitle(
    f"Reversing n symbols with each position scheme ({config.num_layers} layers, D={config.dim}, "
    f"{config.train.steps} steps; mean, band: lowest-highest of {len(config.seeds)} seeds)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "positional_encodings")


def label(name: str) -> str:
  """A model's name in the table and progress: "Transformer, <scheme> positions", or the zoo architecture's."""
  return f"Transformer, {name} positions" if name in POSITIONS else name


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["runs"], config)]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  started = time.perf_counter()
  plan = Runs(len(KINDS) * len(config.models) * len(config.lengths) * len(config.seeds))
  runs = [
    plan.run(f"{kind}, {label(name)}, n = {n}", seed, lambda k=kind, m=name, n=n, s=seed: run(k, m, n, s, config))
    for kind in KINDS
    for name in config.models
    for n in config.lengths
    for seed in config.seeds
  ]
  rows = []
  for kind in KINDS:
    for name in config.models:
      row = {"reading": kind, "model": label(name)}
      for n in config.lengths:
        scores = [r["accuracy"] for r in runs if (r["kind"], r["position"], r["length"]) == (kind, name, n)]
        row[f"n = {n}"] = report.spread(scores, ".2f")
      rows.append(row)
  overlap = sum(r["train_test_overlap"] for r in runs)
  figure_path = draw(runs, config)
  report.write(
    "positional_encodings",
    "Positional encodings: an encoder cannot order without them, a causal decoder partly can",
    [
      (
        "Per-symbol test accuracy reversing n symbols (chance 0.125), mean [lowest-highest]",
        f"{config.num_layers}-layer pre-LN Transformers, D={config.dim}, {config.num_heads} heads"
        + "".join(f"; {name} (seqjax.zoo) at width {config.dim}" for name in config.models if name not in POSITIONS)
        + "; "
        f"{config.train.steps} Adam steps of batch {config.train.batch_size} at learning rate "
        f"{config.train.learning_rate:g}; seeds {list(config.seeds)} (init and data order); "
        f"{config.test_size} fresh test sequences per run, {overlap} of them (all runs together) also drawn in "
        f"training. All runs: {(time.perf_counter() - started) / 60:.1f} minutes.\n\n"
        + report.markdown_table(rows)
        + f"\n\n![accuracy by length and scheme]({figure_path.name})",
      )
    ],
    {"seeds": len(config.seeds), "runs": runs},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


CONFIGS = {
  "default": ("n = 8, 16, 32; D=64, 2 layers, 600 steps, 3 seeds (the README's numbers)", Config()),
  "smoke": (
    "n = 4, learned positions (each scheme runs the same code here; tests/test_positional_encodings.py builds "
    "them all), D=8, 3 steps, 1 seed",
    Config(
      lengths=(4,),
      models=("learned",),
      dim=8,
      num_heads=2,
      num_layers=1,
      train=TrainConfig(steps=3, batch_size=8, learning_rate=1e-3),
      test_size=8,
      seeds=(0,),
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: n up to 256, D=256, 4 layers, 5000 steps, 5 seeds",
    Config(
      lengths=(8, 16, 32, 64, 128, 256),
      dim=256,
      num_heads=8,
      num_layers=4,
      train=TrainConfig(steps=5000, batch_size=64, learning_rate=3e-4, clip_norm=1.0),
      test_size=2048,
      seeds=(0, 1, 2, 3, 4),
      out=report.default_out("positional_encodings", "large"),
    ),
  ),
}


if __name__ == "__main__":
  main()
