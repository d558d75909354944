"""Any text as data for a character-level language model: its vocabulary (every character the text
holds, sorted: a character's id is its index), ids and back, a held-out split, fixed evaluation
windows and a seeded window sampler. `seqjax.data.bible_text` splits the Bible corpus by whole
books into the same `CharSplit`; `python -m experiments.charlm default --text FILE` trains on a
file through these (docs/experiments.md, "Your own text").

    split = split_tail(read_text("notes.txt"), 10, name="notes.txt")  # the last tenth held out
    train_ids = encode(split.train, split.vocabulary)  # [N] int32
    draw = window_sampler(train_ids, context=128, batch_size=16, seed=0)
    batch = draw(step)  # [16, 129]: inputs [:, :-1], next-character targets [:, 1:]
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class CharSplit:
  train: str
  valid: str
  held_out: tuple[str, ...]  # what `valid` is: the Bible's books by name, or a file's last characters
  vocabulary: str  # every character of both parts (which exist, no statistics), sorted: token id = index


def vocabulary_of(train: str, valid: str) -> str:
  return "".join(sorted(set(train) | set(valid)))


def read_text(path: str | Path) -> str:
  """A UTF-8 text file's characters (line ends kept as written); a missing file or bytes that are
  not UTF-8 are refused naming the file (and the byte offset)."""
  file = Path(path)
  if not file.is_file():
    raise ValueError(f"text must be a UTF-8 text file, got {str(path)!r} (no such file)")
  data = file.read_bytes()
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as error:
    raise ValueError(f"text {str(path)!r} is not UTF-8: byte {error.start} ({error.reason})") from None


def split_tail(text: str, valid_every: int, *, name: str = "the text") -> CharSplit:
  """The last 1/valid_every of the characters held out for validation, the rest for training (as
  nanoGPT's character recipes hold out the last tenth)."""
  if not isinstance(valid_every, int) or isinstance(valid_every, bool) or valid_every < 2:
    raise ValueError(f"valid_every must be an integer >= 2 (the last 1/n held out), got {valid_every!r}")
  held = len(text) // valid_every
  if held == 0:
    raise ValueError(f"{name} has {len(text)} characters: too few to hold out 1/{valid_every} of them")
  train, valid = text[:-held], text[-held:]
  return CharSplit(train, valid, (f"the last {held:,} characters of {name}",), vocabulary_of(train, valid))


def encode(text: str, vocabulary: str) -> np.ndarray:
  """Characters -> ids [len(text)] int32; a character outside the vocabulary is refused by name."""
  index = {c: i for i, c in enumerate(vocabulary)}
  unknown = sorted(set(text) - set(index))
  if unknown:
    raise ValueError(f"the text holds characters outside the vocabulary: unknown characters: {unknown}")
  return np.fromiter((index[c] for c in text), np.int32, len(text))


def decode(ids, vocabulary: str) -> str:
  """Ids (integers in [0, len(vocabulary))) -> the characters they stand for."""
  ids = np.asarray(ids)
  if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= len(vocabulary)):
    got = f"min {ids.min()}, max {ids.max()}" if np.issubdtype(ids.dtype, np.integer) else f"dtype {ids.dtype}"
    raise ValueError(f"ids must be integers in [0, {len(vocabulary)}) (the vocabulary), got {got}")
  return "".join(vocabulary[i] for i in ids.reshape(-1).tolist())


def fixed_windows(ids: np.ndarray, count: int, context: int) -> np.ndarray:
  """count windows of context + 1 ids evenly spaced over ids (an evaluation set): [count, context + 1]."""
  if len(ids) < context + 1:
    raise ValueError(f"the held-out text has {len(ids)} characters, fewer than a window of context + 1 = {context + 1}")
  starts = np.linspace(0, len(ids) - context - 1, count).astype(int)
  return ids[starts[:, None] + np.arange(context + 1)]


def window_sampler(ids: np.ndarray, context: int, batch_size: int, seed: int) -> Callable[[int], np.ndarray]:
  """step -> batch_size windows of context + 1 ids [B, context + 1], their starts drawn uniformly from
  [0, len(ids) - context - 1) by (seed, step) alone: the same step gives the same batch, so a resumed
  run sees the data an uninterrupted one would."""
  if len(ids) < context + 2:
    raise ValueError(f"the training text has {len(ids)} characters, fewer than context + 2 = {context + 2}")
  offsets = np.arange(context + 1)

  def draw(step: int) -> np.ndarray:
    starts = np.random.default_rng([seed, step]).integers(0, len(ids) - context - 1, batch_size)
    return ids[starts[:, None] + offsets]

  return draw
