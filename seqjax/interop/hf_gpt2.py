"""GPT-2 (Hugging Face `GPT2LMHeadModel`) <-> seqjax `GPT`: the config and every tensor.

Hugging Face's GPT-2 keeps its projections in Conv1D layout, weight [in, out], which is flax's
kernel layout; its attention fuses query, key and value into c_attn [D, 3D] (q | k | v), each
split here into seqjax's per-head kernels [D, N, Dh]. Names, with N = block index:

    transformer.wte.weight [V, D]            embed/tokens/embedding
    transformer.wpe.weight [P, D]            embed/positions/table
    transformer.h.N.ln_1 / ln_2              stack/blocks/N/self_attention_norm / feed_forward_norm
    transformer.h.N.attn.c_attn [D, 3D]      stack/blocks/N/self_attention/{query,key,value}
    transformer.h.N.attn.c_proj [D, D]       stack/blocks/N/self_attention/out  [N, Dh, D]
    transformer.h.N.mlp.c_fc / c_proj        stack/blocks/N/feed_forward/inner / outer
    transformer.ln_f                         stack/final_norm
    lm_head.weight [V, D]                    the tied embedding (or head/kernel [D, V] untied)

OpenAI's checkpoints as published (openai-community/gpt2 and its sizes) name the tensors as
GPT2Model does, without the `transformer.` prefix and without lm_head (tied), and hold each
block's constant attention buffers: h.N.attn.bias, the causal mask [1, 1, P, P], and
h.N.attn.masked_bias, the fill value. `rename` reads that layout too.
"""

import re

import numpy as np

from seqjax.interop.hf_layout import (
  PLAIN_BLOCK,
  Rule,
  Tied,
  heads_out,
  linear,
  norm,
  require,
  require_block,
  same,
  size,
)
from seqjax.transformer.blocks import TransformerBlockConfig
from seqjax.transformer.gpt import GPT, GPTConfig

MODEL = GPT

ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
ATTENTION_SCALING = {  # options of GPT2Config that change the attention; seqjax computes the first value
  "scale_attn_weights": True,
  "scale_attn_by_inverse_layer_idx": False,
  "reorder_and_upcast_attn": False,
}


def rename(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """GPT2Model's names (the published layout above) -> GPT2LMHeadModel's; the attention buffers,
  which nothing computes with here (attention is causal by construction), are left out once each
  mask is checked to be the causal one."""
  renamed = {}
  for name, value in tensors.items():
    if re.fullmatch(r"(transformer\.)?h\.\d+\.attn\.masked_bias", name):
      continue
    if re.fullmatch(r"(transformer\.)?h\.\d+\.attn\.bias", name):
      P = value.shape[-1]
      if value.shape != (1, 1, P, P) or not np.array_equal(value[0, 0], np.tril(np.ones((P, P)))):
        raise ValueError(f"tensor {name!r} must be the causal mask [1, 1, P, P] of ones on and below the diagonal")
      continue
    renamed[name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}"] = value
  return renamed


def config_from_hf(hf: dict) -> GPTConfig:
  """GPT2Config as a dict -> GPTConfig; refuses what seqjax's GPT cannot compute."""
  activation = hf.get("activation_function", "gelu_new")
  if activation not in ACTIVATIONS:
    raise ValueError(f"config.json: activation_function {activation!r} is not supported; known: {list(ACTIVATIONS)}")
  require(hf, ATTENTION_SCALING, "GPT")
  rates = {hf.get(name, 0.1) for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
  if len(rates) != 1:
    raise ValueError(f"config.json: resid_pdrop, embd_pdrop and attn_pdrop must be equal for seqjax, got {rates}")
  rate = rates.pop()
  dim = size(hf, "n_embd")
  block = TransformerBlockConfig(
    dim=dim,
    num_heads=size(hf, "n_head"),
    ff_dim=hf.get("n_inner") or 4 * dim,
    norm="pre",
    activation=ACTIVATIONS[activation],
    dropout_rate=rate,
    attention_dropout_rate=rate,
    layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5),
  )
  return GPTConfig(
    vocab_size=size(hf, "vocab_size"),
    max_length=size(hf, "n_positions"),
    num_layers=size(hf, "n_layer"),
    tie_embeddings=hf.get("tie_word_embeddings", True),
    block=block,
  )


def config_to_hf(config: GPTConfig) -> dict:
  if config.position != "learned":
    raise ValueError(f"model: GPT-2 has learned positions; this GPT has position={config.position!r}")
  block = config.block
  require_block(block, {"norm": "pre", **PLAIN_BLOCK}, "GPT-2")
  activation = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[block.activation]
  return {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "vocab_size": config.vocab_size,
    "n_positions": config.max_length,
    "n_embd": block.dim,
    "n_head": block.num_heads,
    "n_layer": config.num_layers,
    "n_inner": block.ff_dim,
    "activation_function": activation,
    "resid_pdrop": block.dropout_rate,
    "embd_pdrop": block.dropout_rate,
    "attn_pdrop": block.attention_dropout_rate,
    "layer_norm_epsilon": block.layer_norm_epsilon,
    "tie_word_embeddings": config.tie_embeddings,
    **ATTENTION_SCALING,
  }


def model_config(model: GPT) -> GPTConfig:
  return model.config


def _fused_qkv(hf: str, ours: str, config: GPTConfig) -> list[Rule]:
  """c_attn [D, 3D] (q | k | v, Conv1D layout) and its bias [3D] -> three per-head projections."""
  N, D = config.block.num_heads, config.block.dim
  names = [f"{ours}/{n}" for n in ("query", "key", "value")]
  return [
    Rule(
      f"{hf}.weight",
      tuple(f"{n}/kernel" for n in names),
      lambda w: tuple(part.reshape(D, N, -1) for part in np.split(w, 3, axis=1)),
      lambda *kernels: np.concatenate([k.reshape(D, D) for k in kernels], axis=1),  # [D, N, Dh] x 3 -> [D, 3D]
    ),
    Rule(
      f"{hf}.bias",
      tuple(f"{n}/bias" for n in names),
      lambda b: tuple(part.reshape(N, -1) for part in np.split(b, 3)),
      lambda *biases: np.concatenate([b.reshape(D) for b in biases]),
    ),
  ]


def rules(config: GPTConfig) -> tuple[list[Rule], list[Tied]]:
  N = config.block.num_heads
  found = [
    same("transformer.wte.weight", "embed/tokens/embedding"),
    same("transformer.wpe.weight", "embed/positions/table"),
  ]
  for i in range(config.num_layers):
    hf, ours = f"transformer.h.{i}", f"stack/blocks/{i}"
    found += norm(f"{hf}.ln_1", f"{ours}/self_attention_norm") + norm(f"{hf}.ln_2", f"{ours}/feed_forward_norm")
    found += _fused_qkv(f"{hf}.attn.c_attn", f"{ours}/self_attention", config)
    found += heads_out(f"{hf}.attn.c_proj", f"{ours}/self_attention/out", N, torch_layout=False)
    found += linear(f"{hf}.mlp.c_fc", f"{ours}/feed_forward/inner", torch_layout=False)
    found += linear(f"{hf}.mlp.c_proj", f"{ours}/feed_forward/outer", torch_layout=False)
  found += norm("transformer.ln_f", "stack/final_norm")
  if config.tie_embeddings:
    return found, [Tied("lm_head.weight", "embed/tokens/embedding")]
  return [*found, Rule("lm_head.weight", ("head/kernel",), lambda w: (w.T,), lambda k: k.T)], []
