"""A tiny language-modelling setup shared by the training tests and the 2-process worker."""

import functools

import numpy as np
from flax import nnx

from seqjax.train import TrainConfig, token_cross_entropy
from seqjax.transformer import GPT, GPTConfig

VOCAB = 29
DATA = np.random.default_rng(0).integers(0, VOCAB, (64, 9)).astype(np.int32)


def make_model(dropout_rate: float = 0.1) -> GPT:
  return _initialized(dropout_rate)


@functools.partial(nnx.jit, static_argnums=0)
def _initialized(dropout_rate: float) -> GPT:
  """Initialized in one compiled program (kept in the suite's compile cache, so a test's worker
  process loads it), not an eager op at a time (seconds in each process): a new model each call."""
  config = GPTConfig(
    vocab_size=VOCAB, max_length=16, dim=16, num_heads=2, num_layers=1, ff_dim=32, dropout_rate=dropout_rate
  )
  return GPT(config, rngs=nnx.Rngs(0))


def batch_fn(step: int, rows: slice, batch_size: int = 8) -> dict:
  """Global batch `step` is a seeded draw of the data; a host loads only its `rows`."""
  index = np.random.default_rng(step).choice(len(DATA), batch_size, replace=False)
  return {"tokens": DATA[index][rows]}


def loss_fn(model, batch, rng):
  tokens = batch["tokens"]
  loss, count = token_cross_entropy(model(tokens[:, :-1], dropout_key=rng), tokens[:, 1:])
  return loss, {"tokens": count}


def config(**overrides) -> TrainConfig:
  defaults = {"steps": 12, "batch_size": 8, "log_every": 1, "learning_rate": 1e-2, "progress": False}
  return TrainConfig(**{**defaults, **overrides})
