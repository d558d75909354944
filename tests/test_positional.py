"""Positional encodings: the seeds' sinusoid formula, RoPE's relative property, T5 buckets."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax.attention import (
  AbsolutePositions,
  RelativePositionBias,
  apply_rope,
  relative_position_bucket,
  sinusoidal_encoding,
)
from tests import reference
from tests.helpers import forward, normal


def test_sinusoidal_equals_the_formula():
  T, D = 50, 16
  table = np.asarray(sinusoidal_encoding(jnp.arange(T), D))
  want = np.array([[reference.sinusoid(p, i, D) for i in range(D)] for p in range(T)])
  np.testing.assert_allclose(table, want, atol=2e-5)


def test_rope_scores_depend_on_offset_only():
  q = jnp.asarray(normal(0, 1, 1, 1, 8))
  k = jnp.asarray(normal(1, 1, 1, 1, 8))

  def score(m, n):
    return float(jnp.sum(apply_rope(q, jnp.array([m])) * apply_rope(k, jnp.array([n]))))

  assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-5)
  assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)
  np.testing.assert_allclose(apply_rope(q, jnp.array([0])), q, atol=1e-7)  # position 0 is the identity
  np.testing.assert_allclose(jnp.linalg.norm(apply_rope(q, jnp.array([5]))), jnp.linalg.norm(q), rtol=1e-6)


def test_t5_buckets():
  rel = jnp.arange(-200, 201)
  bi = np.asarray(relative_position_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128))
  uni = np.asarray(relative_position_bucket(rel, bidirectional=False, num_buckets=32, max_distance=128))
  zero = 200
  # small distances get exact buckets: keys before the query (rel < 0) in 0..7, after it in 16..23
  np.testing.assert_array_equal(bi[zero - 7 : zero + 1], np.arange(7, -1, -1))
  np.testing.assert_array_equal(bi[zero + 1 : zero + 8], 16 + np.arange(1, 8))
  assert bi.min() == 0 and bi.max() == 31
  assert (np.diff(bi[: zero + 1]) <= 0).all() and (np.diff(bi[zero + 1 :]) >= 0).all()  # monotone in |rel|
  assert bi[0] == bi[zero - 128] == 15  # far distances share the last bucket
  # causal: keys after the query all fall in bucket 0; the past uses all 32 buckets
  np.testing.assert_array_equal(uni[zero:], 0)
  assert uni[0] == 31 and uni[zero - 15] == 15


def test_relative_bias_shape():
  bias = forward(RelativePositionBias(4, bidirectional=True, rngs=nnx.Rngs(0)), jnp.arange(5), jnp.arange(7))
  assert bias.shape == (1, 4, 5, 7)


def test_learned_positions_table_and_errors():
  positions = AbsolutePositions("learned", 10, 8, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(positions(jnp.array([2, 3])), positions.table[...][2:4])
  with pytest.raises(ValueError, match="position must be one of"):
    AbsolutePositions("alibi", 10, 8, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="dim must be even"):
    sinusoidal_encoding(jnp.arange(3), 7)
  with pytest.raises(ValueError, match="head dim must be even"):
    apply_rope(jnp.zeros((1, 2, 1, 5)), jnp.arange(2))
