"""The Transformer family: causality, padding, KV-cache decoding, published sizes, training, generation."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from seqjax.attention import Visibility, dispatch
from seqjax.train import init_state, make_train_step, optimizer, split_model
from seqjax.train.grad_health import parameter_names, structurally_zero
from seqjax.transformer import (
  GPT,
  BertConfig,
  BertForPreTraining,
  BertModel,
  EncoderDecoder,
  EncoderDecoderConfig,
  GPTConfig,
  TransformerBlock,
  TransformerBlockConfig,
  TransformerStack,
  ViT,
  ViTConfig,
  mask_tokens,
  patchify,
  t5_like,
)

V = 37
TINY = dict(dim=16, num_heads=2, ff_dim=32, dropout_rate=0.0)


def tiny_gpt(position="learned", seed=0):
  return GPT(GPTConfig(vocab_size=V, max_length=16, num_layers=2, position=position, **TINY), rngs=nnx.Rngs(seed))


def tiny_encdec(position="sinusoidal", norm="post", seed=0):
  config = EncoderDecoderConfig(
    vocab_size=V, max_length=16, num_encoder_layers=2, num_decoder_layers=2, position=position, norm=norm, **TINY
  )
  return EncoderDecoder(config, rngs=nnx.Rngs(seed))


def tiny_bert(seed=0, next_sentence=True):
  config = BertConfig(vocab_size=V, max_length=16, num_layers=2, **TINY)
  return BertForPreTraining(config, next_sentence=next_sentence, rngs=nnx.Rngs(seed))


def tiny_vit(seed=0):
  config = ViTConfig(image_size=8, patch_size=4, channels=3, num_layers=2, num_classes=5, **TINY)
  return ViT(config, rngs=nnx.Rngs(seed))


def tokens(seed, *shape):
  return jnp.asarray(np.random.default_rng(seed).integers(0, V, shape), jnp.int32)


def params_of(module_factory):
  return sum(x.size for x in jax.tree.leaves(nnx.state(nnx.eval_shape(module_factory), nnx.Param)))


# ---- published parameter counts -------------------------------------------------------------


def test_vit_b16_parameter_count():
  assert params_of(lambda: ViT(ViTConfig(), rngs=nnx.Rngs(0))) == 86_567_656


def test_gpt2_small_parameter_count():
  assert params_of(lambda: GPT(GPTConfig(), rngs=nnx.Rngs(0))) == 124_439_808


def test_bert_base_parameter_count():
  assert params_of(lambda: BertModel(BertConfig(), rngs=nnx.Rngs(0))) == 109_482_240


def test_transformer_base_2017_parameter_count():
  count = params_of(lambda: EncoderDecoder(EncoderDecoderConfig(), rngs=nnx.Rngs(0)))
  assert count == 63_082_496  # the paper rounds to 65M; shared 37k vocabulary, tied embeddings


# ---- causality and padding ------------------------------------------------------------------


@pytest.mark.parametrize("position", ["learned", "rope", "sinusoidal"])
def test_gpt_future_tokens_never_change_earlier_outputs(position):
  model = tiny_gpt(position)
  x = tokens(0, 2, 10)
  changed = x.at[:, 6].set((x[:, 6] + 1) % V)
  a, b = nnx.jit(lambda model: (model(x), model(changed)))(model)  # one compile, not one per eager op
  np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-6)
  assert np.abs(np.asarray(a[:, 6:] - b[:, 6:])).max() > 1e-4


@pytest.mark.parametrize("position", ["sinusoidal", "relative"])
def test_encdec_decoder_is_causal_and_source_padding_is_ignored(position):
  model = tiny_encdec(position)
  src, tgt = tokens(0, 2, 8), tokens(1, 2, 6)
  # source example 1 has 5 real tokens: the rest may be anything
  src_mask = jnp.arange(8)[None, :] < jnp.array([[8], [5]])
  garbage = src.at[1, 5:].set(3)

  @nnx.jit  # one compile, not one per eager op
  def run(model):
    changed = model(src, tgt.at[:, 4].set((tgt[:, 4] + 1) % V))
    return model(src, tgt), changed, model(garbage, tgt, src_mask=src_mask), model(src[1:, :5], tgt[1:])

  logits, changed, padded, alone = run(model)
  np.testing.assert_allclose(logits[:, :4], changed[:, :4], atol=1e-6)
  np.testing.assert_allclose(padded[1], alone[0], atol=1e-5)


@pytest.mark.parametrize("model", ["bert", "encoder_decoder"])
def test_padded_batches_keep_the_fast_attention_path(model, monkeypatch):
  calls = []
  blockwise = dispatch.attend_blocks  # (query, key, value, key_mask, ...)
  monkeypatch.setattr(dispatch, "attend_blocks", lambda *a, **k: calls.append(a[3]) or blockwise(*a, **k))
  lengths = jnp.array([[9], [6]])
  if model == "bert":
    dense = tiny_bert()
    fast = BertForPreTraining(dataclasses.replace(dense.bert.config, attention_implementation="auto"), rngs=nnx.Rngs(0))
    run = lambda m: m(tokens(0, 2, 9), attention_mask=jnp.arange(9)[None, :] < lengths)[0]  # noqa: E731
  else:
    dense = tiny_encdec()
    fast = EncoderDecoder(dataclasses.replace(dense.config, attention_implementation="auto"), rngs=nnx.Rngs(0))
    run = lambda m: m(tokens(0, 2, 9), tokens(1, 2, 4), src_mask=jnp.arange(9)[None, :] < lengths)  # noqa: E731
  both = nnx.jit(lambda fast, dense: (run(fast), run(dense)))(fast, dense)  # the calls recorded while traced
  np.testing.assert_allclose(*both, rtol=1e-5, atol=1e-5)
  padded = [mask for mask in calls if mask is not None]  # the decoder's causal self-attention has no padding
  assert len(padded) == 2  # both encoder layers took CPU's fast path with the padding (same seed: same weights)


def test_bert_padding_never_changes_real_tokens():
  model = tiny_bert()
  x = tokens(0, 2, 9)
  attention_mask = jnp.arange(9)[None, :] < jnp.array([[9], [6]])
  padded, alone = nnx.jit(  # one compile, not one per eager op
    lambda bert: (bert(x.at[1, 6:].set(5), attention_mask=attention_mask)[0], bert(x[1:, :6])[0])
  )(model.bert)
  np.testing.assert_allclose(padded[1, :6], alone[0], atol=1e-5)


# ---- KV-cache decoding equals the full forward pass -----------------------------------------


def cached_logits(model, sequence, prompt_length, **context):
  """Through the decoding protocol: prefill the first prompt_length - 1 tokens, then step one token
  at a time; the logits after every position from prompt_length - 1 on [B, L - prompt_length + 1, V]."""
  B, L = sequence.shape

  @nnx.jit
  def run(model, sequence, context):
    state = model.init_state(B, L, **context)
    if prompt_length > 1:
      state = model.prefill(state, sequence[:, : prompt_length - 1], jnp.ones((B, prompt_length - 1), jnp.bool_))

    def step(state, tokens):  # a scan: one step compiled, not one per position
      logits, state = model.step(state, tokens)
      return state, logits

    _, logits = jax.lax.scan(step, state, sequence[:, prompt_length - 1 :].T)  # [L - prompt_length + 1, B, V]
    return jnp.swapaxes(logits, 0, 1)

  return run(model, sequence, context)


@pytest.mark.parametrize("implementation", ["dense", "auto"])
@pytest.mark.parametrize("position", ["learned", "rope"])
def test_gpt_packed_sequences_equal_each_sequence_alone(position, implementation):
  config = dataclasses.replace(tiny_gpt(position).config, attention_implementation=implementation)
  model = GPT(config, rngs=nnx.Rngs(0))
  first, second = tokens(3, 1, 6), tokens(4, 1, 9)
  packed = jnp.concatenate([first, second], 1)  # [1, 15]: two sequences in one row
  segment_ids = jnp.array([[0] * 6 + [1] * 9])
  logits, alone_first, alone_second = nnx.jit(  # one compile, not one per eager op
    lambda model: (model(packed, segment_ids=segment_ids), model(first), model(second))
  )(model)
  np.testing.assert_allclose(logits[:, :6], alone_first, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits[:, 6:], alone_second, rtol=1e-5, atol=1e-5)  # positions restart at 0


def test_bert_packed_sequences_equal_each_sequence_alone():
  model = tiny_bert(next_sentence=False)
  first, second = tokens(3, 1, 6), tokens(4, 1, 9)
  packed = jnp.concatenate([first, second], 1)  # [1, 15]: two sequences in one row
  types = jnp.array([[0] * 3 + [1] * 3 + [0] * 4 + [1] * 5])  # each sequence has its own two segments
  segment_ids = jnp.array([[0] * 6 + [1] * 9])

  @nnx.jit  # one compile, not one per eager op
  def run(model):
    packed_logits = model(packed, token_types=types, segment_ids=segment_ids)[0]
    return packed_logits, model(first, token_types=types[:, :6])[0], model(second, token_types=types[:, 6:])[0]

  logits, alone_first, alone_second = run(model)
  np.testing.assert_allclose(logits[:, :6], alone_first, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits[:, 6:], alone_second, rtol=1e-5, atol=1e-5)  # positions restart at 0


@pytest.mark.parametrize(
  "position, implementation",
  [("sinusoidal", "dense"), ("learned", "auto"), ("relative", "dense")],
)
def test_encdec_packed_pairs_equal_each_pair_alone(position, implementation):
  config = dataclasses.replace(tiny_encdec(position).config, attention_implementation=implementation)
  model = EncoderDecoder(config, rngs=nnx.Rngs(0))
  pairs = [(tokens(3, 1, 5), tokens(4, 1, 4)), (tokens(5, 1, 7), tokens(6, 1, 6))]
  src = jnp.concatenate([s for s, _ in pairs] + [tokens(7, 1, 2)], 1)  # [1, 14]: two sources, 2 padding tokens
  tgt = jnp.concatenate([t for _, t in pairs], 1)  # [1, 10]: their targets
  src_ids = jnp.array([[0] * 5 + [1] * 7 + [2] * 2])
  tgt_ids = jnp.array([[0] * 4 + [1] * 6])
  src_mask = jnp.arange(14)[None, :] < 12

  @nnx.jit  # one compile, not one per eager op
  def run(model):
    packed = model(src, tgt, src_mask=src_mask, src_segment_ids=src_ids, tgt_segment_ids=tgt_ids)
    return packed, model(*pairs[0]), model(*pairs[1])

  packed, first, second = run(model)
  np.testing.assert_allclose(packed[:, :4], first, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(packed[:, 4:], second, rtol=1e-5, atol=1e-5)  # positions restart at 0


def test_encdec_packed_pairs_refuse_mismatched_segment_ids():
  model = tiny_encdec()
  src, tgt = tokens(0, 1, 6), tokens(1, 1, 4)
  src_ids, tgt_ids = jnp.array([[0, 0, 0, 1, 1, 1]]), jnp.array([[0, 0, 1, 1]])
  with pytest.raises(ValueError, match="need both src_segment_ids"):
    model(src, tgt, src_segment_ids=src_ids)
  with pytest.raises(ValueError, match=r"tgt_segment_ids \[2\] of row 0 do not occur in that row's src_segment_ids"):
    model(src, tgt, src_segment_ids=src_ids, tgt_segment_ids=jnp.array([[0, 0, 2, 2]]))
  with pytest.raises(ValueError, match=r"src_segment_ids must be an integer array \[B, T\] = \[1, 6\]"):
    model(src, tgt, src_segment_ids=src_ids[:, :5], tgt_segment_ids=tgt_ids)
  with pytest.raises(ValueError, match="tgt_segment_ids must be >= 0"):
    model(src, tgt, src_segment_ids=src_ids, tgt_segment_ids=-tgt_ids - 1)


@pytest.mark.parametrize("next_sentence", [True, False])
def test_bert_declares_its_pooler_zero_gradient_exactly_when_nothing_reads_it(next_sentence):
  model = tiny_bert(next_sentence=next_sentence)

  def loss(model):
    mlm, nsp = model(tokens(0, 2, 8))
    return mlm.sum() + (0.0 if nsp is None else nsp.sum())

  grads = nnx.state(nnx.jit(nnx.grad(loss))(model), nnx.Param)  # jitted: one compile, not one per eager op
  pooler = {"bert/pooler/kernel", "bert/pooler/bias"}
  norms = dict(zip(parameter_names(grads), (float(np.linalg.norm(g)) for g in jax.tree.leaves(grads)), strict=True))
  assert all((norms[name] == 0.0) != next_sentence for name in pooler)
  assert (pooler <= structurally_zero(model)) != next_sentence


def test_gpt_blockwise_attention_equals_dense():
  dense = GPT(dataclasses.replace(tiny_gpt().config, attention_implementation="dense"), rngs=nnx.Rngs(0))
  blockwise = GPT(dataclasses.replace(dense.config, attention_implementation="blockwise"), rngs=nnx.Rngs(0))
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, (2, 16)), jnp.int32)
  np.testing.assert_allclose(*nnx.jit(lambda a, b: (a(tokens), b(tokens)))(blockwise, dense), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prompt_length", [1, 4])
@pytest.mark.parametrize("position", ["learned", "rope"])
def test_gpt_cached_decoding_equals_full_forward(position, prompt_length):
  model = tiny_gpt(position)
  sequence = tokens(2, 2, 9)
  full = nnx.jit(lambda model: model(sequence))(model)[:, prompt_length - 1 :]  # one compile, not one per eager op
  np.testing.assert_allclose(cached_logits(model, sequence, prompt_length), full, atol=1e-5)


@pytest.mark.parametrize("prompt_length", [1, 3])
@pytest.mark.parametrize("position,norm", [("sinusoidal", "post"), ("relative", "pre")])
def test_encdec_cached_decoding_equals_full_forward(position, norm, prompt_length):
  model = tiny_encdec(position, norm)
  src, tgt = tokens(3, 2, 7), tokens(4, 2, 8)
  src_mask = jnp.arange(7)[None, :] < jnp.array([[7], [4]])
  got = cached_logits(model, tgt, prompt_length, src=src, src_mask=src_mask)
  full = nnx.jit(lambda model: model(src, tgt, src_mask=src_mask))(model)  # one compile, not one per eager op
  np.testing.assert_allclose(got, full[:, prompt_length - 1 :], atol=1e-5)


# ---- BERT masking -----------------------------------------------------------------------------


def test_mask_tokens_80_10_10():
  x = tokens(8, 256, 512)  # 131k positions: one standard error of the 15% rate is 0.001
  maskable = jnp.ones(x.shape, bool).at[:, 0].set(False)
  inputs, selected = mask_tokens(jax.random.key(0), x, maskable=maskable, mask_id=V, vocab_size=V)
  selected, inputs, x = np.asarray(selected), np.asarray(inputs), np.asarray(x)
  assert not selected[:, 0].any()
  assert (inputs[~selected] == x[~selected]).all()
  assert selected.mean() == pytest.approx(0.15 * 511 / 512, abs=0.005)
  chosen_inputs, chosen_originals = inputs[selected], x[selected]
  masked = (chosen_inputs == V).mean()
  unchanged = (chosen_inputs == chosen_originals).mean()
  assert masked == pytest.approx(0.8, abs=0.01)
  assert unchanged == pytest.approx(0.1 + 0.1 / V, abs=0.01)  # 10% kept + random draws that hit the original
  assert 1 - masked - unchanged == pytest.approx(0.1 * (1 - 1 / V), abs=0.01)


# ---- ViT ----------------------------------------------------------------------------------------


def test_patchify_row_major_patches():
  images = jnp.arange(2 * 4 * 6 * 1, dtype=jnp.float32).reshape(2, 4, 6, 1)
  patches = patchify(images, 2)  # [2, 6, 4]
  assert patches.shape == (2, 6, 4)
  np.testing.assert_array_equal(patches[0, 1], images[0, 0:2, 2:4, 0].reshape(-1))
  np.testing.assert_array_equal(patches[1, 3], images[1, 2:4, 0:2, 0].reshape(-1))


# ---- each model trains ---------------------------------------------------------------------------


def losses_while_training(model, loss_fn, steps=25, learning_rate=1e-2):
  """Adam through the library's train step; loss_fn(model) -> scalar."""
  graphdef, params, rest = split_model(model)
  tx = optimizer("adam", learning_rate)
  step = make_train_step(graphdef, rest, lambda m, batch, rng: (loss_fn(m), {}), tx)
  state, losses = init_state(params, tx, 0), []
  for _ in range(steps):
    state, metrics = step(state, {})
    losses.append(float(metrics["loss"]))
  return losses


def cross_entropy(logits, targets):
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


@pytest.mark.parametrize(
  "name",
  ["gpt", "encoder_decoder_2017", "t5_like", "bert", "vit"],
)
def test_each_model_trains(name):
  x = tokens(9, 4, 10)
  steps = 25
  if name == "gpt":
    model, loss = tiny_gpt(), lambda m: cross_entropy(m(x[:, :-1]), x[:, 1:])
  elif name in ("encoder_decoder_2017", "t5_like"):
    config = EncoderDecoderConfig(vocab_size=V, max_length=16, num_encoder_layers=2, num_decoder_layers=2, **TINY)
    if name == "t5_like":
      config = t5_like(**{**config.__dict__, "position": "relative"})
    model = EncoderDecoder(config, rngs=nnx.Rngs(0))
    tgt_in = jnp.concatenate([jnp.zeros((4, 1), jnp.int32), x[:, :-1]], 1)  # copy task, shifted right
    loss = lambda m: cross_entropy(m(x, tgt_in), x)  # noqa: E731
  elif name == "bert":
    model = tiny_bert()
    inputs, selected = mask_tokens(
      jax.random.key(0), x, maskable=jnp.ones(x.shape, bool), mask_id=0, vocab_size=V, rate=0.3
    )
    weights = selected.astype(jnp.float32)
    steps = 60  # post-LN with two heads converges more slowly

    def loss(m):
      logits, nsp = m(inputs)
      mlm = optax.softmax_cross_entropy_with_integer_labels(logits, x)
      return jnp.sum(mlm * weights) / jnp.sum(weights) + cross_entropy(nsp, jnp.array([0, 1, 0, 1]))

  else:
    model = tiny_vit()
    images = jnp.asarray(np.random.default_rng(0).standard_normal((4, 8, 8, 3)), jnp.float32)
    loss = lambda m: cross_entropy(m(images), jnp.array([0, 1, 2, 3]))  # noqa: E731
  losses = losses_while_training(model, loss, steps)
  assert losses[-1] < 0.5 * losses[0], losses


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "config,match",
  [
    (GPTConfig(dropout_rate=1.0), r"dropout_rate must be in \[0, 1\)"),
    (GPTConfig(attention_implementation="flash"), "attention_implementation must be one of"),
    (BertConfig(layer_norm_epsilon=0.0), "layer_norm_epsilon must be a finite number > 0"),
    (BertConfig(type_vocab_size=-1), "type_vocab_size must be"),
    (EncoderDecoderConfig(norm="sandwich"), "norm must be one of"),
    (EncoderDecoderConfig(num_decoder_layers=0), "num_decoder_layers must be a positive integer"),
    (ViTConfig(num_classes=0), "num_classes must be"),
  ],
)
def test_every_config_checks_its_fields_by_name(config, match):
  with pytest.raises(ValueError, match=match):
    config.check()


def test_model_errors():
  gpt = tiny_gpt()
  with pytest.raises(ValueError, match="sequence length 17 exceeds max_length 16"):
    gpt(tokens(0, 1, 17))
  with pytest.raises(ValueError, match=r"tokens ids must lie in \[0, 37\)"):
    gpt(jnp.array([[1, 37]], jnp.int32))
  with pytest.raises(ValueError, match=r"tokens must be an integer array \[B, T\]"):
    gpt(jnp.zeros((1, 3)))
  with pytest.raises(ValueError, match="decoding needs 17 positions"):
    gpt.init_state(1, 17)
  with pytest.raises(ValueError, match="image_size 30 must be divisible by patch_size 4"):
    ViT(ViTConfig(image_size=30, patch_size=4, num_layers=1, **TINY), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"images must have shape \[B, 8, 8, 3\]"):
    tiny_vit()(jnp.zeros((1, 8, 8, 1)))
  with pytest.raises(ValueError, match="dim 16 must be divisible by num_heads 3"):
    GPT(GPTConfig(vocab_size=V, max_length=8, num_layers=1, dim=16, num_heads=3, ff_dim=8), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="position must be one of"):
    tiny_encdec("rope")
  with pytest.raises(ValueError, match="src_mask must be a bool array"):
    tiny_encdec()(tokens(0, 2, 5), tokens(1, 2, 3), src_mask=jnp.ones((2, 4), bool))
  with pytest.raises(ValueError, match="tgt batch 1 must equal the source batch 2"):
    tiny_encdec()(tokens(0, 2, 5), tokens(1, 1, 3))


def test_rms_norm_and_gated_feed_forward_follow_their_equations():
  from seqjax.transformer.blocks import FeedForward
  from seqjax.transformer.norms import make_norm

  x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)  # [B, T, D]
  norm = make_norm("rms", 8, epsilon=1e-6, use_bias=True, rngs=nnx.Rngs(0))
  norm.scale.set_value(jnp.linspace(0.5, 2.0, 8))
  want = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6) * np.linspace(0.5, 2.0, 8)
  np.testing.assert_allclose(norm(jnp.asarray(x)), want, rtol=1e-5, atol=1e-6)
  assert not hasattr(norm, "bias") or norm.bias is None  # RMSNorm has no bias, whatever use_bias says
  ff = FeedForward(8, 16, activation="gelu_tanh", dropout_rate=0.0, use_bias=False, gated=True, rngs=nnx.Rngs(1))
  w1, wg, w2 = (np.asarray(layer.kernel[...]) for layer in (ff.inner, ff.gate, ff.outer))
  h = x @ w1
  gelu = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
  np.testing.assert_allclose(ff(jnp.asarray(x)), (gelu * (x @ wg)) @ w2, rtol=1e-5, atol=1e-5)


def test_bad_norm_type_and_head_dim_are_refused():
  with pytest.raises(ValueError, match="norm_type must be one of"):
    EncoderDecoder(t5_like(vocab_size=8, dim=8, num_heads=2, ff_dim=8, norm_type="batch"), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="head_dim must be a positive integer, got 0"):
    EncoderDecoder(t5_like(vocab_size=8, dim=8, num_heads=2, ff_dim=8, head_dim=0), rngs=nnx.Rngs(0))


def test_a_post_ln_stack_with_a_final_norm_is_the_stack_then_that_norm():
  from seqjax.transformer import TransformerStack

  options = {"dim": 8, "num_heads": 2, "ff_dim": 16, "norm": "post"}
  plain = TransformerStack(2, rngs=nnx.Rngs(0), **options)
  normed = TransformerStack(2, rngs=nnx.Rngs(0), final_norm=True, **options)  # torch.nn.Transformer's layout
  assert plain.final_norm is None
  normed.final_norm.scale.set_value(jnp.linspace(0.5, 1.5, 8))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 8)), jnp.float32)  # [B, T, D]
  np.testing.assert_allclose(normed(x), normed.final_norm(plain(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("position", ["sinusoidal", "relative"])
def test_encdec_attention_weights_are_each_layers_softmax_over_real_keys(position):
  model = tiny_encdec(position)
  src, tgt = tokens(0, 2, 8), tokens(1, 2, 6)
  src_mask = jnp.arange(8)[None, :] < jnp.array([[8], [5]])

  @nnx.jit  # one compile, not one per eager op
  def run(model):
    # the first decoder layer's cross weights are its cross-attention's softmax on that layer's own input
    first = model.decoder.blocks[0]
    x = model.source_embed(tgt)  # tied embeddings: the target shares the source's (post-LN: no input norm)
    positions = jnp.arange(6)
    bias = None if model.decoder_bias is None else model.decoder_bias(positions, positions)
    after_self = first._add(x, first.self_attention(x, bias=bias, is_causal=True), first.self_attention_norm, None)
    memory = model.encode(src, src_mask=src_mask)
    _, expected = first.cross_attention(after_self, memory, key_mask=src_mask, return_weights=True)
    weights = model.attention_weights(src, tgt, src_mask=src_mask)
    return weights, expected, model(src, tgt, src_mask=src_mask), model.decode(tgt, memory, src_mask=src_mask)

  weights, expected, logits, decoded = run(model)
  chex.assert_shape(weights["encoder"], (2, 2, 2, 8, 8))  # [L, B, N, S, S]
  chex.assert_shape(weights["decoder"], (2, 2, 2, 6, 6))
  chex.assert_shape(weights["cross"], (2, 2, 2, 6, 8))
  for name in ("encoder", "decoder", "cross"):
    np.testing.assert_allclose(weights[name].sum(-1), 1.0, atol=1e-5)
  assert float(jnp.abs(weights["cross"][:, 1, :, :, 5:]).max()) == 0.0  # the padded source gets nothing
  assert float(jnp.abs(weights["encoder"][:, 1, :, :, 5:]).max()) == 0.0
  assert float(jnp.abs(jnp.triu(weights["decoder"], 1)).max()) == 0.0  # causal
  np.testing.assert_allclose(weights["cross"][0], expected, atol=1e-6)
  np.testing.assert_allclose(logits, decoded, atol=1e-6)


def test_cross_attention_reads_memory_or_each_blocks_projection_of_it_by_name():
  from seqjax.transformer import TransformerStack

  stack = TransformerStack(2, dim=8, num_heads=2, ff_dim=16, cross_attention=True, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(0)
  x, memory = (jnp.asarray(rng.standard_normal(shape), jnp.float32) for shape in ((2, 3, 8), (2, 5, 8)))
  projected = stack.project_memory(memory)
  np.testing.assert_allclose(stack.run(x, block_memories=projected)[0], stack(x, memory=memory), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r"give memory .* or block_memories .*, not both"):
    stack.run(x, memory=memory, block_memories=projected)
  with pytest.raises(ValueError, match=r"block_memories must hold one per block \(2\), got 1"):
    stack.run(x, block_memories=projected[:1])


# ---- masks checked once, where a model takes them --------------------------------------------


def test_each_model_checks_its_masks_once_whatever_its_depth(monkeypatch):
  """Before, every layer's attention checked the padding mask again (each a host read outside jit)."""
  calls = []
  checked = Visibility.checked.__func__
  monkeypatch.setattr(Visibility, "checked", classmethod(lambda cls, *a, **k: calls.append(a) or checked(cls, *a, **k)))
  lengths = jnp.array([[9], [6]])
  mask = jnp.arange(9)[None, :] < lengths
  bert = BertModel(BertConfig(vocab_size=V, max_length=16, num_layers=3, **TINY), rngs=nnx.Rngs(0))
  ids = jnp.zeros((2, 9), jnp.int32)
  nnx.eval_shape(lambda bert: bert(tokens(0, 2, 9), attention_mask=mask, segment_ids=ids), bert)
  assert calls == [(2, 9, 9)]  # one call traced (shapes alone: nothing compiled)
  calls.clear()
  config = EncoderDecoderConfig(vocab_size=V, max_length=16, num_encoder_layers=3, num_decoder_layers=3, **TINY)
  model = EncoderDecoder(config, rngs=nnx.Rngs(0))
  nnx.eval_shape(lambda model: model(tokens(0, 2, 9), tokens(1, 2, 4), src_mask=mask), model)
  assert calls == [(2, 9, 9), (2, 4, 4), (2, 4, 9)]  # the encoder's, the decoder's, the cross-attention's


def test_a_block_takes_key_mask_the_padding_of_its_input():
  block = TransformerBlock(16, 2, 32, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 16)), jnp.float32)
  key_mask = jnp.arange(6)[None, :] < jnp.array([[6], [4]])
  padded, _ = block(x.at[1, 4:].set(7.0), key_mask=key_mask)
  np.testing.assert_allclose(padded[1, :4], block(x[1:, :4])[0][0], rtol=1e-5, atol=1e-6)
  with pytest.raises(TypeError, match="unexpected keyword argument 'mask'"):
    block(x, mask=key_mask)
  stack = TransformerStack(2, dim=16, num_heads=2, ff_dim=32, causal=True, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="the visibility given has causal=False, but this stack has causal=True"):
    stack(x, visibility=Visibility.checked(2, 6, 6))


# ---- one TransformerBlockConfig in every model config -----------------------------------------

OLD_FLAT_GPT = {  # dataclasses.asdict(GPTConfig(...)) as written before the block was embedded
  "vocab_size": V,
  "max_length": 16,
  "dim": 16,
  "num_heads": 2,
  "num_layers": 2,
  "ff_dim": 32,
  "dropout_rate": 0.2,
  "position": "rope",
  "tie_embeddings": False,
  "activation": "gelu_tanh",
  "layer_norm_epsilon": 1e-5,
  "attention_implementation": "dense",
}


def test_old_flat_gpt_config_dicts_load_as_the_same_model():
  config = GPTConfig(**OLD_FLAT_GPT)
  block = TransformerBlockConfig(
    dim=16,
    num_heads=2,
    ff_dim=32,
    norm="pre",  # GPT's, as before
    activation="gelu_tanh",
    dropout_rate=0.2,
    attention_dropout_rate=0.2,  # one dropout_rate was both
    layer_norm_epsilon=1e-5,
  )
  assert config == GPTConfig(
    vocab_size=V, max_length=16, num_layers=2, position="rope", tie_embeddings=False, block=block
  )
  assert GPTConfig(**dataclasses.asdict(config)) == config  # a new config's dict: block as a dict
  assert config.dim == 16 and config.dropout_rate == 0.2  # the block's fields read through the model config
  assert dataclasses.replace(config, dropout_rate=0.0).block.attention_dropout_rate == 0.0
  with pytest.raises(TypeError, match="unexpected keyword argument 'width'"):
    GPTConfig(**OLD_FLAT_GPT, width=3)


def test_every_model_builds_its_stack_from_its_config_block():
  models = [tiny_gpt(), tiny_encdec(), tiny_bert(), tiny_vit()]
  stacks = [models[0].stack, models[1].encoder, models[1].decoder, models[2].bert.encoder, models[3].encoder]
  blocks = [models[0].config.block, *[models[1].config.block] * 2, models[2].bert.config.block, models[3].config.block]
  for stack, block in zip(stacks, blocks, strict=True):
    first = stack.blocks[0]
    assert first.norm == block.norm and first.feed_forward.activation == block.activation
    assert first.self_attention.dropout_rate == block.attention_dropout_rate
  assert [block.norm for block in blocks] == ["pre", "post", "post", "post", "pre"]
  with pytest.raises(ValueError, match=r"give block \(a TransformerBlockConfig\) or its fields \['dim'\], not both"):
    TransformerStack(1, block=blocks[0], dim=8, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("position", ["sinusoidal", "learned", "relative"])
def test_scale_embeddings_is_explicit_and_defaults_to_what_the_position_did(position):
  config = EncoderDecoderConfig(vocab_size=V, max_length=16, position=position, **TINY)
  assert config.scale_embeddings == (position == "sinusoidal")  # before: tied to sinusoidal positions
  assert t5_like(vocab_size=V, **TINY).scale_embeddings is False
  scaled = dataclasses.replace(config, scale_embeddings=True)
  embed = EncoderDecoder(scaled, rngs=nnx.Rngs(0)).source_embed
  x = tokens(0, 2, 5)
  positions = 0.0 if embed.positions is None else embed.positions(jnp.arange(5))[None]
  np.testing.assert_allclose(embed(x), embed.tokens(x) * 4.0 + positions, rtol=1e-6)  # sqrt(dim 16)


def test_relative_positions_need_dense_self_attention():
  """Before, "auto" with T5's bias silently ran dense: now it is refused by the config."""
  with pytest.raises(ValueError, match=r"position='relative' adds a bias .*='auto' runs 'blockwise' here: use 'dense'"):
    t5_like(vocab_size=V, attention_implementation="auto", **TINY).check()
  with pytest.raises(ValueError, match="position='relative' adds a bias"):
    TransformerStack(1, position="relative", attention_implementation="blockwise", **TINY, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
  "model, message",
  [
    (lambda: GPT(GPTConfig(vocab_size=V, max_length=8, num_layers=1, norm="post", **TINY), rngs=nnx.Rngs(0)),
     "GPT-2 computes block norm='pre'; this model's block has 'post'"),
    (lambda: ViT(ViTConfig(image_size=8, patch_size=4, num_layers=1, num_classes=2, gated_feed_forward=True, **TINY),
                 rngs=nnx.Rngs(0)),
     "ViT computes block gated_feed_forward=False; this model's block has True"),
  ],
)  # fmt: skip
def test_a_block_no_hugging_face_layout_holds_is_refused_when_saved(model, message, tmp_path):
  from seqjax.interop import save_pretrained

  with pytest.raises(ValueError, match=message):
    save_pretrained(model(), tmp_path / "hf")
  assert not (tmp_path / "hf").exists()  # refused before anything is written
