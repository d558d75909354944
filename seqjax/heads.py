"""Models made of an input layer, one sequence mixer (`seqjax.mixer`) and a readout: the heads
every architecture comparison shares, so any mixer, a researcher's own too, runs in each.

    SequenceLM(vocab_size, width, builder)            tokens [B, T] -> next-token logits [B, T, V]
    SequenceEncoder(width, builder, ...)              inputs [B, T, ...] -> the mixer's [B, T, D_out]
    SequencePredictor(outputs, width, builder, ...)   inputs [B, T, ...] -> [B, outputs]: one class
                                                      score vector or regression per sequence
    TokenTagger(outputs, width, builder, ...)         inputs [B, T, ...] -> [B, T, outputs]

Inputs are floats [B, T, F] (in_features=F: a linear projection to width, or none when the
builder reads in_features itself) or token ids [B, T] (vocab_size=V: an embedding). The mixer is
`model.stack`. The parts draw their initial values from one `rngs`, so a model is one function of
its seed, in a fixed order: a SequenceLM makes its mixer, then its embedding and readout; the
encoder, predictor and tagger their input layer, then the mixer and the readout (the orders the
experiments' models were first written in: their committed numbers depend on them).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.linear import default_embed_init
from flax.typing import Initializer

from seqjax import _validate
from seqjax.decoding import uncached
from seqjax.decoding.protocol import prefill_by_steps
from seqjax.mixer import Builder, build_mixer, declares

POOLS = ("last", "mean", "ends")


class SequenceLMState(NamedTuple):
  """Decoding state of a SequenceLM whose mixer steps: the mixer's own (a StackedRNN's: each layer's carry)."""

  mixer: Any


class SequenceLM(nnx.Module):
  """lm(tokens [B, T], *, mask=None, dropout_key=None) -> next-token logits [B, T, V]: an
  embedding of `width`, the causal mixer `builder` makes (causal=True; `options` go to it), a
  linear readout. The embedding draws from `embedding_init` (default flax's N(0, 1/width); the
  recurrent family's `RNNLanguageModel` draws N(0, 1)).

  Implements the decoding protocol (`seqjax.decoding`): by the mixer's own state where it steps
  (`init_state(batch)`, `step(state, x [B, D]) -> (y [B, D_out], state)`: a causal StackedRNN,
  one cell step per token), else by rerunning the model on the token buffer (the method of
  `seqjax.decoding.Uncached`: exact for a causal model, one full pass per token).
  """

  def __init__(
    self,
    vocab_size: int,
    width: int,
    builder: Builder,
    *,
    rngs: nnx.Rngs,
    context=None,
    embedding_init: Initializer = default_embed_init,
    **options,
  ):
    _validate.positive_int("vocab_size", vocab_size)
    _validate.positive_int("width", width)
    self.stack = build_mixer(builder, width, causal=True, rngs=rngs, in_features=width, context=context, **options)
    self.embed = nnx.Embed(vocab_size, width, embedding_init=embedding_init, rngs=rngs)
    self.readout = nnx.Linear(self.stack.out_features, vocab_size, rngs=rngs)
    self.vocab_size = vocab_size
    self.steps = all(callable(getattr(self.stack, name, None)) for name in ("init_state", "step"))

  def __call__(self, tokens: jax.Array, *, mask=None, dropout_key=None) -> jax.Array:
    _validate.token_ids("tokens", tokens, self.vocab_size)
    return self.readout(self.stack(self.embed(tokens), mask=mask, dropout_key=dropout_key))  # [B, T, V]

  # ---- the decoding protocol (seqjax.decoding.protocol) ----------------------------------------

  @property
  def decode_vocab(self) -> int:
    return self.vocab_size

  def check_decode_inputs(self, batch: int) -> None:
    """A language model takes no context: only the prompt, checked by the decoder."""

  def init_state(self, batch: int, max_length: int):
    """The mixer's initial state (max_length unused: it does not grow), or an empty token buffer."""
    return SequenceLMState(self.stack.init_state(batch)) if self.steps else uncached.empty_buffer(batch, max_length)

  def prefill(self, state, tokens: jax.Array, mask: jax.Array):
    return prefill_by_steps(self, state, tokens, mask) if self.steps else uncached.write_prompt(state, tokens, mask)

  def step(self, state, tokens: jax.Array) -> tuple[jax.Array, Any]:
    """tokens [B] -> (next-token logits [B, V], state)."""
    if not self.steps:
      return uncached.rerun_step(self, state, tokens)
    y, mixer_state = self.stack.step(state.mixer, self.embed(tokens))  # [B, D_out]
    return self.readout(y), SequenceLMState(mixer_state)


class SequenceEncoder(nnx.Module):
  """encoder(inputs, *, mask=None, dropout_key=None) -> [B, T, D_out]: an input layer and the
  mixer `builder` makes (asked for `causal`; `options` go to it), the outputs at every position."""

  def __init__(
    self,
    width: int,
    builder: Builder,
    *,
    causal: bool,
    in_features: int | None = None,
    vocab_size: int | None = None,
    context: int | None = None,
    rngs: nnx.Rngs,
    **options,
  ):
    _validate.positive_int("width", width)
    if (in_features is None) == (vocab_size is None):
      raise ValueError(
        f"give exactly one of in_features (float inputs [B, T, F]) and vocab_size (token ids [B, T]), "
        f"got in_features={in_features!r}, vocab_size={vocab_size!r}"
      )
    if vocab_size is not None:
      _validate.positive_int("vocab_size", vocab_size)
      self.embed, mixer_in = nnx.Embed(vocab_size, width, rngs=rngs), width
    else:
      _validate.positive_int("in_features", in_features)
      reads = declares(builder, "in_features")  # then its first layer projects the inputs itself
      self.embed = None if reads else nnx.Linear(in_features, width, rngs=rngs)
      mixer_in = in_features if reads else width
    self.stack = build_mixer(builder, width, causal=causal, rngs=rngs, in_features=mixer_in, context=context, **options)
    self.in_features, self.vocab_size = in_features, vocab_size

  def __call__(self, inputs: jax.Array, *, mask=None, dropout_key=None) -> jax.Array:
    if self.vocab_size is not None:
      _validate.token_ids("inputs", inputs, self.vocab_size)
    else:
      _validate.float_array("inputs", inputs, "[B, T, F]", 3)
      _validate.axis_size("inputs", inputs, 2, self.in_features, f"[B, T, F={self.in_features}]")
    if mask is not None:
      _validate.bool_mask("mask", mask, inputs.shape[:2], axes="[B, T]")
    x = inputs if self.embed is None else self.embed(inputs)
    return self.stack(x, mask=mask, dropout_key=dropout_key)  # [B, T, D_out]


class SequencePredictor(SequenceEncoder):
  """model(inputs, *, mask=None, dropout_key=None) -> [B, outputs]: one vector per sequence (class
  logits, or regression values), a linear readout of the mixer's outputs pooled over time:

      pool="last"   the last real step (each row's last True in mask; T - 1 without a mask)
      pool="mean"   the mean over the real steps
      pool="ends"   the first half of the features at the last real step, the second at the
                    first real step: a bidirectional RNN's two final states (merge="concat")

  encoder_options: SequenceEncoder's (causal, in_features or vocab_size, context) and the
  builder's options.
  """

  def __init__(
    self, outputs: int, width: int, builder: Builder, *, pool: str = "last", rngs: nnx.Rngs, **encoder_options
  ):
    _validate.positive_int("outputs", outputs)
    _validate.choice("pool", pool, POOLS)
    super().__init__(width, builder, rngs=rngs, **encoder_options)
    if pool == "ends" and self.stack.out_features % 2:
      raise ValueError(f"pool='ends' reads two halves of the features, got out_features={self.stack.out_features}")
    self.readout = nnx.Linear(self.stack.out_features, outputs, rngs=rngs)
    self.pool = pool

  def __call__(self, inputs: jax.Array, *, mask=None, dropout_key=None) -> jax.Array:
    h = super().__call__(inputs, mask=mask, dropout_key=dropout_key)  # [B, T, D]
    return self.readout(pooled(h, mask, self.pool))  # [B, outputs]


class TokenTagger(SequenceEncoder):
  """model(inputs, *, mask=None, dropout_key=None) -> [B, T, outputs]: a linear readout at every
  position of the mixer's outputs (tags, or per-position predictions). encoder_options:
  SequenceEncoder's (causal, in_features or vocab_size, context) and the builder's options."""

  def __init__(self, outputs: int, width: int, builder: Builder, *, rngs: nnx.Rngs, **encoder_options):
    _validate.positive_int("outputs", outputs)
    super().__init__(width, builder, rngs=rngs, **encoder_options)
    self.readout = nnx.Linear(self.stack.out_features, outputs, rngs=rngs)

  def __call__(self, inputs: jax.Array, *, mask=None, dropout_key=None) -> jax.Array:
    return self.readout(super().__call__(inputs, mask=mask, dropout_key=dropout_key))  # [B, T, outputs]


def pooled(h: jax.Array, mask: jax.Array | None, pool: str) -> jax.Array:
  """h [B, T, D] -> [B, D] by `pool` (SequencePredictor) over the real steps of mask [B, T]."""
  if pool == "mean":
    if mask is None:
      return h.mean(axis=1)
    weights = mask[:, :, None].astype(h.dtype)  # [B, T, 1]
    return (h * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1.0)
  last = h[:, -1] if mask is None else _at(h, h.shape[1] - 1 - jnp.argmax(mask[:, ::-1], axis=1))
  if pool == "last":
    return last
  first = h[:, 0] if mask is None else _at(h, jnp.argmax(mask, axis=1))
  half = h.shape[-1] // 2
  return jnp.concatenate([last[:, :half], first[:, half:]], axis=-1)


def _at(h: jax.Array, index: jax.Array) -> jax.Array:
  """h [B, T, D] at one step per row, index [B] -> [B, D]."""
  return jnp.take_along_axis(h, index[:, None, None], axis=1)[:, 0]
