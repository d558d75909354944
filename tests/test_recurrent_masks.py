"""A recurrent model checks its padding mask once, where it takes it, whatever its depth (#29
item 5); its layers scan the lengths. Before, every layer and direction checked the mask again
(each a host read outside jit), and Seq2Seq checked it once more on top."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax import _validate
from seqjax.recurrent import StackedRNN
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig

MASK = jnp.arange(5)[None, :] < jnp.array([[5], [3]])  # [B=2, T=5]: rows of 5 and 3 real steps


@pytest.fixture
def prefix_checks(monkeypatch) -> list[str]:
  """The names of the masks _validate.prefix_mask is asked to check, in order."""
  names = []
  check = _validate.prefix_mask
  monkeypatch.setattr(_validate, "prefix_mask", lambda name, mask, **k: names.append(name) or check(name, mask, **k))
  return names


def test_a_deep_bidirectional_stack_checks_its_mask_once(prefix_checks):
  stack = StackedRNN("gru", 4, 6, num_layers=2, bidirectional=True, rngs=nnx.Rngs(0))  # 4 scans
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 4)), jnp.float32)
  outputs = nnx.jit(lambda stack, x, mask: stack(x, mask=mask))(stack, x, MASK)  # the checks run as it traces
  assert prefix_checks == ["mask"]
  np.testing.assert_array_equal(outputs[1, 3:], 0.0)  # the mask was still read: padding is zero
  with pytest.raises(ValueError, match=r"mask must mark each row's real tokens as a prefix"):
    stack(x, mask=MASK[:, ::-1])  # still refused, once


def test_seq2seq_checks_its_source_mask_once(prefix_checks):
  config = Seq2SeqConfig(
    source_vocab_size=7, target_vocab_size=7, embed_dim=4, hidden_features=6, num_layers=2, bidirectional_encoder=True
  )
  model = Seq2Seq(config, rngs=nnx.Rngs(0))
  src = jnp.asarray(np.random.default_rng(1).integers(0, 7, (2, 5)), jnp.int32)
  nnx.jit(lambda model, src, mask: model(src, jnp.zeros((2, 3), jnp.int32), mask))(model, src, MASK)
  assert prefix_checks == ["src_mask"]
