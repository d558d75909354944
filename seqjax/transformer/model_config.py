"""What every Transformer model config (GPTConfig, BertConfig, ViTConfig, EncoderDecoderConfig)
shares: its blocks' options as one embedded `TransformerBlockConfig`, `block`, and its checks."""

import dataclasses

from seqjax import _validate
from seqjax.transformer.blocks import TransformerBlockConfig

BLOCK_FIELDS = frozenset(field.name for field in dataclasses.fields(TransformerBlockConfig))


def embeds_block(cls):
  """Class decorator for a frozen model-config dataclass whose field `block` (its default: the
  model's published block) holds its blocks' options.

  The constructor also takes the block's fields flat: GPTConfig(dim=32, num_heads=4) is
  GPTConfig(block=dataclasses.replace(<default block>, dim=32, num_heads=4)), and a field given flat
  replaces that field of a `block` given too (so dataclasses.replace(config, dim=64) works). It is
  how configs were spelled before the block was embedded, and how their saved dicts still load:
  Config(**saved) reads an old flat dict as it reads a new one, whose `block` is a dict.
  `cls.flat_aliases` maps a flat name to the block fields it sets (GPT's and BERT's one
  dropout_rate set both dropout rates, as it did). Reading config.dim reads config.block.dim."""
  generated = cls.__init__
  default_block = cls.__dataclass_fields__["block"].default
  aliases = getattr(cls, "flat_aliases", {})

  def __init__(self, *args, block=default_block, **fields):
    if isinstance(block, dict):
      block = TransformerBlockConfig(**block)
    if not isinstance(block, TransformerBlockConfig):
      raise ValueError(f"block must be a TransformerBlockConfig (or its dict), got {type(block).__name__}")
    flat = {name: fields.pop(name) for name in list(fields) if name in BLOCK_FIELDS}
    expanded = {target: value for name, value in flat.items() for target in aliases.get(name, (name,))}
    generated(self, *args, block=dataclasses.replace(block, **(expanded | flat)), **fields)

  def __getattr__(self, name):  # only for names no field or attribute of the class holds
    if name in BLOCK_FIELDS:
      return getattr(self.block, name)
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

  __init__.__doc__ = generated.__doc__
  cls.__init__ = __init__
  cls.__getattr__ = __getattr__
  cls.flat_fields = frozenset(BLOCK_FIELDS)  # the names its constructor takes beside its fields (harness.redraw)
  return cls


def check_model(config, *, positive: tuple[str, ...], **choices) -> None:
  """A model config's own `positive` fields and `choices` (as `_validate.fields`), then its block's."""
  _validate.fields(config, positive=positive, **choices)
  config.block.check()
