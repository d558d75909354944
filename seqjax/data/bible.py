"""An English-Spanish parallel corpus from two public-domain Bibles, aligned by verse.

Source: Debian's SWORD modules of the World English Bible (package sword-text-web, module
engWEB2015eb) and the Reina-Valera 1909 (sword-text-sparv, module spaRV1909eb), read with the
PyPI `pysword` reader. Install and prepare (about 31k verse pairs, a minute):

    sudo apt-get install sword-text-web sword-text-sparv
    python -m seqjax.data.bible prepare [--sword-path /usr/share/sword] [--out data/bible]

`prepare` strips the OSIS markup (Strong's <w> tags, quotation <q> tags) and drops footnotes,
cuts the WEB's glossary (appended to the text of Rev 22:21 in the module) from the English,
writes the Reina-Valera's chapter-opening drop capitals ("EN el principio", "Y FUERON
acabados") in the case the corpus uses elsewhere ("En el principio", "Y fueron acabados"),
keeps the verses both texts have, assigns each verse to train / valid / test by a hash of its
reference (deterministic, 98% / 1% / 1%), and writes <out>/{train,valid,test}.tsv with columns
reference, English, Spanish.

`load` and `prepare` use <repository>/data/bible unless told otherwise (`out`, or the
SEQJAX_BIBLE environment variable), whatever the working directory.
"""

import argparse
import collections
import html
import os
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}
SPLITS = ("train", "valid", "test")
_REPOSITORY_DATA = Path(__file__).resolve().parents[2] / "data" / "bible"
GLOSSARY = " World English Bible Glossary "  # where the WEB module's glossary starts, inside Rev 22:21
_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE_BEFORE_PUNCTUATION = re.compile("\\s+([.,;:!?\u2019\u201d)\\]])")  # closing quotes too


def clean(raw: str) -> str:
  """Plain text of one verse of OSIS markup: footnotes dropped (they stand where a space was),
  tags removed, entities decoded, whitespace collapsed."""
  text = _TAG.sub("", _NOTE.sub(" ", raw))
  text = " ".join(html.unescape(text).split())
  return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)


def default_out() -> Path:
  """SEQJAX_BIBLE if set, else data/bible in the repository (not the working directory)."""
  return Path(os.environ.get("SEQJAX_BIBLE", _REPOSITORY_DATA))


def _bare(word: str) -> str:
  return word.strip(".,;:!?¡¿()[]«»\"'")


def _drop_capitals(text: str) -> list[str]:
  """The leading words of a verse written all in capitals (a chapter's drop capital: "EN",
  "Y FUERON"), as written."""
  run = []
  for word in text.split():
    bare = _bare(word)
    if not (bare.isalpha() and bare.isupper()):
      break
    run.append(word)
  return run if any(len(_bare(w)) > 1 for w in run) else []


def normalize_drop_capitals(texts: list[str]) -> list[str]:
  """Each text's leading all-capital words in the case the texts use most elsewhere (e.g.
  "ACONTECIÓ" -> "aconteció", "JEHOVÁ" -> "Jehová"; a word never seen otherwise is taken for a
  name, "ACHAB" -> "Achab"), the first letter capital."""
  casing = collections.defaultdict(collections.Counter)
  for text in texts:
    for word in text.split()[len(_drop_capitals(text)) :]:
      bare = _bare(word)
      if bare and not bare.isupper():
        casing[bare.lower()][bare] += 1
  normalized = []
  for text in texts:
    run = _drop_capitals(text)
    if not run:
      normalized.append(text)
      continue
    words = []
    for word in run:
      bare = _bare(word)
      seen = casing.get(bare.lower())
      words.append(word.replace(bare, seen.most_common(1)[0][0] if seen else bare.capitalize()))
    words[0] = words[0][0].upper() + words[0][1:]
    normalized.append(" ".join(words + text.split()[len(run) :]))
  return normalized


def split_of(reference: str, *, valid_percent: int = 1, test_percent: int = 1) -> str:
  """The split of a verse, from a hash of its reference: the top `test_percent` of 100 hash
  buckets are test, the `valid_percent` below them valid; `prepare` writes 98 / 1 / 1. Growing
  test_percent moves the buckets below into test, so a verse tested at 1% stays a test verse."""
  for name, value in (("valid_percent", valid_percent), ("test_percent", test_percent)):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
      raise ValueError(f"{name} must be an integer in [0, 100], got {value!r}")
  if valid_percent + test_percent > 100:
    raise ValueError(f"valid_percent + test_percent must be <= 100, got {valid_percent} + {test_percent}")
  bucket = zlib.crc32(reference.encode()) % 100
  if bucket >= 100 - test_percent:
    return "test"
  return "valid" if bucket >= 100 - test_percent - valid_percent else "train"


def align(english: Mapping[str, str], spanish: Mapping[str, str]) -> dict[str, list[tuple[str, str, str]]]:
  """Raw verse markup by reference (e.g. 'Gen 1:1') in each language -> cleaned (reference,
  English, Spanish) rows per split, in the order of `english`; verses empty in either are dropped.
  The English loses the WEB glossary; the Spanish drop capitals are normalized."""
  pairs = []
  for reference, raw_en in english.items():
    en, es = clean(raw_en).split(GLOSSARY)[0], clean(spanish.get(reference, ""))
    if en and es:
      pairs.append((reference, en, es))
  spanish_texts = normalize_drop_capitals([es for _, _, es in pairs])
  rows = {split: [] for split in SPLITS}
  for (reference, en, _), es in zip(pairs, spanish_texts, strict=True):
    rows[split_of(reference)].append((reference, en, es))
  return rows


def read_module(name: str, sword_path: str | Path) -> dict[str, str]:
  """Every verse's raw markup in a SWORD module, by 'Book chapter:verse'."""
  from pysword.modules import SwordModules

  modules = SwordModules(str(sword_path))
  found = modules.parse_modules()
  if name not in found:
    raise ValueError(
      f"SWORD module {name} not found in {sword_path} (found {sorted(found)}); "
      "install it with: sudo apt-get install sword-text-web sword-text-sparv"
    )
  bible = modules.get_bible_from_module(name)
  verses = {}
  for testament in bible.get_structure().get_books().values():
    for book in testament:
      for chapter, count in enumerate(book.chapter_lengths, start=1):
        for verse in range(1, count + 1):
          verses[f"{book.osis_name} {chapter}:{verse}"] = bible.get(
            books=[book.name], chapters=[chapter], verses=[verse], clean=False
          )
  return verses


# what `load` splits a file's lines or a line's fields on (str.splitlines's line boundaries, and TAB)
_SEPARATORS = "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def write(rows: Mapping[str, list[tuple[str, str, str]]], out: str | Path) -> Path:
  """Each split's rows as <out>/<split>.tsv, one line per row (reference, English, Spanish). A
  field holding a TAB or a line boundary (newline, carriage return, U+0085, U+2028, ...; `clean`
  leaves none) is refused, before any file is written: `load` would read it back as other rows."""
  for split, split_rows in rows.items():
    for number, row in enumerate(split_rows):
      _check_row(f"rows[{split!r}][{number}]", row)
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  for split, split_rows in rows.items():
    lines = ["\t".join(row) for row in split_rows]
    (out / f"{split}.tsv").write_text("".join(line + "\n" for line in lines))
  return out


def _check_row(name: str, row) -> None:
  if len(row) != 3 or not all(isinstance(field, str) for field in row):
    raise ValueError(f"{name} must be 3 strings (reference, English, Spanish), got {row!r:.80}")
  for field in row:
    found = sorted({f"U+{ord(c):04X}" for c in field if c in _SEPARATORS})
    if found:
      raise ValueError(f"{name} holds {', '.join(found)} (a TAB or line boundary) in {field!r:.80}")


def load(split: str, out: str | Path | None = None) -> list[tuple[str, str, str]]:
  """(reference, English, Spanish) rows of a prepared split, from `out` (default: `default_out()`).
  A line that is not 3 tab-separated fields, or bytes that are not UTF-8, raise ValueError naming
  the file and line."""
  out = default_out() if out is None else Path(out)
  path = out / f"{split}.tsv"
  if split not in SPLITS:
    raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
  if not path.exists():
    raise ValueError(f"{path} is missing: prepare the corpus with `python -m seqjax.data.bible prepare --out {out}`")
  data = path.read_bytes()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as error:
    line = data[: error.start].count(b"\n") + 1
    raise ValueError(f"{path}:{line}: invalid UTF-8 ({error.reason} at byte {error.start})") from None
  rows = [tuple(line.split("\t")) for line in text.splitlines()]
  for number, row in enumerate(rows, 1):
    if len(row) != 3:
      raise ValueError(f"{path}:{number}: {len(row)} tab-separated fields, expected 3 (reference, English, Spanish)")
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description="Prepare the English-Spanish Bible corpus.")
  parser.add_argument("command", choices=["prepare"])
  parser.add_argument("--sword-path", default="/usr/share/sword")
  parser.add_argument("--out", default=None, help="default: $SEQJAX_BIBLE, else data/bible in the repository")
  args = parser.parse_args(argv)
  rows = align(read_module(MODULES["en"], args.sword_path), read_module(MODULES["es"], args.sword_path))
  out = write(rows, default_out() if args.out is None else args.out)
  print(", ".join(f"{split}: {len(r)} pairs" for split, r in rows.items()), "->", out)


if __name__ == "__main__":
  main()
