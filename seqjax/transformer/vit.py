"""Vision Transformer (Dosovitskiy et al. 2021): image patches as tokens for a pre-LN encoder."""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.dropout import dropout, split_key
from seqjax.transformer.blocks import TransformerBlockConfig, TransformerStack
from seqjax.transformer.model_config import check_model, embeds_block


@embeds_block
@dataclasses.dataclass(frozen=True)
class ViTConfig:
  """Defaults are ViT-B/16 at 224 px with 1000 classes (86,567,656 parameters). The block's fields
  may be given flat (`model_config.embeds_block`); its dropout_rate is also the embedding's."""

  image_size: int = 224
  patch_size: int = 16
  channels: int = 3
  num_layers: int = 12
  num_classes: int = 1000
  block: TransformerBlockConfig = TransformerBlockConfig(
    dim=768, num_heads=12, ff_dim=3072, norm="pre", activation="gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6
  )

  def check(self) -> "ViTConfig":
    check_model(self, positive=("image_size", "patch_size", "channels", "num_layers", "num_classes"))
    if self.image_size % self.patch_size:
      raise ValueError(f"image_size {self.image_size} must be divisible by patch_size {self.patch_size}")
    return self


def patchify(images: jax.Array, patch: int) -> jax.Array:
  """[B, H, W, C] -> [B, (H/P)(W/P), P*P*C], patches in row-major order."""
  B, H, W, C = images.shape
  x = images.reshape(B, H // patch, patch, W // patch, patch, C)
  x = x.transpose(0, 1, 3, 2, 4, 5)  # [B, H/P, W/P, P, P, C]
  return x.reshape(B, (H // patch) * (W // patch), patch * patch * C)


class ViT(nnx.Module):
  """vit(images [B, H, W, C]) -> class logits [B, num_classes], read from the class token."""

  def __init__(self, config: ViTConfig, *, rngs: nnx.Rngs):
    config.check()
    num_patches = (config.image_size // config.patch_size) ** 2
    self.config = config
    dim = config.block.dim
    self.patch_embed = nnx.Linear(config.patch_size**2 * config.channels, dim, rngs=rngs)  # a strided conv
    self.class_token = nnx.Param(jnp.zeros((1, 1, dim)))
    self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, num_patches + 1, dim)))
    self.encoder = TransformerStack(config.num_layers, block=config.block, rngs=rngs)
    self.head = nnx.Linear(dim, config.num_classes, rngs=rngs)

  def __call__(self, images: jax.Array, *, dropout_key: jax.Array | None = None) -> jax.Array:
    c = self.config
    _validate.float_array("images", images, "[B, H, W, C]", 4)
    if images.shape[1:] != (c.image_size, c.image_size, c.channels):
      raise ValueError(
        f"images must have shape [B, {c.image_size}, {c.image_size}, {c.channels}], got {tuple(images.shape)}"
      )
    keys = split_key(dropout_key)
    x = self.patch_embed(patchify(images, c.patch_size))  # [B, N_patches, D]
    cls = jnp.broadcast_to(self.class_token[...], (x.shape[0], 1, c.block.dim))
    x = jnp.concatenate([cls, x], axis=1) + self.position[...]  # [B, 1 + N_patches, D]
    x = self.encoder(dropout(x, c.block.dropout_rate, keys[0]), dropout_key=keys[1])
    return self.head(x[:, 0])
