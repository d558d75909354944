"""A stack of dilated 1-D convolutions (van den Oord et al. 2016, WaveNet; Kalchbrenner et al.
2016, ByteNet; Gehring et al. 2017's GLU units). Layer l has dilation dilation_base ** l:

    y_t = b + sum_{i=0}^{k-1} W_i x_{t - (k-1-i) d}              causal: left-padded by (k-1) d
    h  <- h + unit(conv(h))        (residual)      unit: relu | gated tanh(a) * sigmoid(g) | glu a * sigmoid(g)

so the receptive field, the inputs one output can see, is 1 + (k - 1) * sum of the dilations:
it doubles with each layer at kernel size 2 and dilation base 2 (2 ** L positions after L layers).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.mixer import checked_padding, zero_padding

UNITS = ("relu", "gated", "glu")


class DilatedConvStack(nnx.Module):
  """stack(x [B, T, F_in], *, mask [B, T] bool | None = None, dropout_key=None) -> [B, T, features];
  a sequence mixer (`seqjax.zoo`; it has no dropout: dropout_key is accepted and unused).

  An input projection to `features`, then `num_layers` dilated convolutions. causal=True pads on
  the left only, so no output depends on a later input (WaveNet, a decoder); causal=False pads
  both sides (ByteNet's encoder). gated=True uses WaveNet's tanh x sigmoid unit, glu=True the
  GLU of ConvSeq2Seq; otherwise ReLU. mask (False on padding) zeroes the padding before every
  layer and in the output, so it never reaches a real position.
  """

  def __init__(
    self,
    in_features: int,
    features: int,
    num_layers: int,
    *,
    kernel_size: int = 2,
    dilation_base: int = 2,
    causal: bool = True,
    residual: bool = True,
    gated: bool = False,
    glu: bool = False,
    rngs: nnx.Rngs,
  ):
    for name, value in (("in_features", in_features), ("features", features), ("num_layers", num_layers)):
      _validate.positive_int(name, value)
    _validate.positive_int("kernel_size", kernel_size)
    _validate.positive_int("dilation_base", dilation_base)
    if gated and glu:
      raise ValueError("gated (WaveNet's tanh x sigmoid) and glu (ConvSeq2Seq's a x sigmoid(b)) exclude each other")
    self.unit = "gated" if gated else "glu" if glu else "relu"
    self.dilations = tuple(dilation_base**layer for layer in range(num_layers))
    self.receptive_field = 1 + (kernel_size - 1) * sum(self.dilations)
    self.in_features, self.features, self.kernel_size = in_features, features, kernel_size
    self.causal, self.residual = causal, residual
    width = features if self.unit == "relu" else 2 * features  # gated units split [a; g]

    def conv(dilation: int) -> nnx.Conv:
      span = (kernel_size - 1) * dilation  # inputs before (causal) or around each output
      padding = (span, 0) if causal else (span // 2, span - span // 2)
      return nnx.Conv(features, width, (kernel_size,), kernel_dilation=(dilation,), padding=(padding,), rngs=rngs)

    self.project = nnx.Linear(in_features, features, rngs=rngs)
    self.convs = nnx.List([conv(d) for d in self.dilations])

  def _unit(self, h: jax.Array) -> jax.Array:
    if self.unit == "relu":
      return jax.nn.relu(h)
    a, g = jnp.split(h, 2, axis=-1)  # [B, T, features] each
    return (jnp.tanh(a) if self.unit == "gated" else a) * jax.nn.sigmoid(g)

  @property
  def out_features(self) -> int:
    return self.features

  def __call__(self, x: jax.Array, *, mask: jax.Array | None = None, dropout_key=None) -> jax.Array:
    del dropout_key  # no dropout in this stack
    keep = checked_padding(x, mask, self.in_features, feature_axis="F")  # [B, T, 1] or None
    h = self.project(x)  # [B, T, features]
    for conv in self.convs:
      h = zero_padding(h, keep)  # padding reads as zeros
      y = self._unit(conv(h))  # [B, T, features]
      h = h + y if self.residual else y
    return zero_padding(h, keep)
