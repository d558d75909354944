"""Hugging Face checkpoints in and out: `from_pretrained(path)` reads a local model folder
(config.json + safetensors) into the seqjax model its config names; `save_pretrained(model, path)`
writes a folder that transformers loads. Every tensor of the file is used exactly once and every
parameter of the model is written, or the load fails naming them.

Families (`model_type` -> seqjax model): "gpt2" -> transformer.GPT, "bert" ->
transformer.BertForPreTraining, "vit" -> transformer.ViT (transformers 4.x and 5.x names), "t5" ->
transformer.EncoderDecoder (T5 v1.0 and v1.1). Each family module (hf_gpt2, hf_bert, hf_vit, hf_t5)
holds MODEL, the config translation both ways, `model_config(model)` and `rules(config)`
(seqjax.interop.hf_layout); hf_vit and hf_gpt2 also `rename` for older tensor names, hf_t5 `IGNORED`.
"""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqjax.interop import hf_bert, hf_gpt2, hf_t5, hf_vit
from seqjax.interop.safetensors_folder import read_folder, write_folder

FAMILIES = {"gpt2": hf_gpt2, "bert": hf_bert, "vit": hf_vit, "t5": hf_t5}


def _take_all(tensors: dict[str, np.ndarray], family, config) -> dict[str, np.ndarray]:
  """The checkpoint's tensors -> seqjax parameters by path, each tensor used once."""
  left = dict(tensors)
  for name in getattr(family, "IGNORED", ()):  # tensors of the format that no model computes with
    left.pop(name, None)
  found, tied = family.rules(config)
  params = {}
  for rule in found:
    if rule.hf not in left:
      raise ValueError(f"the checkpoint lacks tensor {rule.hf!r}")
    params.update(zip(rule.ours, rule.to_ours(left.pop(rule.hf)), strict=True))
  for tie in tied:
    if tie.hf in left and not np.array_equal(left.pop(tie.hf), params[tie.ours]):
      raise ValueError(f"tensor {tie.hf!r} differs from the parameter it is tied to ({tie.ours})")
  if left:
    raise ValueError(f"the checkpoint's tensors {sorted(left)} map to no parameter of {family.MODEL.__name__}")
  return params


def from_pretrained(path: str | Path, *, dtype=jnp.float32) -> nnx.Module:
  """A Hugging Face model folder -> the seqjax model, its parameters in `dtype`."""
  hf_config, tensors = read_folder(path)
  model_type = hf_config.get("model_type")
  if model_type not in FAMILIES:
    raise ValueError(f"config.json: model_type {model_type!r} is not supported; supported: {list(FAMILIES)}")
  family = FAMILIES[model_type]
  config = family.config_from_hf(hf_config)
  try:
    config.check()  # before the tensor rules reshape anything by its sizes
  except ValueError as error:
    raise ValueError(f"config.json gives no valid {type(config).__name__}: {error}") from error
  rename = getattr(family, "rename", None)  # families whose tensor names changed between transformers versions
  params = _take_all(rename(tensors) if rename else tensors, family, config)
  model = nnx.eval_shape(lambda: family.MODEL(config, rngs=nnx.Rngs(0)))
  flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
  by_name = {"/".join(map(str, key)): key for key in flat}
  unwritten = sorted(set(by_name) - set(params))
  if unwritten:
    raise ValueError(f"the checkpoint writes no value for {family.MODEL.__name__} parameters {unwritten}")
  for name, value in params.items():
    expected = flat[by_name[name]].shape
    if value.shape != expected:
      raise ValueError(f"tensor for {name} has shape {value.shape}, the model expects {expected}")
    flat[by_name[name]].set_value(jnp.asarray(value, dtype))
  nnx.update(model, nnx.from_flat_state(flat))
  return model


def save_pretrained(model: nnx.Module, path: str | Path) -> None:
  """The model as a Hugging Face folder (float32 safetensors and config.json)."""
  family = next((f for f in FAMILIES.values() if isinstance(model, f.MODEL)), None)
  if family is None:
    raise ValueError(f"model: {type(model).__name__} has no Hugging Face layout here; supported: {list(FAMILIES)}")
  config = family.model_config(model)
  hf_config = family.config_to_hf(config)
  params = {
    "/".join(map(str, key)): np.asarray(value.get_value(), np.float32)
    for key, value in nnx.to_flat_state(nnx.state(model, nnx.Param))
  }
  found, _ = family.rules(config)
  write_folder(path, hf_config, {rule.hf: rule.to_hf(*(params[p] for p in rule.ours)) for rule in found})
