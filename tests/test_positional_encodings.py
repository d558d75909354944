"""experiments/positional_encodings.py: its models are the zoo's under a per-token readout, they keep
the promises the experiment rests on (no positions: order-blind encoder; causal decoder), and a cell
of one's own runs through it by `--models package.module:builder`."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import positional_encodings as study
from harness import cli
from seqjax.train import TrainConfig

CONFIG = study.Config(dim=8, num_heads=2, num_layers=1, train=TrainConfig(steps=2, batch_size=8), test_size=4)
CELL = "tests.test_zoo:build_indrnn"


def tokens(kind: str, n: int, seed: int = 0) -> jnp.ndarray:
  return jnp.asarray(study.make_batch(kind, n, np.random.default_rng(seed), 3)["tokens"])


@pytest.mark.parametrize("kind", study.KINDS)
def test_the_answers_are_the_readout_of_the_last_n_positions(kind):
  model = study.reverser(kind, "learned", 4, CONFIG, nnx.Rngs(0))
  x = tokens(kind, 4)
  every_position = model(x)  # [B, L, SYMBOLS]: the tagger's own output
  assert every_position.shape == (3, 8 if kind == "decoder" else 4, study.SYMBOLS)
  np.testing.assert_allclose(study.answer_logits(model, x, 4), every_position[:, -4:], rtol=1e-6, atol=1e-6)


def test_an_encoder_without_positions_is_order_blind_and_one_with_them_is_not():
  x = tokens("encoder", 6)
  order = jnp.array([3, 0, 5, 1, 4, 2])
  blind = study.reverser("encoder", "none", 6, CONFIG, nnx.Rngs(0))
  np.testing.assert_allclose(blind(x[:, order]), blind(x)[:, order], rtol=1e-5, atol=1e-5)  # permutation-equivariant
  for position in ("sinusoidal", "learned", "rope", "relative"):
    model = study.reverser("encoder", position, 6, CONFIG, nnx.Rngs(0))
    assert not np.allclose(model(x[:, order]), model(x)[:, order], atol=1e-4), position


@pytest.mark.parametrize("name", [*study.POSITIONS, CELL])
def test_the_decoder_reads_no_later_token(name):
  model = study.reverser("decoder", name, 4, CONFIG, nnx.Rngs(0))
  x = tokens("decoder", 4)
  changed = x.at[:, 5:].set((x[:, 5:] + 1) % study.SYMBOLS)
  np.testing.assert_allclose(model(changed)[:, :5], model(x)[:, :5], rtol=1e-5, atol=1e-6)


def test_a_cell_of_ones_own_runs_as_encoder_and_decoder():
  config = cli.parse(study.CONFIGS, ["smoke", "--models", CELL])
  assert config.models == (CELL,)
  config = dataclasses.replace(config, train=CONFIG.train, test_size=4)
  for kind in study.KINDS:
    record = study.run(kind, CELL, 4, 0, config)
    assert record["position"] == CELL and 0.0 <= record["accuracy"] <= 1.0
  assert study.label(CELL) == CELL and study.label("rope") == "Transformer, rope positions"


def test_unknown_or_unbuildable_models_are_refused_by_name():
  with pytest.raises(ValueError, match=r"models: 'alibi' is not one of \['none', .*\], nor unknown architecture"):
    cli.parse(study.CONFIGS, ["smoke", "--models", "alibi"])
  with pytest.raises(ValueError, match=r"'bilstm' does not build as the decoder at width dim=8: .*causal=False"):
    cli.parse(study.CONFIGS, ["smoke", "--models", "bilstm"])
