"""A registry of named architectures, so that every comparison builds its models one way and a
researcher's own model runs through any experiment without an edit to its script.

    zoo.register(name, builder)                  a builder(width, *, causal, rngs, **options) -> mixer
    zoo.resolve(spec) -> Entry                   spec: a registered name or "package.module:builder"
    zoo.build(spec, *, width, vocab, context, rngs, **options)
                                                 a language model (the decoding protocol): the
                                                 family's own (RNNLanguageModel, GPT) where it has
                                                 one, else `seqjax.heads.SequenceLM` around the mixer
    zoo.matched_width(build, target, multiple)   the width nearest a parameter count
    zoo.fingerprint(model)                       a hash of the parameters' names, shapes and values

Builders and the mixer interface: `seqjax.mixer`. The registered names:

    elman_tanh, elman_relu, irnn, lstm, gru      one StackedRNN layer (num_layers=..., cell options);
    rnn                                          kind=any cell kind, factory or class (your cell);
                                                 their language model is `RNNLanguageModel`
    bilstm                                       a bidirectional LSTM (causal=False only)
    mingru, minlstm, lru                         two ScanBlockStack blocks (num_layers, ff_factor)
    transformer                                  two pre-LN blocks, 2 heads, feed-forward 2 x width;
                                                 position = rope (default), sinusoidal, learned,
                                                 relative or none
    gpt                                          GPT-2's blocks (4 layers, 4 heads); its language model is `GPT`
    dilated_cnn                                  DilatedConvStack; layers from num_layers, or enough
                                                 for a receptive field of `context`
"""

import dataclasses
import hashlib
import importlib
from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from seqjax.conv import DilatedConvStack
from seqjax.heads import SequenceLM
from seqjax.mixer import Builder
from seqjax.parallel import ScanBlockStack
from seqjax.recurrent import RNNLanguageModel, StackedRNN
from seqjax.transformer import GPT, GPTConfig, TransformerStack


@dataclasses.dataclass(frozen=True)
class Entry:
  """One architecture: its mixer builder; the width step its sizes take (heads that need even head
  dimensions); optionally its family's own language model,
  language_model(width, *, vocab, context, rngs, **options) -> a decodable LM."""

  name: str
  builder: Builder
  width_multiple: int = 4
  language_model: Callable[..., nnx.Module] | None = None

  @property
  def source(self) -> str:
    """The builder as "module:qualname", what reruns it."""
    return f"{self.builder.__module__}:{self.builder.__qualname__}"


REGISTRY: dict[str, Entry] = {}


def register(name: str, builder: Builder, *, width_multiple: int = 4, language_model=None) -> Entry:
  """Adds `builder` under `name` (refused if taken, or if name holds ':', the mark of a module path)."""
  if not isinstance(name, str) or not name or ":" in name:
    raise ValueError(f"name must be a non-empty string without ':', got {name!r}")
  if name in REGISTRY:
    raise ValueError(f"an architecture named {name!r} is registered already ({REGISTRY[name].source})")
  if not callable(builder):
    raise ValueError(f"builder must be callable: builder(width, *, causal, rngs) -> mixer, got {builder!r}")
  if not isinstance(width_multiple, int) or width_multiple < 1:
    raise ValueError(f"width_multiple must be a positive integer, got {width_multiple!r}")
  REGISTRY[name] = Entry(name, builder, width_multiple, language_model)
  return REGISTRY[name]


def resolve(spec: str) -> Entry:
  """A registered name, or "package.module:builder" (imported; any callable builder)."""
  if not isinstance(spec, str):
    raise ValueError(f"an architecture is a registered name or 'package.module:builder', got {spec!r}")
  if spec in REGISTRY:
    return REGISTRY[spec]
  if ":" not in spec:
    raise ValueError(
      f"unknown architecture {spec!r}: registered are {sorted(REGISTRY)}, or give 'package.module:builder'"
    )
  module_name, _, attribute = spec.partition(":")
  try:
    found = importlib.import_module(module_name)
  except ImportError as error:
    raise ValueError(f"architecture {spec!r}: cannot import module {module_name!r} ({error})") from None
  for part in attribute.split("."):
    if not hasattr(found, part):
      raise ValueError(f"architecture {spec!r}: module {module_name!r} has no {attribute!r}")
    found = getattr(found, part)
  if not callable(found):
    raise ValueError(f"architecture {spec!r} must name a builder(width, *, causal, rngs) -> mixer, got {found!r}")
  return Entry(spec, found)


def build(spec: str, *, width: int, vocab: int, context: int, rngs: nnx.Rngs, **options) -> nnx.Module:
  """A language model of `spec` (registered name or "module:builder"): tokens [B, T] -> logits
  [B, T, V], decodable (`seqjax.decoding`). `context`: the longest sequence it will read."""
  entry = resolve(spec)
  if entry.language_model is not None:
    return entry.language_model(width, vocab=vocab, context=context, rngs=rngs, **options)
  return SequenceLM(vocab, width, entry.builder, context=context, rngs=rngs, **options)


# ------------------------------------------------------------------------------------- sizing


def count_params(model: nnx.Module) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def matched_width(build: Callable[[int, nnx.Rngs], nnx.Module], target: int, multiple: int = 4) -> tuple[int, int]:
  """The width (a multiple of `multiple`) whose build(width, rngs) has the parameter count nearest
  `target`, and that count; counted on abstract shapes (nothing is initialized)."""

  def size(width: int) -> int:
    return count_params(nnx.eval_shape(lambda: build(width, nnx.Rngs(0))))

  low, high = multiple, multiple
  while size(high) < target:
    low, high = high, 2 * high
  while high - low > multiple:  # size(low) < target <= size(high)
    mid = (low + high) // (2 * multiple) * multiple
    low, high = (mid, high) if size(mid) < target else (low, mid)
  width = min((low, high), key=lambda w: abs(size(w) - target))
  return width, size(width)


def fingerprint(model: nnx.Module) -> str:
  """16 hex digits of a hash of every parameter's path, shape, dtype and values: it changes with
  the architecture and with its initialization (a journaled run's key holds it, so a changed
  model is trained again rather than read back)."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))[0]:
    value = np.asarray(leaf)
    digest.update(f"{jax.tree_util.keystr(path)}|{value.shape}|{value.dtype}|".encode())
    digest.update(np.ascontiguousarray(value).tobytes())
  return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- the registered


def rnn(
  width: int,
  *,
  causal: bool,
  rngs: nnx.Rngs,
  kind="lstm",
  in_features: int | None = None,
  num_layers: int = 1,
  bidirectional: bool = False,
  **options,
) -> StackedRNN:
  """StackedRNN of `kind` (a name in seqjax.recurrent.KINDS, a cell factory or class), `width`
  units per direction, reading in_features (default width); bidirectional only when not causal."""
  if causal and bidirectional:
    raise ValueError("bidirectional=True reads the whole sequence: it needs causal=False")
  return StackedRNN(
    kind, in_features or width, width, num_layers=num_layers, bidirectional=bidirectional, rngs=rngs, **options
  )


IRNN = {"recurrent_init": "identity"}  # Le et al. 2015


def elman_tanh(width: int, *, causal: bool, rngs: nnx.Rngs, in_features: int | None = None, **options):
  return rnn(width, causal=causal, rngs=rngs, kind="rnn_tanh", in_features=in_features, **options)


def elman_relu(width: int, *, causal: bool, rngs: nnx.Rngs, in_features: int | None = None, **options):
  return rnn(width, causal=causal, rngs=rngs, kind="rnn_relu", in_features=in_features, **options)


def irnn(width: int, *, causal: bool, rngs: nnx.Rngs, in_features: int | None = None, **options):
  """Le et al. 2015: ReLU units, identity recurrent init."""
  return rnn(width, causal=causal, rngs=rngs, kind="rnn_relu", in_features=in_features, **{**IRNN, **options})


def lstm(width: int, *, causal: bool, rngs: nnx.Rngs, in_features: int | None = None, **options):
  return rnn(width, causal=causal, rngs=rngs, kind="lstm", in_features=in_features, **options)


def gru(width: int, *, causal: bool, rngs: nnx.Rngs, in_features: int | None = None, **options):
  return rnn(width, causal=causal, rngs=rngs, kind="gru", in_features=in_features, **options)


def recurrent_language_model(kind, **preset):
  """The RNN family's language model: `RNNLanguageModel` of `kind`, embedding and hidden width
  `width` (options: num_layers, dropout_rate, cell options; `kind` itself where kind is None)."""

  def language_model(width: int, *, vocab: int, context: int, rngs: nnx.Rngs, **options) -> RNNLanguageModel:
    del context  # a recurrent model reads any length
    options = {"kind": kind, **preset, **options}
    return RNNLanguageModel(vocab, width, width, rngs=rngs, **options)

  return language_model


def bilstm(width: int, *, causal: bool, rngs: nnx.Rngs, in_features: int | None = None, **options):
  """Both directions, `width` units each, concatenated: out_features = 2 x width."""
  return rnn(width, causal=causal, rngs=rngs, kind="lstm", in_features=in_features, bidirectional=True, **options)


def _scan_blocks(kind: str, width: int, rngs: nnx.Rngs, num_layers: int, ff_factor: int) -> ScanBlockStack:
  return ScanBlockStack(kind, width, num_layers, ff_factor=ff_factor, rngs=rngs)  # causal either way


def mingru(width: int, *, causal: bool, rngs: nnx.Rngs, num_layers: int = 2, ff_factor: int = 2):
  return _scan_blocks("mingru", width, rngs, num_layers, ff_factor)


def minlstm(width: int, *, causal: bool, rngs: nnx.Rngs, num_layers: int = 2, ff_factor: int = 2):
  return _scan_blocks("minlstm", width, rngs, num_layers, ff_factor)


def lru(width: int, *, causal: bool, rngs: nnx.Rngs, num_layers: int = 2, ff_factor: int = 2):
  return _scan_blocks("lru", width, rngs, num_layers, ff_factor)


POSITIONS = ("rope", "sinusoidal", "learned", "relative", "none")


def transformer(
  width: int,
  *,
  causal: bool,
  rngs: nnx.Rngs,
  context: int | None = None,
  num_layers: int = 2,
  num_heads: int = 2,
  ff_factor: int = 2,
  position: str = "rope",
  **block_options,
) -> TransformerStack:
  """Pre-LN blocks; position: rotary ("rope"), absolute ("sinusoidal", "learned": a table of
  `context` positions), T5's relative bias ("relative") or "none" (no order but causality's)."""
  if position not in POSITIONS:
    raise ValueError(f"position must be one of {list(POSITIONS)}, got {position!r}")
  return TransformerStack(
    num_layers,
    dim=width,
    num_heads=num_heads,
    ff_dim=ff_factor * width,
    norm="pre",
    rope=position == "rope",
    position=None if position in ("rope", "none") else position,
    max_length=context,
    causal=causal,
    rngs=rngs,
    **block_options,
  )


def gpt(width: int, *, causal: bool, rngs: nnx.Rngs, num_layers: int = 4, num_heads: int = 4) -> TransformerStack:
  """GPT-2's blocks (pre-LN, tanh GELU, feed-forward 4 x width, epsilon 1e-5) with rotary positions."""
  return transformer(
    width,
    causal=causal,
    rngs=rngs,
    num_layers=num_layers,
    num_heads=num_heads,
    ff_factor=4,
    activation="gelu_tanh",
    layer_norm_epsilon=1e-5,
  )


def gpt_language_model(
  width: int,
  *,
  vocab: int,
  context: int,
  rngs: nnx.Rngs,
  num_layers: int = 4,
  num_heads: int = 4,
  position: str = "rope",
  max_length: int | None = None,
  dropout_rate: float = 0.0,
) -> GPT:
  """`GPT` (tied embeddings, its own key/value cache); max_length: positions it may reach (default context)."""
  config = GPTConfig(
    vocab_size=vocab,
    max_length=max_length or context,
    dim=width,
    num_heads=num_heads,
    num_layers=num_layers,
    ff_dim=4 * width,
    dropout_rate=dropout_rate,
    position=position,
  )
  return GPT(config, rngs=rngs)


def dilated_cnn(
  width: int,
  *,
  causal: bool,
  rngs: nnx.Rngs,
  in_features: int | None = None,
  context: int | None = None,
  num_layers: int | None = None,
  kernel_size: int = 2,
  dilation_base: int = 2,
  **conv_options,
) -> DilatedConvStack:
  """num_layers, or (without) the fewest whose receptive field reaches `context`."""
  if num_layers is None:
    if context is None:
      raise ValueError("dilated_cnn needs num_layers, or a context for its receptive field to reach")
    num_layers = 1
    while 1 + (kernel_size - 1) * sum(dilation_base**layer for layer in range(num_layers)) < context:
      num_layers += 1
  return DilatedConvStack(
    in_features or width,
    width,
    num_layers,
    kernel_size=kernel_size,
    dilation_base=dilation_base,
    causal=causal,
    rngs=rngs,
    **conv_options,
  )


for _builder, _kind, _preset in (
  (rnn, "lstm", {}),
  (elman_tanh, "rnn_tanh", {}),
  (elman_relu, "rnn_relu", {}),
  (irnn, "rnn_relu", IRNN),
  (lstm, "lstm", {}),
  (gru, "gru", {}),
):
  register(_builder.__name__, _builder, language_model=recurrent_language_model(_kind, **_preset))
for _builder in (bilstm, mingru, minlstm, lru, transformer, dilated_cnn):
  register(_builder.__name__, _builder)
register("gpt", gpt, width_multiple=8, language_model=gpt_language_model)  # head size even for RoPE's pairs
