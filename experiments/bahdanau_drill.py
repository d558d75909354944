"""The seed's hands-on drill (seed 000, "Hands-on drills"): a tiny Bahdanau attention over a
3-token source and a 2-token target; print the attention weights to see which source positions
are favored.

So that the weights have something to show, the tiny model first learns a task whose right
alignment is known: the target is (3rd source token, 1st source token). Printed: the weights of
one example before and after training, and the mean weights over fresh examples; the learned
model should look at source position 3 for the first output and position 1 for the second.

Commands:
    python -m experiments.bahdanau_drill default     # 300 Adam steps, a few seconds on CPU
    python -m experiments.bahdanau_drill smoke
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments import cli, report
from seqjax import _validate
from seqjax.data.batching import seq2seq_batch
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import TrainConfig, fit

SYMBOLS = 6  # token ids 4..9 (0-3 are PAD, BOS, EOS, UNK)


@dataclasses.dataclass(frozen=True)
class Config:
  hidden: int = 16
  train: TrainConfig = TrainConfig(steps=300, batch_size=64, learning_rate=1e-2, clip_norm=None, progress=False)
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    self.train.check()
    _validate.positive_int("hidden", self.hidden)
    return self


CONFIGS = {
  "default": ("300 steps (the README's numbers)", Config()),
  "smoke": ("3 steps", Config(train=dataclasses.replace(Config().train, steps=3), out="/tmp/seqjax-smoke")),
}


def examples(rng: np.random.Generator, count: int) -> dict:
  src = rng.integers(4, 4 + SYMBOLS, (count, 3))
  return seq2seq_batch([(list(s), [s[2], s[0]]) for s in src])


def training_batch(step: int, rows: slice, config: Config) -> dict:
  batch = examples(np.random.default_rng([config.train.seed, step]), config.train.batch_size)
  return {name: array[rows] for name, array in batch.items()}


def attention_table(weights: np.ndarray) -> str:
  rows = [{"output step": t + 1, **{f"source {s + 1}": f"{weights[t, s]:.3f}" for s in range(3)}} for t in range(2)]
  return report.markdown_table(rows)


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  model_config = Seq2SeqConfig(
    4 + SYMBOLS, 4 + SYMBOLS, embed_dim=8, hidden=config.hidden, attention="bahdanau", bidirectional_encoder=True
  )
  model = Seq2Seq(model_config, rngs=nnx.Rngs(config.train.seed))
  probe = examples(np.random.default_rng(12345), 1)

  def weights_of(model, batch):
    _, weights = model(batch["src"], batch["tgt_in"], batch["src_mask"])
    return np.asarray(weights)[:, :2]  # [B, 2 output steps, 3 source positions]; step 3 is EOS

  before = weights_of(model, probe)[0]
  result = fit(model, teacher_forced_loss, lambda step, rows: training_batch(step, rows, config), config.train)
  model, loss = result.model, result.history[-1]["loss"]
  fresh = examples(np.random.default_rng(config.train.seed + 1), 256)
  logits, _ = model(fresh["src"], fresh["tgt_in"], fresh["src_mask"])
  accuracy = float(jnp.mean(jnp.argmax(logits[:, :2], -1) == fresh["tgt_out"][:, :2]))
  after, mean = weights_of(model, probe)[0], weights_of(model, fresh).mean(0)
  source = " ".join(str(t) for t in probe["src"][0])
  report.write(
    "bahdanau_drill",
    "A tiny Bahdanau attention: 3-token source, 2-token target",
    [
      (f"Example source [{source}], target (3rd, 1st); weights before training", attention_table(before)),
      (f"The same example after {config.train.steps} steps (final loss {loss:.4f})", attention_table(after)),
      (
        f"Mean weights over 256 fresh examples (output accuracy {accuracy:.3f})",
        attention_table(mean) + "\n\nAdditive score e_j = v^T tanh(W1 h_j + W2 s_{i-1}) over a bidirectional "
        f"LSTM encoder, H={config.hidden}.",
      ),
    ],
    {
      "before": before.tolist(),
      "after": after.tolist(),
      "mean": mean.tolist(),
      "accuracy": accuracy,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
