"""What every Transformer config checks: sizes, rates, choices, heads dividing the width."""

from seqjax import _validate
from seqjax.attention.dispatch import IMPLEMENTATIONS
from seqjax.transformer.blocks import ACTIVATIONS

SIZES = ("dim", "num_heads", "ff_dim")


def check_transformer(config, *, positive: tuple[str, ...], **choices) -> None:
  """`positive` fields beyond SIZES, `choices` as `_validate.fields`; dropout_rate in [0, 1),
  layer_norm_epsilon > 0, dim divisible by num_heads, activation and attention_implementation
  (where the config has them) from their sets."""
  for name, allowed in (("activation", ACTIVATIONS), ("attention_implementation", IMPLEMENTATIONS)):
    if hasattr(config, name):
      choices[name] = allowed
  _validate.fields(config, positive=SIZES + positive, probabilities=("dropout_rate",), **choices)
  _validate.finite_number("layer_norm_epsilon", config.layer_norm_epsilon, low=0.0, inclusive=False)
  if getattr(config, "head_dim", None) is None and config.dim % config.num_heads:
    raise ValueError(f"dim {config.dim} must be divisible by num_heads {config.num_heads} (or set head_dim)")
