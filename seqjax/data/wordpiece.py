"""WordPiece (BERT's tokenizer) over words already split: each word, lowercased for uncased
vocabularies, becomes its longest vocabulary prefix, then "##"-marked longest continuations;
a word with no such split becomes [UNK]. Reads a Hugging Face folder's vocab.txt (one piece per
line, the line number its id). Punctuation splitting and accent stripping are not done here: the
callers pass plain words.
"""

from pathlib import Path


class WordPiece:
  def __init__(self, pieces: list[str], *, lowercase: bool = True):
    self.ids = {piece: index for index, piece in enumerate(pieces)}
    for special in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
      if special not in self.ids:
        raise ValueError(f"the vocabulary lacks {special}")
    self.lowercase = lowercase

  @classmethod
  def from_folder(cls, path: str | Path, *, lowercase: bool = True) -> "WordPiece":
    vocab = Path(path) / "vocab.txt"
    if not vocab.is_file():
      raise ValueError(f"path must hold a WordPiece vocab.txt, got {str(path)!r}")
    return cls(vocab.read_text(encoding="utf-8").splitlines(), lowercase=lowercase)

  def word(self, word: str) -> list[int]:
    """One word -> its piece ids (greedy longest match), or [UNK]'s id."""
    word = word.lower() if self.lowercase else word
    pieces, start = [], 0
    while start < len(word):
      for end in range(len(word), start, -1):
        piece = word[start:end] if start == 0 else "##" + word[start:end]
        if piece in self.ids:
          pieces.append(self.ids[piece])
          start = end
          break
      else:
        return [self.ids["[UNK]"]]
    return pieces

  def sentence(self, words: list[str]) -> tuple[list[int], list[int]]:
    """[CLS] words [SEP] -> (ids, the index in ids of each word's first piece)."""
    ids, firsts = [self.ids["[CLS]"]], []
    for word in words:
      firsts.append(len(ids))
      ids += self.word(word)
    return [*ids, self.ids["[SEP]"]], firsts
