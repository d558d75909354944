"""The norms of seqjax's Transformers, all built here.

LayerNorm as PyTorch computes it: the variance in two passes, E[(x - mean)^2]. flax's default
(use_fast_variance) computes E[x^2] - mean^2, which cancels catastrophically when the mean is
large against the spread: at activations of mean 100 and unit spread it is ~1e-2 off in float32,
and real checkpoints carry such offsets.

RMSNorm (Zhang & Sennrich 2019; T5): x / sqrt(mean(x^2) + eps) * scale, no mean subtracted and no
bias.
"""

from flax import nnx

NORM_TYPES = ("layer", "rms")


def layer_norm(dim: int, *, epsilon: float, use_bias: bool = True, rngs: nnx.Rngs) -> nnx.LayerNorm:
  return nnx.LayerNorm(dim, epsilon=epsilon, use_bias=use_bias, use_fast_variance=False, rngs=rngs)


def make_norm(norm_type: str, dim: int, *, epsilon: float, use_bias: bool, rngs: nnx.Rngs) -> nnx.Module:
  """norm_type "layer" (with a bias when use_bias) or "rms" (never a bias)."""
  if norm_type == "rms":
    return nnx.RMSNorm(dim, epsilon=epsilon, rngs=rngs)
  return layer_norm(dim, epsilon=epsilon, use_bias=use_bias, rngs=rngs)
