"""Token vocabularies with the special ids every model here assumes: PAD 0, BOS 1, EOS 2, UNK 3."""

from collections.abc import Iterable, Sequence

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class Vocab:
  """A fixed list of symbols (characters or words) after the four specials."""

  def __init__(self, symbols: Iterable[str]):
    self.symbols = list(SPECIALS) + sorted(set(symbols) - set(SPECIALS))
    self.index = {s: i for i, s in enumerate(self.symbols)}

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
    """Symbols up to the first EOS, without PAD and BOS."""
    out = []
    for i in ids:
      if i == EOS:
        break
      if i not in (PAD, BOS):
        out.append(self.symbols[i])
    return out
