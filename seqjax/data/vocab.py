"""Token vocabularies with the special ids every model here assumes: PAD 0, BOS 1, EOS 2, UNK 3."""

from collections.abc import Iterable, Sequence

import numpy as np

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class Vocab:
  """A fixed list of symbols (characters or words) after the four specials. Text never encodes to
  a special id but UNK (for symbols outside the list): a symbol spelled like a special's name
  ("<eos>" in the text) is a symbol of its own, after the specials, and decodes to its text."""

  def __init__(self, symbols: Iterable[str]):
    self.symbols = list(SPECIALS) + sorted(set(symbols))
    self.index = {s: i for i, s in enumerate(self.symbols) if i >= len(SPECIALS)}  # text -> id: no special

  @classmethod
  def characters(cls, texts: Iterable[str]) -> "Vocab":
    return cls(ch for text in texts for ch in text)

  @classmethod
  def words(cls, texts: Iterable[str]) -> "Vocab":
    return cls(w for text in texts for w in text.split())

  def __len__(self) -> int:
    return len(self.symbols)

  def encode(self, symbols: Sequence[str]) -> list[int]:
    return [self.index.get(s, UNK) for s in symbols]

  def decode(self, ids: Iterable[int]) -> list[str]:
    """Symbols up to the first EOS, without PAD and BOS. Every id must be an integer in [0, len)."""
    ids = np.asarray(list(ids))
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= len(self)):
      got = f"dtype {ids.dtype}" if not np.issubdtype(ids.dtype, np.integer) else f"min {ids.min()}, max {ids.max()}"
      raise ValueError(f"ids must be integers in [0, {len(self)}) (the vocabulary), got {got}")
    out = []
    for i in ids.tolist():
      if i == EOS:
        break
      if i not in (PAD, BOS):
        out.append(self.symbols[i])
    return out
