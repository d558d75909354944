"""The English side of the prepared Bible corpus (`seqjax.data.bible`) as running text in book
order, for character-level language modelling: each book one string (verses joined by spaces,
chapters by newlines), every split's verses put back in their place. The book order is the
order the books first appear in train.tsv, which `prepare` writes in canonical order. Any other
text takes the same `CharSplit` through `seqjax.data.char_text`."""

from pathlib import Path

from seqjax.data import bible
from seqjax.data.char_text import CharSplit, vocabulary_of


def _position(reference: str) -> tuple[str, int, int]:
  """ "1Sam 3:10" -> ("1Sam", 3, 10)."""
  book, place = reference.rsplit(" ", 1)
  chapter, verse = place.split(":")
  return book, int(chapter), int(verse)


def books(out: str | Path | None = None) -> dict[str, str]:
  """book -> its English text, in book order."""
  verses = [(_position(ref), english) for split in bible.SPLITS for ref, english, _ in bible.load(split, out)]
  order = {}
  for ref, _, _ in bible.load("train", out):
    order.setdefault(_position(ref)[0], len(order))
  unknown = sorted({book for (book, _, _), _ in verses} - set(order))
  if unknown:
    raise ValueError(f"books {unknown} have no verse in train.tsv, so their place in the book order is unknown")
  chapters: dict[tuple[str, int], list[tuple[int, str]]] = {}
  for (book, chapter, verse), english in verses:
    chapters.setdefault((book, chapter), []).append((verse, english))
  text: dict[str, list[str]] = {book: [] for book in sorted(order, key=order.get)}
  for (book, _), rows in sorted(chapters.items(), key=lambda item: (order[item[0][0]], item[0][1])):
    text[book].append(" ".join(english for _, english in sorted(rows)))
  return {book: "\n".join(chapters_) for book, chapters_ in text.items()}


def split_by_book(by_book: dict[str, str], valid_every: int) -> CharSplit:
  """Every `valid_every`-th book (the 10th, 20th, ... with 10) is held out for validation, whole
  (`held_out`: their names). The vocabulary holds the characters of both parts."""
  if not isinstance(valid_every, int) or valid_every < 2:
    raise ValueError(f"valid_every must be an integer >= 2 (every n-th book held out), got {valid_every!r}")
  if len(by_book) < valid_every:
    raise ValueError(f"valid_every={valid_every} holds out no book of the {len(by_book)} given")
  names = list(by_book)
  held = tuple(name for index, name in enumerate(names, start=1) if index % valid_every == 0)
  train = "\n\n".join(by_book[name] for name in names if name not in held)
  valid = "\n\n".join(by_book[name] for name in held)
  return CharSplit(train, valid, held, vocabulary_of(train, valid))
