"""An English-Spanish parallel corpus from two public-domain Bibles, aligned by verse.

Source: Debian's SWORD modules of the World English Bible (package sword-text-web, module
engWEB2015eb) and the Reina-Valera 1909 (sword-text-sparv, module spaRV1909eb), read with the
PyPI `pysword` reader. Install and prepare (about 31k verse pairs, a minute):

    sudo apt-get install sword-text-web sword-text-sparv
    python -m seqjax.data.bible prepare [--sword-path /usr/share/sword] [--out data/bible]

`prepare` strips the OSIS markup (Strong's <w> tags, quotation <q> tags) and drops footnotes,
keeps the verses both texts have, assigns each verse to train / valid / test by a hash of its
reference (deterministic, 98% / 1% / 1%), and writes <out>/{train,valid,test}.tsv with columns
reference, English, Spanish.
"""

import argparse
import html
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}
SPLITS = ("train", "valid", "test")
DEFAULT_OUT = Path("data/bible")
_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE_BEFORE_PUNCTUATION = re.compile("\\s+([.,;:!?\u2019\u201d)\\]])")  # closing quotes too


def clean(raw: str) -> str:
  """Plain text of one verse of OSIS markup: footnotes dropped (they stand where a space was),
  tags removed, entities decoded, whitespace collapsed."""
  text = _TAG.sub("", _NOTE.sub(" ", raw))
  text = " ".join(html.unescape(text).split())
  return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)


def split_of(reference: str) -> str:
  bucket = zlib.crc32(reference.encode()) % 100
  return "test" if bucket == 99 else "valid" if bucket == 98 else "train"


def align(english: Mapping[str, str], spanish: Mapping[str, str]) -> dict[str, list[tuple[str, str, str]]]:
  """Raw verse markup by reference (e.g. 'Gen 1:1') in each language -> cleaned (reference,
  English, Spanish) rows per split, in the order of `english`; verses empty in either are dropped."""
  rows = {split: [] for split in SPLITS}
  for reference, raw_en in english.items():
    en, es = clean(raw_en), clean(spanish.get(reference, ""))
    if en and es:
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


def write(rows: Mapping[str, list[tuple[str, str, str]]], out: str | Path) -> Path:
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  for split, split_rows in rows.items():
    lines = ["\t".join(row) for row in split_rows]
    (out / f"{split}.tsv").write_text("".join(line + "\n" for line in lines))
  return out


def load(split: str, out: str | Path = DEFAULT_OUT) -> list[tuple[str, str, str]]:
  """(reference, English, Spanish) rows of a prepared split."""
  path = Path(out) / f"{split}.tsv"
  if split not in SPLITS:
    raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
  if not path.exists():
    raise ValueError(f"{path} is missing: prepare the corpus with `python -m seqjax.data.bible prepare --out {out}`")
  return [tuple(line.split("\t")) for line in path.read_text().splitlines()]


def main(argv=None):
  parser = argparse.ArgumentParser(description="Prepare the English-Spanish Bible corpus.")
  parser.add_argument("command", choices=["prepare"])
  parser.add_argument("--sword-path", default="/usr/share/sword")
  parser.add_argument("--out", default=str(DEFAULT_OUT))
  args = parser.parse_args(argv)
  rows = align(read_module(MODULES["en"], args.sword_path), read_module(MODULES["es"], args.sword_path))
  out = write(rows, args.out)
  print(", ".join(f"{split}: {len(r)} pairs" for split, r in rows.items()), "->", out)


if __name__ == "__main__":
  main()
