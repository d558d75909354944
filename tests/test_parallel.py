"""Parallel-scan recurrences and blockwise attention against their sequential / dense references."""

import functools

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.experimental.pallas import tpu as pltpu

from seqjax import defaults
from seqjax.attention import dot_product_attention, padding_mask
from seqjax.attention.blockwise import blockwise_attention
from seqjax.attention.dispatch import auto_implementation, fused_attention
from seqjax.parallel import LRU, MinGRU, MinLSTM, ScanBlockStack, linear_scan, log_linear_scan
from seqjax.train import init_state, make_train_step, optimizer, split_model
from tests import reference
from tests.helpers import normal

LAYERS = {"min_gru": (MinGRU, (3, 6)), "min_lstm": (MinLSTM, (3, 6)), "lru": (LRU, (3, 8))}


def test_linear_scans_agree():
  scan = jax.jit(linear_scan, static_argnums=3)  # eager, each level of the associative scan compiles alone
  log_scan = jax.jit(log_linear_scan, static_argnums=3)
  with jax.enable_x64(True):
    a = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.0, (2, 33, 4)))
    b = jnp.asarray(normal(1, 2, 33, 4, dtype=np.float64))
    h0 = jnp.asarray(normal(2, 2, 4, dtype=np.float64))
    np.testing.assert_allclose(scan(a, b, h0, "associative"), scan(a, b, h0, "sequential"), rtol=1e-12)
    b_pos = jnp.abs(b) + 0.1
    log = log_scan(jnp.log(a), jnp.log(b_pos), jnp.log(jnp.abs(h0)), "associative")
    np.testing.assert_allclose(jnp.exp(log), scan(a, b_pos, jnp.abs(h0), "sequential"), rtol=1e-10)


@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
def test_min_rnns_equal_the_papers_equations(name):
  layer_class, (F, H) = LAYERS[name]
  layer = layer_class(F, H, rngs=nnx.Rngs(0))
  x = normal(1, 2, 9, F)
  h0 = np.full((2, H), 0.5, np.float32)
  want = (reference.min_gru if name == "min_gru" else reference.min_lstm)(
    np.asarray(layer.gates.kernel[...]), np.asarray(layer.gates.bias[...]), x, h0
  )
  for mode in ("sequential", "associative"):
    np.testing.assert_allclose(layer(jnp.asarray(x), mode=mode), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_associative_equals_sequential_outputs_and_gradients(name):
  layer_class, args = LAYERS[name]
  with jax.enable_x64(name != "lru"):  # LRU computes in complex64
    dtype = np.float32 if name == "lru" else np.float64
    layer = layer_class(*args, rngs=nnx.Rngs(0))
    if dtype == np.float64:
      layer = jax.tree.map(lambda p: p.astype(jnp.float64), layer)
    x = jnp.asarray(normal(1, 2, 40, args[0], dtype=dtype))

    def loss(layer, x, mode):
      return jnp.sum(jnp.sin(layer(x, mode=mode)))

    @functools.partial(jax.jit, static_argnums=2)  # one compile per mode, not one per eager op
    def outputs_and_gradients(layer, x, mode):
      return layer(x, mode=mode), jax.grad(loss, argnums=(0, 1))(layer, x, mode)

    tol = {"rtol": 1e-4, "atol": 1e-5} if name == "lru" else {"rtol": 1e-9, "atol": 1e-12}
    parallel = outputs_and_gradients(layer, x, "associative")
    sequential = outputs_and_gradients(layer, x, "sequential")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tol), parallel, sequential)


@pytest.mark.parametrize("kind", ["mingru", "minlstm", "lru"])
def test_scan_block_stack_is_causal_and_equals_its_blocks_written_out(kind):
  stack = ScanBlockStack(kind, 8, 2, rngs=nnx.Rngs(0))
  x = jnp.asarray(normal(1, 2, 6, 8))

  @nnx.jit  # one compile, not one per eager op
  def run(stack, x):
    h = x
    for seq, ffn, n1, n2 in zip(stack.seqs, stack.ffns, stack.norms[0::2], stack.norms[1::2], strict=False):
      h = h + seq(n1(h))
      h = h + ffn(n2(h))

    def row_0_at_step_2(x):  # -> out[0, 2] [D], with all of out
      out = stack(x)
      return out[0, 2], out

    jacobian, out = jax.jacrev(row_0_at_step_2, has_aux=True)(x)  # d out[0, 2] / d x: [D, B, T, D]
    return out, stack.norms[-1](h), jacobian

  out, written_out, jacobian = run(stack, x)
  np.testing.assert_allclose(out, written_out, atol=1e-6)
  assert float(jnp.abs(jacobian[:, 0, 3:]).max()) == 0.0  # nothing from x[t > 2]
  with pytest.raises(ValueError, match=r"x must have shape \[B, T, D\] \(rank 3\), got shape \(6, 8\)"):
    stack(x[0])
  with pytest.raises(ValueError, match=r"mask must be a bool array \[B, T\] = \[2, 6\], got int32\[2, 6\]"):
    stack(x, mask=jnp.ones((2, 6), jnp.int32))


MASKS = {  # rows of a [3, 7] mask: padding at the end, at the start, in the middle
  "right": [1, 1, 1, 1, 0, 0, 0],
  "left": [0, 0, 1, 1, 1, 1, 1],
  "gaps": [1, 0, 1, 1, 0, 0, 1],
}


@pytest.mark.parametrize("mode", ["sequential", "associative"])
@pytest.mark.parametrize("kind", ["mingru", "minlstm", "lru"])
def test_masked_scan_block_stack_equals_each_sequence_alone_unpadded(kind, mode, monkeypatch):
  """Padded steps never change a real output: each row's real outputs equal the stack run on
  that row's real steps alone; padding outputs zeros, and NaN in the padding reaches neither
  the outputs nor the gradients."""
  monkeypatch.setattr(defaults, "scan_mode", lambda: mode)
  stack = ScanBlockStack(kind, 8, 2, rngs=nnx.Rngs(0))
  mask = jnp.asarray(list(MASKS.values()), bool)  # [3, 7]
  x = jnp.asarray(normal(1, 3, 7, 8))
  poisoned = jnp.where(mask[:, :, None], x, jnp.nan)
  reals = [np.flatnonzero(row) for row in np.asarray(mask)]

  def loss(stack):
    out = stack(poisoned, mask=mask)
    return jnp.sum(out**2), out

  @nnx.jit  # one compile (the mode read when traced), not one per eager op
  def run(stack):
    (_, out), grads = nnx.value_and_grad(loss, has_aux=True)(stack)
    alone = [stack(x[row : row + 1, real])[0] for row, real in enumerate(reals)]  # [T_real, D]: no padding at all
    return out, alone, grads

  out, alone, grads = run(stack)
  for row, real in enumerate(reals):
    np.testing.assert_allclose(out[row, real], alone[row], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(out)[~np.asarray(mask)], 0.0)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_log_space_stays_finite_over_long_sequences():
  layer = MinGRU(2, 4, rngs=nnx.Rngs(0))
  # jitted: eager, each of the associative scan's 13 levels would compile alone
  out = nnx.jit(lambda layer, x: layer(x, mode="associative"))(layer, jnp.asarray(normal(0, 1, 8192, 2)))
  assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_parallel_recurrences_train(name):
  """The recall-the-first-token task of experiments/tbptt.py, T = 8, in the associative mode."""
  layer_class, _ = LAYERS[name]
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 4, (64, 8))
  x = jax.nn.one_hot(tokens, 4)
  core = layer_class(4, 16, rngs=nnx.Rngs(0)) if name != "lru" else LRU(4, 16, rngs=nnx.Rngs(0))
  width = 4 if name == "lru" else 16
  model = nnx.List([core, nnx.Linear(width, 4, rngs=nnx.Rngs(1))])
  graphdef, params, rest = split_model(model)
  tx = optimizer("adam", 1e-2)

  def loss_fn(model, batch, rng):
    core, head = model
    logits = head(core(batch["x"])[:, -1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["first"]).mean(), {}

  step = make_train_step(graphdef, rest, loss_fn, tx)
  state = init_state(params, tx, 0)
  batch = {"x": x, "first": jnp.asarray(tokens[:, 0])}
  losses = []
  for _ in range(150):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert losses[-1] < 0.7 * losses[0] and losses[-1] < np.log(4) - 0.3  # well below chance


# ---- blockwise attention --------------------------------------------------------------------------

B, N, D = 2, 3, 8


def qkv(t, s, seed=0, dtype=np.float32):
  return tuple(jnp.asarray(normal(seed + i, B, n, N, D, dtype=dtype)) for i, n in enumerate((t, s, s)))


@functools.partial(jax.jit, static_argnums=0)  # one compile per attention, not one per eager op
def values_and_gradients(attention, q, k, v):
  """-> attention(q, k, v) [B, T, N, Dv] and the gradients of sum(sin(attention)) by q, k, v."""

  def loss(*a):
    out = attention(*a)
    return jnp.sum(jnp.sin(out)), out

  (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
  return out, grads


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("t,s", [(37, 45), (64, 64), (5, 100)])
def test_blockwise_equals_dense_values_and_gradients(t, s, is_causal):
  with jax.enable_x64(True):
    q, k, v = qkv(t, s, dtype=np.float64)
    key_mask = jnp.asarray(np.random.default_rng(s).random((2, s)) < 0.7).at[:, 0].set(True)  # holes anywhere
    dense_mask = key_mask[:, None, None, :]

    def blockwise(q, k, v):
      return blockwise_attention(q, k, v, key_mask=key_mask, is_causal=is_causal, block_q=16, block_k=16)

    def dense(q, k, v):
      return dot_product_attention(q, k, v, mask=dense_mask, is_causal=is_causal)

    (got, got_grads), (want, want_grads) = (values_and_gradients(f, q, k, v) for f in (blockwise, dense))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), got_grads, want_grads)


def test_blockwise_with_a_full_mask_and_fully_masked_rows():
  q, k, v = qkv(20, 30)
  mask = jnp.asarray(np.random.default_rng(0).random((B, 1, 20, 30)) < 0.5).at[0, 0, 3].set(False)
  got = blockwise_attention(q, k, v, mask=mask, block_q=8, block_k=8)
  np.testing.assert_allclose(got, dot_product_attention(q, k, v, mask=mask), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(got[0, 3], 0.0)


def primitives(jaxpr) -> set[str]:
  """Names of every primitive in a jaxpr, sub-jaxprs (scan, cond, custom_vjp) included."""
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      names |= primitives(sub)
  return names


@pytest.mark.parametrize("is_causal", [False, True])
def test_blockwise_skips_causally_hidden_key_blocks_by_a_real_branch(is_causal):
  """The skip must survive the head/batch vmaps and autodiff as a cond, not become a select
  that computes both sides."""
  q, k, v = qkv(40, 40)

  def loss(q, k, v):
    return jnp.sum(blockwise_attention(q, k, v, is_causal=is_causal, block_q=8, block_k=8))

  found = primitives(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v).jaxpr)
  assert ("cond" in found) == is_causal


def temp_bytes(fn, t):
  q = jnp.zeros((1, t, 2, 16))
  return jax.jit(jax.grad(lambda q: fn(q).sum())).lower(q).compile().memory_analysis().temp_size_in_bytes


def test_blockwise_memory_grows_linearly():
  blockwise = lambda q: blockwise_attention(q, q, q, is_causal=True, block_q=64, block_k=64)  # noqa: E731
  small, large = temp_bytes(blockwise, 512), temp_bytes(blockwise, 1024)
  assert large <= 2.2 * small
  dense = lambda q: dot_product_attention(q, q, q, is_causal=True)  # noqa: E731
  assert temp_bytes(dense, 1024) > 3 * temp_bytes(dense, 512)  # quadratic, for contrast


def test_dispatch_on_cpu():
  q, k, v = qkv(16, 16)
  key_mask = padding_mask(jnp.array([16, 9]), 16)[:, 0, 0]  # [B, S]
  want = dot_product_attention(q, k, v, mask=key_mask[:, None, None, :], is_causal=True)
  for implementation in ("auto", "dense", "blockwise"):
    got = fused_attention(q, k, v, key_mask=key_mask, is_causal=True, implementation=implementation)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="implementation must be one of"):
    fused_attention(q, k, v, implementation="flash")


@pytest.mark.parametrize(
  "backend,dtype,key_length,want",
  [
    ("gpu", jnp.bfloat16, 4096, "cudnn"),
    ("gpu", jnp.float16, 64, "cudnn"),
    ("gpu", jnp.float32, 1024, "dense"),
    ("gpu", jnp.float32, 1025, "blockwise"),
    ("tpu", jnp.float32, 64, "pallas"),
    ("cpu", jnp.bfloat16, 64, "blockwise"),
  ],
)
def test_auto_implementation_per_backend(backend, dtype, key_length, want):
  assert auto_implementation(backend, jnp.dtype(dtype), key_length) == want  # as an array's dtype


@pytest.mark.parametrize("t,s,is_causal", [(130, 56, True), (24, 70, False)])
def test_pallas_tpu_kernel_equals_dense(t, s, is_causal):
  """The Pallas TPU path run by the TPU interpreter on CPU: T and S padded to the kernel's blocks,
  key padding as segment ids; values and gradients (the kernel's own backward) against dense."""
  q, k, v = qkv(t, s)
  key_mask = jnp.asarray(np.random.default_rng(t).random((2, s)) < 0.7).at[:, 0].set(True)  # holes anywhere

  def attention(implementation):
    return lambda *a: fused_attention(*a, key_mask=key_mask, is_causal=is_causal, implementation=implementation)

  with pltpu.force_tpu_interpret_mode():  # traced (jit) inside: the kernel is interpreted
    got, got_grads = values_and_gradients(attention("pallas"), q, k, v)
  want, want_grads = values_and_gradients(attention("dense"), q, k, v)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), got_grads, want_grads)


def packed(t: int) -> jax.Array:
  """[B, T] segment ids: row 0 packs three sequences (ids 0, 1, 3), row 1 two (5, 2)."""
  return jnp.stack(
    [
      jnp.repeat(jnp.array([0, 1, 3]), jnp.array([t // 3, t // 3, t - 2 * (t // 3)])),
      jnp.repeat(jnp.array([5, 2]), jnp.array([t // 2, t - t // 2])),
    ]
  )


@pytest.mark.parametrize("is_causal", [False, True])
def test_packed_sequences_on_every_path_equal_dense_and_each_sequence_alone(is_causal):
  t = 37
  q, k, v = qkv(t, t)
  ids = packed(t)
  key_mask = jnp.ones((B, t), bool).at[1, 20:23].set(False)  # a few padded keys as well

  def attention(implementation, key_mask=key_mask, segment_ids=ids):  # each jitted: one compile, not one per op
    return jax.jit(
      lambda *a: fused_attention(
        *a, key_mask=key_mask, segment_ids=segment_ids, is_causal=is_causal, implementation=implementation
      )
    )

  mask = (ids[:, :, None] == ids[:, None, :])[:, None] & key_mask[:, None, None, :]
  want = jax.jit(lambda *a: dot_product_attention(*a, mask=mask, is_causal=is_causal))(q, k, v)
  for implementation in ("dense", "blockwise", "auto"):
    np.testing.assert_allclose(attention(implementation)(q, k, v), want, rtol=1e-5, atol=1e-6)
  no_padding, blockwise_grads = values_and_gradients(attention("blockwise", key_mask=None), q, k, v)
  _, dense_grads = values_and_gradients(attention("dense", key_mask=None), q, k, v)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), blockwise_grads, dense_grads)
  with pltpu.force_tpu_interpret_mode():  # traced inside: the kernel is interpreted
    pallas = attention("pallas")(q, k, v)
  np.testing.assert_allclose(pallas, want, rtol=1e-5, atol=1e-5)
  alone = attention("dense", key_mask=None, segment_ids=None)(q[:1, 12:24], k[:1, 12:24], v[:1, 12:24])
  np.testing.assert_allclose(no_padding[:1, 12:24], alone, rtol=1e-5, atol=1e-6)  # row 0's second sequence


def test_segment_ids_are_checked():
  q, k, v = qkv(8, 16)
  with pytest.raises(ValueError, match=r"segment_ids are for self-attention: T = 8 and S = 16"):
    fused_attention(q, k, v, segment_ids=jnp.zeros((B, 8), jnp.int32))
  q, k, v = qkv(8, 8)
  with pytest.raises(ValueError, match="segment_ids must be >= 0, got min -1"):
    blockwise_attention(q, k, v, segment_ids=jnp.full((B, 8), -1, jnp.int32))
  with pytest.raises(ValueError, match=r"segment_ids must be an integer array \[B, T\] = \[2, 8\]"):
    fused_attention(q, k, v, segment_ids=jnp.zeros((B, 7), jnp.int32), implementation="dense")


def test_key_masks_are_checked():
  q, k, v = qkv(8, 16)
  empty_row = jnp.ones((2, 16), bool).at[0].set(False)
  with pytest.raises(ValueError, match=r"key_mask must mark at least one real key in every row; rows \[0\]"):
    fused_attention(q, k, v, key_mask=empty_row, implementation="dense")
  with pytest.raises(ValueError, match=r"key_mask must be a bool array \[B, S\] = \[2, 16\], got bool\[2, 15\]"):
    blockwise_attention(q, k, v, key_mask=jnp.ones((2, 15), bool))
  with pytest.raises(ValueError, match="key_mask must be a bool array"):
    fused_attention(q, k, v, key_mask=jnp.ones((2, 16)), implementation="pallas")
