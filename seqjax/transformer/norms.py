"""LayerNorm as PyTorch computes it: the variance in two passes, E[(x - mean)^2].

flax's default (use_fast_variance) computes E[x^2] - mean^2, which cancels catastrophically when
the mean is large against the spread: at activations of mean 100 and unit spread it is ~1e-2 off
in float32, and real checkpoints carry such offsets. Every LayerNorm of seqjax is built here.
"""

from flax import nnx


def layer_norm(dim: int, *, epsilon: float, use_bias: bool = True, rngs: nnx.Rngs) -> nnx.LayerNorm:
  return nnx.LayerNorm(dim, epsilon=epsilon, use_bias=use_bias, use_fast_variance=False, rngs=rngs)
