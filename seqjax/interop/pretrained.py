"""Hugging Face checkpoints in and out: `from_pretrained(path)` reads a local model folder
(config.json + safetensors) into the seqjax model its config names; `save_pretrained(model, path)`
writes a folder that transformers loads. Every tensor of the file is used exactly once and every
parameter of the model is written, or the load fails naming them.

Families: GPT-2 (`model_type` "gpt2" -> seqjax.transformer.GPT). BERT, ViT and T5 are refused by
name (issue #13 lists the options seqjax still needs for them).
"""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax.interop import hf_gpt2
from seqjax.interop.safetensors_folder import read_folder, write_folder
from seqjax.transformer.gpt import GPT

FAMILIES = {"gpt2": (GPT, hf_gpt2)}  # model_type -> (seqjax class, its mapping module)


class _Tensors:
  """The file's tensors, each taken at most once; what is never taken is reported."""

  def __init__(self, tensors: dict[str, np.ndarray]):
    self.left = dict(tensors)

  def __call__(self, name: str, *, optional: bool = False) -> np.ndarray | None:
    if name in self.left:
      return self.left.pop(name)
    if optional:
      return None
    raise ValueError(f"the checkpoint lacks tensor {name!r}")


def from_pretrained(path: str | Path, *, dtype=jnp.float32) -> nnx.Module:
  """A Hugging Face model folder -> the seqjax model, its parameters in `dtype`."""
  hf_config, tensors = read_folder(path)
  model_type = hf_config.get("model_type")
  if model_type not in FAMILIES:
    raise ValueError(f"config.json: model_type {model_type!r} is not supported; supported: {list(FAMILIES)}")
  cls, mapping = FAMILIES[model_type]
  config = mapping.config_from_hf(hf_config)
  take = _Tensors(tensors)
  params = mapping.params_from_hf(take, config)
  if take.left:
    raise ValueError(f"the checkpoint's tensors {sorted(take.left)} map to no parameter of {cls.__name__}")
  model = nnx.eval_shape(lambda: cls(config, rngs=nnx.Rngs(0)))
  state = nnx.state(model, nnx.Param)
  flat = dict(nnx.to_flat_state(state))
  wanted = {"/".join(map(str, key)): key for key in flat}
  unwritten = sorted(set(wanted) - set(params))
  if unwritten:
    raise ValueError(f"the checkpoint writes no value for {cls.__name__} parameters {unwritten}")
  for name, value in params.items():
    expected = flat[wanted[name]].shape
    if value.shape != expected:
      raise ValueError(f"tensor for {name} has shape {value.shape}, the model expects {expected}")
    flat[wanted[name]].set_value(jnp.asarray(value, dtype))
  nnx.update(model, nnx.from_flat_state(flat))
  return model


def save_pretrained(model: nnx.Module, path: str | Path) -> None:
  """The model as a Hugging Face folder (float32 safetensors and config.json)."""
  mapping = next((m for cls, m in FAMILIES.values() if isinstance(model, cls)), None)
  if mapping is None:
    raise ValueError(f"model: {type(model).__name__} has no Hugging Face layout here; supported: {list(FAMILIES)}")
  params = {
    "/".join(map(str, key)): np.asarray(value.get_value(), np.float32)
    for key, value in nnx.to_flat_state(nnx.state(model, nnx.Param))
  }
  hf_config = mapping.config_to_hf(model.config)
  write_folder(path, hf_config, mapping.params_to_hf(params, model.config))
