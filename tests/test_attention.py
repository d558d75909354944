"""The attention core against jax.nn.dot_product_attention, a NumPy loop and a batched einsum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from seqjax.attention import MultiHeadAttention, Visibility, causal_mask, dot_product_attention, padding_mask
from tests import reference
from tests.helpers import normal, randomize

B, T, S, N, D = 2, 5, 7, 3, 4


def qkv(t=T, s=S, seed=0, dtype=np.float32):
  return tuple(jnp.asarray(normal(seed + i, B, n, N, D, dtype=dtype)) for i, n in enumerate((t, s, s)))


def test_equals_jax_nn_with_padding_mask_for_cross_attention():
  q, k, v = qkv()
  mask = padding_mask(jnp.array([7, 3]), S)
  np.testing.assert_allclose(
    dot_product_attention(q, k, v, mask=mask), jax.nn.dot_product_attention(q, k, v, mask=mask), atol=1e-6
  )


@pytest.mark.parametrize("t,s", [(T, T), (T, S)])
def test_equals_jax_nn_causal(t, s):
  q, k, v = qkv(t, s)
  np.testing.assert_allclose(
    dot_product_attention(q, k, v, is_causal=True), jax.nn.dot_product_attention(q, k, v, is_causal=True), atol=1e-6
  )


def test_equals_numpy_loop_with_mask_bias_and_weights():
  q, k, v = qkv()
  mask = padding_mask(jnp.array([7, 2]), S) & causal_mask(T, S)
  bias = jnp.asarray(normal(9, 1, N, T, S))
  out, weights = dot_product_attention(q, k, v, mask=mask, bias=bias, return_weights=True)
  want_out, want_weights = reference.attention(q, k, v, np.asarray(mask), np.asarray(bias))
  np.testing.assert_allclose(out, want_out, atol=1e-5)
  np.testing.assert_allclose(weights, want_weights, atol=1e-6)


def test_vmapped_core_equals_batched_einsum():
  q, k, v = qkv()
  logits = jnp.einsum("btnd,bsnd->bnts", q, k) / np.sqrt(D)
  want = jnp.einsum("bnts,bsnd->btnd", jax.nn.softmax(logits, axis=-1), v)
  np.testing.assert_allclose(dot_product_attention(q, k, v), want, atol=1e-6)


def test_fully_masked_row_gives_zeros_not_nan():
  q, k, v = qkv()
  mask = jnp.ones((B, 1, T, S), bool).at[0, 0, 2].set(False)  # query 2 of example 0 sees nothing
  out, weights = dot_product_attention(q, k, v, mask=mask, return_weights=True)
  np.testing.assert_array_equal(out[0, 2], 0.0)
  np.testing.assert_array_equal(weights[0, :, 2], 0.0)
  np.testing.assert_allclose(weights[1].sum(-1), 1.0, rtol=1e-6)
  grads = jax.grad(lambda q, k, v: dot_product_attention(q, k, v, mask=mask).sum(), argnums=(0, 1, 2))(q, k, v)
  assert all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_gradients_match_finite_differences():
  with jax.enable_x64(True):
    q, k, v = qkv(dtype=np.float64)
    mask = padding_mask(jnp.array([7, 4]), S) & causal_mask(T, S)
    check_grads(lambda q, k, v: dot_product_attention(q, k, v, mask=mask), (q, k, v), order=2, modes=("fwd", "rev"))


def test_dropout_with_key_only_and_deterministic():
  q, k, v = qkv()
  plain = dot_product_attention(q, k, v, dropout_rate=0.5)
  np.testing.assert_array_equal(plain, dot_product_attention(q, k, v))
  a = dot_product_attention(q, k, v, dropout_rate=0.5, dropout_key=jax.random.key(1))
  b = dot_product_attention(q, k, v, dropout_rate=0.5, dropout_key=jax.random.key(1))
  np.testing.assert_array_equal(a, b)
  assert np.abs(np.asarray(a - plain)).max() > 1e-3


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"mask": jnp.ones((B, T, S), bool)}, r"mask must be broadcastable to \[B, N, T, S\]"),
    ({"mask": jnp.ones((B, 1, T, S + 1), bool)}, r"mask must be broadcastable to \[B, N, T, S\] = \[2, 3, 5, 7\]"),
    ({"mask": jnp.ones((B, 1, T, S), jnp.float32)}, "mask must be boolean"),
    ({"bias": jnp.ones((3, 1, T, S))}, r"bias must be broadcastable"),
    ({"dropout_rate": 1.5}, r"dropout_rate must be in \[0, 1\)"),
  ],
)
def test_bad_arguments(kwargs, match):
  q, k, v = qkv()
  with pytest.raises(ValueError, match=match):
    dot_product_attention(q, k, v, **kwargs)


def test_bad_shapes():
  q, k, v = qkv()
  with pytest.raises(ValueError, match=r"key must have shape \[B, S, N, D\]"):
    dot_product_attention(q, k[..., :2], v)
  with pytest.raises(ValueError, match=r"query must have shape \[B, T, N, D\] \(rank 4\)"):
    dot_product_attention(q[0], k, v)
  with pytest.raises(ValueError, match="model dim in_features=10 must be divisible by num_heads=3"):
    MultiHeadAttention(3, 10, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("cross", [False, True])
def test_multihead_equals_flax(cross):
  dim, heads = 12, 3
  ours = randomize(MultiHeadAttention(heads, dim, rngs=nnx.Rngs(0)))
  theirs = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=nnx.Rngs(1))
  for name in ("query", "key", "value", "out"):
    getattr(theirs, name).kernel[...] = getattr(ours, name).kernel[...]
    getattr(theirs, name).bias[...] = getattr(ours, name).bias[...]
  x = jnp.asarray(normal(1, B, T, dim))
  context = jnp.asarray(normal(2, B, S, dim)) if cross else None
  mask = padding_mask(jnp.array([S, 3]) if cross else jnp.array([T, 3]), S if cross else T)  # [B, 1, 1, S]
  want = theirs(x, context, mask=mask)
  got, weights = ours(x, context, key_mask=mask[:, 0, 0], return_weights=True)
  np.testing.assert_allclose(got, want, atol=1e-5)
  np.testing.assert_allclose(ours(x, context, key_mask=mask[:, 0, 0]), got, atol=0)  # weights: the same path
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("implementation", ["auto", "blockwise"])
def test_multihead_fast_paths_equal_the_dense_core(implementation):
  dim, heads = 12, 3
  dense = randomize(MultiHeadAttention(heads, dim, rngs=nnx.Rngs(0)))
  fast = MultiHeadAttention(heads, dim, implementation=implementation, rngs=nnx.Rngs(0))
  assert fast.implementation == "blockwise"  # "auto" is resolved when the layer is built (CPU: blockwise)
  nnx.update(fast, nnx.state(dense))
  x = jnp.asarray(normal(1, B, T, dim))
  np.testing.assert_allclose(fast(x, is_causal=True), dense(x, is_causal=True), rtol=1e-5, atol=1e-6)
  key_mask = padding_mask(jnp.array([T, 3]), T)[:, 0, 0]  # [B, T]: padding keeps the fast path
  np.testing.assert_allclose(fast(x, key_mask=key_mask), dense(x, key_mask=key_mask), rtol=1e-5, atol=1e-6)
  ids = (jnp.arange(T)[None, :] >= jnp.array([[2], [4]])).astype(jnp.int32)  # two packed sequences per row
  np.testing.assert_allclose(fast(x, segment_ids=ids), dense(x, segment_ids=ids), rtol=1e-5, atol=1e-6)
  unserved = "runs implementation='blockwise', which serves key padding, segment ids and causal masking alone"
  with pytest.raises(ValueError, match=unserved + r", not \['bias'\]"):  # "auto" sends no call elsewhere
    fast(x, bias=jnp.zeros((1, heads, T, T)))
  with pytest.raises(ValueError, match=unserved + r", not \['return_weights'\]"):
    fast(x, return_weights=True)


def test_auto_resolves_when_built_and_attention_dropout_is_dense():
  """Before, "auto" stayed "auto" and sent each call carrying a dropout key to the dense core."""
  x = jnp.asarray(normal(2, B, T, 8))
  dropping = MultiHeadAttention(2, 8, dropout_rate=0.5, implementation="auto", rngs=nnx.Rngs(0))
  assert dropping.implementation == "dense"  # no fused path drops attention weights
  dense = MultiHeadAttention(2, 8, dropout_rate=0.5, rngs=nnx.Rngs(0))
  key = jax.random.key(1)
  np.testing.assert_array_equal(dropping(x, dropout_key=key), dense(x, dropout_key=key))
  named = MultiHeadAttention(2, 8, dropout_rate=0.5, implementation="blockwise", rngs=nnx.Rngs(0))
  np.testing.assert_allclose(named(x), dense(x), rtol=1e-5, atol=1e-6)  # without a key: no dropout
  with pytest.raises(ValueError, match=r"not \['attention dropout \(a dropout_key with dropout_rate > 0\)'\]"):
    named(x, dropout_key=key)


def test_a_checked_visibility_serves_the_layer_it_was_checked_for():
  mha = MultiHeadAttention(2, 8, rngs=nnx.Rngs(0))
  x = jnp.asarray(normal(3, B, T, 8))
  key_mask = padding_mask(jnp.array([T, 3]), T)[:, 0, 0]
  ids = (jnp.arange(T)[None, :] >= 2).astype(jnp.int32).repeat(B, 0)
  checked = Visibility.checked(B, T, T, key_mask=key_mask, segment_ids=ids, causal=True)
  want = mha(x, key_mask=key_mask, segment_ids=ids, is_causal=True)
  np.testing.assert_array_equal(mha(x, visibility=checked), want)
  with pytest.raises(ValueError, match=r"give a checked visibility or the masks \['key_mask'\], not both"):
    mha(x, key_mask=key_mask, visibility=checked)
  with pytest.raises(ValueError, match=r"checked for \[B, T, S\] = \[2, 5, 5\], but this attention is .* \[2, 4, 4\]"):
    mha(x[:, :4], visibility=checked)
  with pytest.raises(ValueError, match=r"lengths must mark at least one real key in every row; rows \[1\] have none"):
    Visibility.checked(B, T, T, key_mask=key_mask.at[1].set(False), names={"key_mask": "lengths"})


def test_multihead_implementation_is_checked():
  with pytest.raises(ValueError, match="implementation must be one of"):
    MultiHeadAttention(3, 12, implementation="flash", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("implementation", ["dense", "blockwise"])
def test_logit_scale_equals_jax_nn_with_that_scale(implementation):
  mha = MultiHeadAttention(2, 8, rope=False, logit_scale=1.0, implementation=implementation, rngs=nnx.Rngs(0))
  x = jnp.asarray(normal(3, 2, 5, 8))  # [B, T, D]
  q, k, v = mha.query(x), mha.key(x), mha.value(x)  # [B, T, N, Dh]
  want = mha.out(jax.nn.dot_product_attention(q, k, v, scale=1.0, is_causal=True))  # T5's unscaled logits
  np.testing.assert_allclose(mha(x, is_causal=True), want, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="logit_scale must be a finite number > 0"):
    MultiHeadAttention(2, 8, logit_scale=0.0, rngs=nnx.Rngs(0))
