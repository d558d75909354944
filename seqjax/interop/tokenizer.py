"""Text in and out of a Hugging Face model folder: `load_tokenizer(folder)` reads the tokenizer the
model was trained with through the `tokenizers` library, built as transformers 5 builds it, from
the first of these the folder holds:

    tokenizer.json            any tokenizer transformers saves (GPT-2's, BERT's and T5's downloads hold one)
    vocab.json + merges.txt   GPT-2's byte-level BPE; tokenizer_config.json's add_prefix_space (default false)
    vocab.txt                 BERT's WordPiece, [CLS] text [SEP]; tokenizer_config.json's do_lower_case
                              (default true), strip_accents and tokenize_chinese_chars

The special ids are the ones the model's config names (bos_token_id, eos_token_id, pad_token_id,
decoder_start_token_id): generation_config.json's where it names them, as transformers' `generate`
reads them, else config.json's; each is checked to be a token of the tokenizer, and the
tokenizer's vocabulary to fit the model's `vocab_size`. `decode` leaves the special
tokens out. `python -m seqjax.generate FOLDER --prompt TEXT` goes from a string to a string with it.
"""

import dataclasses
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors

from seqjax.interop.safetensors_folder import CONFIG, read_json_object

TOKENIZER_JSON, BPE_FILES, WORDPIECE_FILE = "tokenizer.json", ("vocab.json", "merges.txt"), "vocab.txt"
OPTIONS, GENERATION = "tokenizer_config.json", "generation_config.json"
SPECIAL_IDS = {  # Tokenizer field -> the config.json key that names it
  "bos_id": "bos_token_id",
  "eos_id": "eos_token_id",
  "pad_id": "pad_token_id",
  "decoder_start_id": "decoder_start_token_id",
}
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
  backend: tokenizers.Tokenizer
  bos_id: int | None  # the special ids the model's config.json names (None: not named)
  eos_id: int | None
  pad_id: int | None
  decoder_start_id: int | None  # the first token an encoder-decoder's decoder reads (T5: the pad id)

  @property
  def vocab_size(self) -> int:
    return self.backend.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> list[int]:
    """Text -> ids, with the special tokens the model's tokenizer adds around a text (BERT's [CLS]
    and [SEP], T5's </s>; none for GPT-2)."""
    if not isinstance(text, str):
      raise ValueError(f"text must be a str, got {type(text).__name__}")
    return self.backend.encode(text).ids

  def decode(self, ids) -> str:
    """Ids (integers in [0, vocab_size)) -> text, the special tokens left out."""
    ids = np.asarray(ids).reshape(-1)
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= self.vocab_size):
      got = f"min {ids.min()}, max {ids.max()}" if np.issubdtype(ids.dtype, np.integer) else f"dtype {ids.dtype}"
      raise ValueError(f"ids must be integers in [0, {self.vocab_size}) (the tokenizer's vocabulary), got {got}")
    return self.backend.decode(ids.tolist(), skip_special_tokens=True)


def load_tokenizer(path: str | Path) -> Tokenizer:
  """A Hugging Face model folder's tokenizer (files above) with the special ids its config.json names."""
  folder = Path(path)
  if not (folder / CONFIG).is_file():
    raise ValueError(f"path must be a Hugging Face model folder holding {CONFIG}, got {str(path)!r}")
  config = read_json_object(folder / CONFIG)
  ids = _special_ids(folder, config)
  backend = _backend(folder, ids)
  size = backend.get_vocab_size(with_added_tokens=True)
  model_size = config.get("vocab_size")
  if isinstance(model_size, int) and size > model_size:
    raise ValueError(
      f"the tokenizer in {folder} has {size} tokens, more than the {model_size} of {CONFIG}'s vocab_size: "
      "it is not this model's tokenizer"
    )
  for field, value in ids.items():
    if value is not None and value >= size:
      raise ValueError(f"{SPECIAL_IDS[field]} {value} is not a token of the tokenizer ({size} tokens)")
  return Tokenizer(backend, **ids)


def _special_ids(folder: Path, config: dict) -> dict[str, int | None]:
  """Tokenizer field -> the id generation_config.json names, else the one config.json names, else None."""
  generation = read_json_object(folder / GENERATION) if (folder / GENERATION).is_file() else {}
  ids = {}
  for field, key in SPECIAL_IDS.items():
    named = _special_id(generation, GENERATION, key)
    ids[field] = _special_id(config, CONFIG, key) if named is None else named
  return ids


def _special_id(config: dict, file: str, key: str) -> int | None:
  value = config.get(key)
  if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
    raise ValueError(f"{file}: {key} must be one token id (an integer >= 0) or null, got {value!r}")
  return value


def _backend(folder: Path, ids: dict[str, int | None]) -> tokenizers.Tokenizer:
  if (folder / TOKENIZER_JSON).is_file():
    return _read(folder / TOKENIZER_JSON, tokenizers.Tokenizer.from_file)
  options = read_json_object(folder / OPTIONS) if (folder / OPTIONS).is_file() else {}
  if any((folder / name).is_file() for name in BPE_FILES):
    return _byte_level_bpe(folder, options, ids)
  if (folder / WORDPIECE_FILE).is_file():
    return _wordpiece(folder, options)
  raise ValueError(
    f"{folder} holds no tokenizer: expected {TOKENIZER_JSON}, {' + '.join(BPE_FILES)} (GPT-2) or {WORDPIECE_FILE} "
    "(BERT) beside config.json"
  )


def _read(file: Path, reader, *args):
  """reader(file, ...), its errors (the tokenizers library raises bare Exceptions) as a ValueError naming the file."""
  try:
    return reader(str(file), *args)
  except Exception as error:
    raise ValueError(f"{file} is not a readable tokenizer file ({error})") from error


def _option(options: dict, name: str, default, kinds: tuple[type, ...]):
  value = options.get(name, default)
  if not isinstance(value, kinds):
    raise ValueError(f"{OPTIONS}: {name} must be one of {[k.__name__ for k in kinds]}, got {value!r}")
  return value


def _byte_level_bpe(folder: Path, options: dict, ids: dict[str, int | None]) -> tokenizers.Tokenizer:
  """GPT-2's tokenizer as transformers' GPT2Tokenizer builds it from vocab.json and merges.txt; the
  tokens at the ids config.json names (GPT-2: <|endoftext|>) are its special tokens."""
  missing = [name for name in BPE_FILES if not (folder / name).is_file()]
  if missing:
    raise ValueError(f"{folder} lacks {missing[0]}: GPT-2's byte-level BPE needs both {' and '.join(BPE_FILES)}")
  backend = tokenizers.Tokenizer(_read(folder / BPE_FILES[0], models.BPE.from_file, str(folder / BPE_FILES[1])))
  add_prefix_space = _option(options, "add_prefix_space", False, (bool,))
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
  backend.decoder = decoders.ByteLevel()
  named = sorted({value for value in ids.values() if value is not None})
  tokens = [backend.id_to_token(value) for value in named]
  absent = [value for value, token in zip(named, tokens, strict=True) if token is None]
  if absent:
    raise ValueError(f"the config names special ids {absent} that {folder / BPE_FILES[0]} does not hold")
  backend.add_special_tokens([AddedToken(token, special=True) for token in tokens])
  return backend


def _wordpiece(folder: Path, options: dict) -> tokenizers.Tokenizer:
  """BERT's tokenizer as transformers' BertTokenizer builds it from vocab.txt."""
  file = folder / WORDPIECE_FILE
  backend = tokenizers.Tokenizer(_read(file, models.WordPiece.from_file))
  vocabulary = backend.get_vocab()
  missing = [token for token in ("[UNK]", "[CLS]", "[SEP]") if token not in vocabulary]
  if missing:
    raise ValueError(f"{file} lacks the WordPiece special tokens {missing}")
  backend.normalizer = normalizers.BertNormalizer(
    clean_text=True,
    handle_chinese_chars=_option(options, "tokenize_chinese_chars", True, (bool,)),
    strip_accents=_option(options, "strip_accents", None, (bool, type(None))),
    lowercase=_option(options, "do_lower_case", True, (bool,)),
  )
  backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  backend.decoder = decoders.WordPiece(prefix="##")
  backend.post_processor = processors.BertProcessing(
    ("[SEP]", vocabulary["[SEP]"]), ("[CLS]", vocabulary["[CLS]"])
  )  # fmt: skip
  backend.add_special_tokens([AddedToken(token, special=True) for token in BERT_SPECIALS if token in vocabulary])
  return backend
