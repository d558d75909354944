"""A subword tokenizer (sentencepiece unigram) trained on a training split, in memory, deterministically.

Normalization (applied to the training texts and to every text encoded):

- "nfkc" (the default, sentencepiece's nmt_nfkc): Unicode NFKC ("ﬁ" -> "fi", fullwidth letters ->
  ASCII); tabs, carriage returns and line or paragraph separators (U+2028, U+2029) become spaces;
  runs of spaces become one, and leading and trailing spaces are dropped. So decode(encode(text))
  may differ from text.
- "identity": the text as it is, whitespace included (decode(encode(text)) == text for text whose
  characters the training texts hold).

In both, NUL and characters the training texts lack encode to UNK.
"""

import io
from collections.abc import Iterable

import sentencepiece as spm

from seqjax import _validate
from seqjax.data.vocab import BOS, EOS, PAD, UNK

MAX_LINE_BYTES = 4192  # sentencepiece's default max_sentence_length: longer training lines are skipped
NORMALIZATIONS = {  # our name -> sentencepiece's trainer options (none: its defaults, as models before the option)
  "nfkc": {},
  "identity": {"normalization_rule_name": "identity", "remove_extra_whitespaces": False},
}


class Subwords:
  """Token ids share the package's specials: PAD 0, BOS 1, EOS 2, UNK 3. `texts` must hold at
  least one line with a non-space character and at most MAX_LINE_BYTES bytes of UTF-8 (longer
  ones are left out of training); `normalization`: "nfkc" or "identity" (the module docstring)."""

  def __init__(self, texts: Iterable[str], *, vocab_size: int, normalization: str = "nfkc"):
    _validate.positive_int("vocab_size", vocab_size)
    _validate.choice("normalization", normalization, NORMALIZATIONS)
    texts = list(texts)
    _check_trainable(texts)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
      sentence_iterator=iter(texts),
      model_writer=model,
      vocab_size=vocab_size,
      model_type="unigram",
      pad_id=PAD,
      bos_id=BOS,
      eos_id=EOS,
      unk_id=UNK,
      num_threads=1,  # deterministic
      minloglevel=2,
      hard_vocab_limit=False,
      **NORMALIZATIONS[normalization],
    )
    self.model = model.getvalue()  # keep it to save with a run
    self.processor = spm.SentencePieceProcessor(model_proto=self.model)

  def __len__(self) -> int:
    return self.processor.get_piece_size()

  def encode(self, text: str) -> list[int]:
    return self.processor.encode(text)

  def decode(self, ids: Iterable[int]) -> str:
    """Text up to the first EOS."""
    kept = []
    for i in ids:
      if i == EOS:
        break
      kept.append(int(i))
    return self.processor.decode([i for i in kept if i not in (PAD, BOS)])


def _check_trainable(texts: list[str]) -> None:
  """ValueError unless some text is a line sentencepiece trains on: not blank, not too long."""
  if not all(isinstance(text, str) for text in texts):
    kinds = sorted({type(text).__name__ for text in texts if not isinstance(text, str)})
    raise ValueError(f"texts must be strings, got {', '.join(kinds)}")
  blank = sum(not text.strip() for text in texts)
  too_long = sum(bool(text.strip()) and len(text.encode()) > MAX_LINE_BYTES for text in texts)
  if blank + too_long == len(texts):
    raise ValueError(
      f"texts must hold at least one line to train on (a non-space character, at most {MAX_LINE_BYTES} bytes of "
      f"UTF-8), got {len(texts)} texts: {blank} empty or blank, {too_long} longer than {MAX_LINE_BYTES} bytes"
    )
