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
"""

import numpy as np

from seqjax.transformer.gpt import GPTConfig

ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
ATTENTION_SCALING = {  # options of GPT2Config that change the attention; seqjax computes the first value
  "scale_attn_weights": True,
  "scale_attn_by_inverse_layer_idx": False,
  "reorder_and_upcast_attn": False,
}


def config_from_hf(hf: dict) -> GPTConfig:
  """GPT2Config as a dict -> GPTConfig; refuses what seqjax's GPT cannot compute."""
  activation = hf.get("activation_function", "gelu_new")
  if activation not in ACTIVATIONS:
    raise ValueError(f"config.json: activation_function {activation!r} is not supported; known: {list(ACTIVATIONS)}")
  for name, expected in ATTENTION_SCALING.items():
    if hf.get(name, expected) != expected:
      raise ValueError(f"config.json: {name}={hf[name]!r} is not supported (seqjax computes {name}={expected})")
  rates = {hf.get(name, 0.1) for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
  if len(rates) != 1:
    raise ValueError(f"config.json: resid_pdrop, embd_pdrop and attn_pdrop must be equal for seqjax, got {rates}")
  dim = hf["n_embd"]
  return GPTConfig(
    vocab_size=hf["vocab_size"],
    max_length=hf["n_positions"],
    dim=dim,
    num_heads=hf["n_head"],
    num_layers=hf["n_layer"],
    ff_dim=hf.get("n_inner") or 4 * dim,
    dropout_rate=rates.pop(),
    activation=ACTIVATIONS[activation],
    layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5),
    tie_embeddings=hf.get("tie_word_embeddings", True),
  )


def config_to_hf(config: GPTConfig) -> dict:
  if config.position != "learned":
    raise ValueError(f"model: GPT-2 has learned positions; this GPT has position={config.position!r}")
  activation = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}[config.activation]
  return {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "vocab_size": config.vocab_size,
    "n_positions": config.max_length,
    "n_embd": config.dim,
    "n_head": config.num_heads,
    "n_layer": config.num_layers,
    "n_inner": config.ff_dim,
    "activation_function": activation,
    "resid_pdrop": config.dropout_rate,
    "embd_pdrop": config.dropout_rate,
    "attn_pdrop": config.dropout_rate,
    "layer_norm_epsilon": config.layer_norm_epsilon,
    "tie_word_embeddings": config.tie_embeddings,
    **ATTENTION_SCALING,
  }


def _norm(prefix: str) -> list[tuple[str, str]]:
  return [(f"{prefix}/scale", "weight"), (f"{prefix}/bias", "bias")]


def params_from_hf(take, config: GPTConfig) -> dict[str, np.ndarray]:
  """take(name) -> the tensor (each once) -> seqjax parameters by '/'-joined path."""
  N, Dh = config.num_heads, config.dim // config.num_heads
  params = {
    "embed/tokens/embedding": take("transformer.wte.weight"),
    "embed/positions/table": take("transformer.wpe.weight"),
  }
  for i in range(config.num_layers):
    hf, sj = f"transformer.h.{i}.", f"stack/blocks/{i}/"
    for ours, theirs in (("self_attention_norm", "ln_1"), ("feed_forward_norm", "ln_2")):
      for path, field in _norm(sj + ours):
        params[path] = take(f"{hf}{theirs}.{field}")
    qkv_w, qkv_b = take(hf + "attn.c_attn.weight"), take(hf + "attn.c_attn.bias")  # [D, 3D], [3D]
    for j, name in enumerate(("query", "key", "value")):
      params[f"{sj}self_attention/{name}/kernel"] = np.split(qkv_w, 3, axis=1)[j].reshape(config.dim, N, Dh)
      params[f"{sj}self_attention/{name}/bias"] = np.split(qkv_b, 3)[j].reshape(N, Dh)
    params[sj + "self_attention/out/kernel"] = take(hf + "attn.c_proj.weight").reshape(N, Dh, config.dim)
    params[sj + "self_attention/out/bias"] = take(hf + "attn.c_proj.bias")
    for ours, theirs in (("inner", "c_fc"), ("outer", "c_proj")):
      params[f"{sj}feed_forward/{ours}/kernel"] = take(f"{hf}mlp.{theirs}.weight")
      params[f"{sj}feed_forward/{ours}/bias"] = take(f"{hf}mlp.{theirs}.bias")
  for path, field in _norm("stack/final_norm"):
    params[path] = take(f"transformer.ln_f.{field}")
  head = take("lm_head.weight", optional=config.tie_embeddings)  # [V, D]; tied files may leave it out
  if config.tie_embeddings:
    if head is not None and not np.array_equal(head, params["embed/tokens/embedding"]):
      raise ValueError("lm_head.weight differs from transformer.wte.weight but config.json ties them")
  else:
    params["head/kernel"] = head.T
  return params


def params_to_hf(params: dict[str, np.ndarray], config: GPTConfig) -> dict[str, np.ndarray]:
  """The inverse of params_from_hf (lm_head.weight written as transformers writes it: tied or not)."""
  D = config.dim
  tensors = {
    "transformer.wte.weight": params["embed/tokens/embedding"],
    "transformer.wpe.weight": params["embed/positions/table"],
  }
  for i in range(config.num_layers):
    hf, sj = f"transformer.h.{i}.", f"stack/blocks/{i}/"
    for ours, theirs in (("self_attention_norm", "ln_1"), ("feed_forward_norm", "ln_2")):
      for path, field in _norm(sj + ours):
        tensors[f"{hf}{theirs}.{field}"] = params[path]
    names = ("query", "key", "value")
    tensors[hf + "attn.c_attn.weight"] = np.concatenate(
      [params[f"{sj}self_attention/{n}/kernel"].reshape(D, D) for n in names], axis=1
    )  # [D, N, Dh] x 3 -> [D, 3D]
    tensors[hf + "attn.c_attn.bias"] = np.concatenate(
      [params[f"{sj}self_attention/{n}/bias"].reshape(D) for n in names]
    )
    tensors[hf + "attn.c_proj.weight"] = params[sj + "self_attention/out/kernel"].reshape(D, D)
    tensors[hf + "attn.c_proj.bias"] = params[sj + "self_attention/out/bias"]
    for ours, theirs in (("inner", "c_fc"), ("outer", "c_proj")):
      tensors[f"{hf}mlp.{theirs}.weight"] = params[f"{sj}feed_forward/{ours}/kernel"]
      tensors[f"{hf}mlp.{theirs}.bias"] = params[f"{sj}feed_forward/{ours}/bias"]
  for path, field in _norm("stack/final_norm"):
    tensors[f"transformer.ln_f.{field}"] = params[path]
  if not config.tie_embeddings:
    tensors["lm_head.weight"] = params["head/kernel"].T
  return tensors
