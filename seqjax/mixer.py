"""The one interface of a sequence layer (a "mixer"), and how a mixer is built.

    mixer(x [B, T, D], *, mask [B, T] bool | None = None, dropout_key=None) -> [B, T, D_out]
    mixer.causal        bool: position t reads positions <= t only
    mixer.out_features  int: D_out (D, or 2 D for a bidirectional RNN that concatenates)

mask: False on padding, which never changes an output at a real position (each mixer documents
where its padding may lie: an RNN's is each row's end, a ScanBlockStack's anywhere).
dropout_key: dropout on (training) when given; a mixer without dropout accepts and ignores it.
`StackedRNN` (any cell), `ScanBlockStack`, `TransformerStack` and `DilatedConvStack` are mixers.

A builder makes one: builder(width, *, causal, rngs, **options) -> a mixer reading [B, T, width].
causal=True asks for a causal mixer (a language model's); causal=False allows one that reads the
whole sequence (a Transformer then attends both ways; a builder of a causal kind, an LSTM, stays
causal). A builder may also declare

    in_features   it then reads inputs of that width itself (its first layer projects them, as
                  an RNN's input kernel does) and a head adds no input projection before it
    context       the longest sequence it will be given (a dilated CNN sizes its receptive field by it)

and receives them only when it declares them.
"""

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate

Builder = Callable[..., nnx.Module]


def declares(builder: Builder, name: str) -> bool:
  """Whether `builder` takes the keyword `name` (in_features, context)."""
  return name in inspect.signature(builder).parameters


def build_mixer(
  builder: Builder,
  width: int,
  *,
  causal: bool,
  rngs: nnx.Rngs,
  in_features: int | None = None,
  context: int | None = None,
  **options,
) -> nnx.Module:
  """builder(width, causal=causal, rngs=rngs, **options), with in_features and context where the
  builder declares them; the result checked to be a mixer, causal when causal=True."""
  extra = {
    name: value for name, value in (("in_features", in_features), ("context", context)) if declares(builder, name)
  }
  mixer = builder(width, causal=causal, rngs=rngs, **extra, **options)
  return check_mixer(mixer, builder, causal=causal)


def check_mixer(mixer, builder: Builder, *, causal: bool) -> nnx.Module:
  """A ValueError naming the builder and what its result lacks, unless it is a mixer."""
  source = f"{getattr(builder, '__module__', '?')}:{getattr(builder, '__qualname__', builder)}"
  problems = []
  if not callable(mixer):
    problems.append(f"is not callable (got {type(mixer).__name__})")
  if not isinstance(getattr(mixer, "causal", None), bool):
    problems.append("lacks causal (True or False)")
  out = getattr(mixer, "out_features", None)
  if not (isinstance(out, int) and not isinstance(out, bool) and out > 0):
    problems.append(f"lacks out_features (a positive int, got {out!r})")
  if problems:
    raise ValueError(f"builder {source} must return a sequence mixer (seqjax.mixer); its result " + ", ".join(problems))
  if causal and not mixer.causal:
    raise ValueError(f"builder {source} was asked for a causal mixer (causal=True) and returned one that is not")
  return mixer


def checked_padding(x: jax.Array, mask: jax.Array | None, in_features: int, feature_axis: str = "D"):
  """A mixer's inputs checked, x [B, T, D=in_features] floats (the last axis named `feature_axis`
  in errors) and mask [B, T] bool or None; returns mask[:, :, None] [B, T, 1] (None without a
  mask) for `zero_padding`."""
  _validate.float_array("x", x, f"[B, T, {feature_axis}]", 3)
  _validate.axis_size("x", x, 2, in_features, f"[B, T, {feature_axis}={in_features}]")
  if mask is None:
    return None
  _validate.bool_mask("mask", mask, x.shape[:2], axes="[B, T]")
  return mask[:, :, None]  # [B, T, 1]


def zero_padding(h: jax.Array, keep: jax.Array | None) -> jax.Array:
  """h [B, T, D] with zeros at the padded steps (keep [B, T, 1] False); h itself when keep is None."""
  return h if keep is None else jnp.where(keep, h, jnp.zeros((), h.dtype))
