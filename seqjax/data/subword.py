"""A subword tokenizer (sentencepiece unigram) trained on a training split, in memory, deterministically."""

import io
from collections.abc import Iterable

import sentencepiece as spm

from seqjax.data.vocab import BOS, EOS, PAD, UNK


class Subwords:
  """Token ids share the package's specials: PAD 0, BOS 1, EOS 2, UNK 3."""

  def __init__(self, texts: Iterable[str], *, vocab_size: int):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
      sentence_iterator=iter(list(texts)),
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
