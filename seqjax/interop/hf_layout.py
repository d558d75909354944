"""Rules that map one Hugging Face tensor to seqjax parameters and back, shared by the families.

A rule names one tensor of the checkpoint, the seqjax parameter paths it fills ('/'-joined), and
the two conversions. PyTorch's nn.Linear stores weight [out, in] (flax: kernel [in, out]); GPT-2's
Conv1D already stores [in, out]. seqjax's attention keeps heads apart: query/key/value kernels
[D, N, Dh], biases [N, Dh], the output kernel [N, Dh, D].
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from seqjax import _validate


class Rule(NamedTuple):
  hf: str  # the checkpoint's tensor name
  ours: tuple[str, ...]  # the seqjax parameter paths it fills
  to_ours: Callable[[np.ndarray], tuple[np.ndarray, ...]]
  to_hf: Callable[..., np.ndarray]


class Tied(NamedTuple):
  """A tensor transformers may write or leave out because it equals another (a tied output layer):
  read only to check it equals the parameter it is tied to; never written."""

  hf: str
  ours: str


def same(hf: str, ours: str) -> Rule:
  return Rule(hf, (ours,), lambda t: (t,), lambda a: a)


def norm(hf: str, ours: str) -> list[Rule]:
  """LayerNorm: weight -> scale, bias -> bias."""
  return [same(f"{hf}.weight", f"{ours}/scale"), same(f"{hf}.bias", f"{ours}/bias")]


def linear(hf: str, ours: str, *, torch_layout: bool = True, bias: bool = True) -> list[Rule]:
  """A dense layer: nn.Linear weight [out, in] (or Conv1D [in, out]) -> kernel [in, out]; bias."""
  flip = (lambda w: w.T) if torch_layout else (lambda w: w)
  kernel = Rule(f"{hf}.weight", (f"{ours}/kernel",), lambda w: (flip(w),), flip)
  return [kernel, same(f"{hf}.bias", f"{ours}/bias")] if bias else [kernel]


def heads_in(hf: str, ours: str, heads: int, *, torch_layout: bool = True, bias: bool = True) -> list[Rule]:
  """A query/key/value projection [D -> N * Dh] -> kernel [D, N, Dh], bias [N, Dh]."""

  def to_ours(w):
    w = w.T if torch_layout else w  # [D, N * Dh]
    return (w.reshape(w.shape[0], heads, -1),)

  def to_hf(kernel):
    w = kernel.reshape(kernel.shape[0], -1)  # [D, N, Dh] -> [D, N * Dh]
    return w.T if torch_layout else w

  kernel = Rule(f"{hf}.weight", (f"{ours}/kernel",), to_ours, to_hf)
  if not bias:
    return [kernel]
  return [kernel, Rule(f"{hf}.bias", (f"{ours}/bias",), lambda b: (b.reshape(heads, -1),), lambda b: b.reshape(-1))]


def heads_out(hf: str, ours: str, heads: int, *, torch_layout: bool = True, bias: bool = True) -> list[Rule]:
  """The attention's output projection [N * Dh -> D] -> kernel [N, Dh, D]; bias [D]."""

  def to_ours(w):
    w = w.T if torch_layout else w  # [N * Dh, D]
    return (w.reshape(heads, -1, w.shape[-1]),)

  def to_hf(kernel):
    w = kernel.reshape(-1, kernel.shape[-1])  # [N, Dh, D] -> [N * Dh, D]
    return w.T if torch_layout else w

  kernel = Rule(f"{hf}.weight", (f"{ours}/kernel",), to_ours, to_hf)
  return [kernel, same(f"{hf}.bias", f"{ours}/bias")] if bias else [kernel]


# seqjax config field -> the key of transformers' BertConfig and ViTConfig
ENCODER_SIZES = {
  "dim": "hidden_size",
  "num_heads": "num_attention_heads",
  "num_layers": "num_hidden_layers",
  "ff_dim": "intermediate_size",
  "layer_norm_epsilon": "layer_norm_eps",
}


def size(hf: dict, name: str) -> int:
  """config.json's size `name`, which must be there and a positive integer."""
  if name not in hf:
    raise ValueError(f"config.json lacks {name!r}")
  _validate.positive_int(f"config.json: {name}", hf[name])
  return hf[name]


def sizes_from_hf(hf: dict) -> dict:
  return {
    ours: hf.get(theirs, 1e-12) if ours == "layer_norm_epsilon" else size(hf, theirs)
    for ours, theirs in ENCODER_SIZES.items()
  }


def sizes_to_hf(config) -> dict:
  """A model config's sizes (num_layers its own, the others its block's) -> transformers' keys."""
  return {
    theirs: getattr(config if ours == "num_layers" else config.block, ours) for ours, theirs in ENCODER_SIZES.items()
  }


# TransformerBlockConfig fields that every Hugging Face layout here computes only at these values
PLAIN_BLOCK = {
  "use_bias": True,
  "norm_type": "layer",
  "head_dim": None,
  "gated_feed_forward": False,
  "attention_logit_scale": None,
}


def require_block(block, required: dict, model: str) -> None:
  """Refuses to write a model whose block (a TransformerBlockConfig) the `model` layout cannot
  hold: each `required` field must have its value."""
  for name, expected in required.items():
    value = getattr(block, name)
    if value != expected:
      raise ValueError(f"model: {model} computes block {name}={expected!r}; this model's block has {value!r}")


def require(hf: dict, required: dict, model: str) -> None:
  """Refuses config.json options that seqjax's `model` computes only at the `required` values."""
  for name, expected in required.items():
    if hf.get(name, expected) != expected:
      raise ValueError(f"config.json: {name}={hf[name]!r} is not supported (seqjax's {model} computes {expected!r})")
