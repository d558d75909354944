"""ViT (Hugging Face `ViTForImageClassification`) <-> seqjax `ViT`: the config and every tensor.
PyTorch nn.Linear layout (weight [out, in]). Names as transformers 5.x writes them (4.x files are
renamed on reading, `RENAMED_IN_5`), with N = block index:

    vit.embeddings.cls_token, position_embeddings             class_token, position
    vit.embeddings.patch_embeddings.projection [D, C, P, P]   patch_embed: kernel [P * P * C, D] (NHWC patches)
    vit.layers.N.attention.{q,k,v,o}_proj                     encoder/blocks/N/self_attention/{query,key,value,out}
    vit.layers.N.layernorm_before / layernorm_after           .../self_attention_norm / feed_forward_norm
    vit.layers.N.mlp.fc1 / fc2                                .../feed_forward/inner / outer
    vit.layernorm; classifier                                 encoder/final_norm; head

seqjax's ViT takes images [B, H, W, C]; transformers' pixel_values are [B, C, H, W].
"""

import re

import numpy as np

from seqjax.interop.hf_layout import (
  PLAIN_BLOCK,
  Rule,
  Tied,
  heads_in,
  heads_out,
  linear,
  norm,
  require,
  require_block,
  same,
  size,
  sizes_from_hf,
  sizes_to_hf,
)
from seqjax.transformer.vit import ViT, ViTConfig

MODEL = ViT
REQUIRED = {"hidden_act": "gelu", "qkv_bias": True, "attention_probs_dropout_prob": 0.0}
RENAMED_IN_5 = [  # transformers 4.x tensor names -> 5.x
  (
    r"^vit\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.",
    lambda m: f"vit.layers.{m[1]}.attention.{m[2][0]}_proj.",
  ),
  (r"^vit\.encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"vit.layers.\1.attention.o_proj."),
  (r"^vit\.encoder\.layer\.(\d+)\.intermediate\.dense\.", r"vit.layers.\1.mlp.fc1."),
  (r"^vit\.encoder\.layer\.(\d+)\.output\.dense\.", r"vit.layers.\1.mlp.fc2."),
  (r"^vit\.encoder\.layer\.(\d+)\.(layernorm_before|layernorm_after)\.", r"vit.layers.\1.\2."),
]


def rename(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Tensor names of either transformers generation -> 5.x names."""
  renamed = {}
  for name, value in tensors.items():
    for pattern, replacement in RENAMED_IN_5:
      name = re.sub(pattern, replacement, name)
    renamed[name] = value
  return renamed


def config_from_hf(hf: dict) -> ViTConfig:
  require(hf, REQUIRED, "ViT")
  labels = hf.get("id2label") or {}
  return ViTConfig(
    image_size=size(hf, "image_size"),
    patch_size=size(hf, "patch_size"),
    channels=hf.get("num_channels", 3),
    num_classes=hf.get("num_labels", len(labels) or 2),
    dropout_rate=hf.get("hidden_dropout_prob", 0.0),
    **sizes_from_hf(hf),
  )


def config_to_hf(config: ViTConfig) -> dict:
  plain_vit = {"norm": "pre", "activation": "gelu", "attention_dropout_rate": 0.0, **PLAIN_BLOCK}
  require_block(config.block, plain_vit, "ViT")
  return {
    "architectures": ["ViTForImageClassification"],
    "model_type": "vit",
    "image_size": config.image_size,
    "patch_size": config.patch_size,
    "num_channels": config.channels,
    **sizes_to_hf(config),
    "id2label": {str(i): f"LABEL_{i}" for i in range(config.num_classes)},
    "label2id": {f"LABEL_{i}": i for i in range(config.num_classes)},
    "hidden_dropout_prob": config.block.dropout_rate,
    **REQUIRED,
  }


def model_config(model: ViT) -> ViTConfig:
  return model.config


def _patch_embedding(config: ViTConfig) -> Rule:
  """Conv weight [D, C, P, P] <-> the linear kernel over NHWC patches [P * P * C, D]."""
  P, C, D = config.patch_size, config.channels, config.block.dim
  return Rule(
    "vit.embeddings.patch_embeddings.projection.weight",
    ("patch_embed/kernel",),
    lambda w: (w.transpose(2, 3, 1, 0).reshape(P * P * C, D),),  # [D, C, P, P] -> [P, P, C, D]
    lambda k: k.reshape(P, P, C, D).transpose(3, 2, 0, 1),
  )


def rules(config: ViTConfig) -> tuple[list[Rule], list[Tied]]:
  N = config.block.num_heads
  found = [
    same("vit.embeddings.cls_token", "class_token"),
    same("vit.embeddings.position_embeddings", "position"),
    _patch_embedding(config),
    same("vit.embeddings.patch_embeddings.projection.bias", "patch_embed/bias"),
  ]
  for i in range(config.num_layers):
    hf, ours = f"vit.layers.{i}", f"encoder/blocks/{i}"
    for short, name in (("q", "query"), ("k", "key"), ("v", "value")):
      found += heads_in(f"{hf}.attention.{short}_proj", f"{ours}/self_attention/{name}", N)
    found += heads_out(f"{hf}.attention.o_proj", f"{ours}/self_attention/out", N)
    found += norm(f"{hf}.layernorm_before", f"{ours}/self_attention_norm")
    found += norm(f"{hf}.layernorm_after", f"{ours}/feed_forward_norm")
    found += linear(f"{hf}.mlp.fc1", f"{ours}/feed_forward/inner") + linear(
      f"{hf}.mlp.fc2", f"{ours}/feed_forward/outer"
    )
  found += norm("vit.layernorm", "encoder/final_norm") + linear("classifier", "head")
  return found, []
