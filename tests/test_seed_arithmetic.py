"""The seeds' worked numbers, checked against seqjax and autodiff (seed 000)."""

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.attention.core import attend_one_head


def test_the_seeds_attention_example_is_arithmetically_wrong():
  """Seed 000, section 1.7: scores [2.1, 0.2, 0.1] -> "attention: [0.82, 0.09, 0.09]". The softmax of
  those scores is [0.78, 0.12, 0.11]; [0.82, 0.09, 0.09] would need scores about [2.1, -0.1, -0.1]."""
  scores = np.array([2.1, 0.2, 0.1])
  q, k = jnp.ones((1, 1)), jnp.asarray(scores[:, None], jnp.float32)  # D = 1: q k^T / sqrt(D) = scores
  everywhere = jnp.ones((1, 3), bool)
  _, weights = attend_one_head(q, k, k, everywhere, jnp.zeros((1, 3)), None, 0.0)
  np.testing.assert_allclose(weights[0], [0.778, 0.116, 0.105], atol=5e-4)
  np.testing.assert_allclose(weights[0], np.exp(scores) / np.exp(scores).sum(), rtol=1e-6)
  assert not np.allclose(weights[0], [0.82, 0.09, 0.09], atol=5e-3)


def test_the_seeds_tanh_derivative_table_holds():
  """Seed 000, section 1.3, "Problem 1": tanh(x) = 0.99, 0.80, 0.20 -> tanh'(x) = 0.02, 0.36, 0.96
  (each to the two decimals the table gives), by autodiff at x = artanh(value)."""
  for value, listed in ((0.99, 0.02), (0.80, 0.36), (0.20, 0.96)):
    derivative = jax.grad(jnp.tanh)(jnp.arctanh(jnp.float32(value)))
    np.testing.assert_allclose(derivative, 1 - value**2, rtol=1e-4)
    assert round(float(derivative), 2) == listed
