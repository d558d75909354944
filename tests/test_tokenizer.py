"""Tokenizers of Hugging Face folders and `python -m seqjax.generate`: tokenizers trained on the spot
(the `tokenizers` library), saved in each format a folder may hold (tokenizer.json by transformers,
GPT-2's vocab.json + merges.txt, BERT's vocab.txt), encode and decode as transformers' own
tokenizer loaded from the same folder does; the command line goes from a string to the string
transformers' `generate` writes with the folder's model. Offline: tiny configs, redrawn weights."""

import json

import pytest

from seqjax import generate
from seqjax.interop import load_tokenizer
from tests.helpers import redraw_torch

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CORPUS = [
  "In the beginning God created the heavens and the earth.",
  "The earth was formless and empty. Darkness was on the surface of the deep.",
  "Caf\u00e9 na\u00efve \u00fcber: accents, numbers 1234 and   extra   spaces!",
] * 10
PROBES = [
  "In the beginning",
  " the deep earth",
  "Caf\u00e9 \u00dcBER, 99 na\u00efve!",
  "unseen w\u00f6rds \u4e2d\u6587 <|endoftext|> tail",
  "",
]
END = "<|endoftext|>"


def byte_level_bpe():
  bpe = tokenizers.ByteLevelBPETokenizer()
  bpe.train_from_iterator(CORPUS, vocab_size=320, min_frequency=1, special_tokens=[END])
  return bpe


def gpt2_folder(folder, *, files: str = "tokenizer.json"):
  """A GPT-2 folder as transformers writes it, with a byte-level BPE trained here (files: its format)."""
  bpe = byte_level_bpe()
  end = bpe.token_to_id(END)
  config = transformers.GPT2Config(
    vocab_size=bpe.get_vocab_size(), n_positions=64, n_embd=16, n_layer=2, n_head=2, bos_token_id=end, eos_token_id=end
  )  # fmt: skip
  model = redraw_torch(transformers.GPT2LMHeadModel(config))
  model.save_pretrained(folder)
  if files == "tokenizer.json":
    transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer).save_pretrained(folder)
  else:  # transformers 5 writes tokenizer.json alone; GPT-2's download also holds the files the library writes
    bpe.save_model(str(folder))
  return model, folder


def bert_folder(folder, *, lowercase: bool = True, files: str = "vocab.txt"):
  wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=lowercase)
  wordpiece.train_from_iterator(CORPUS, vocab_size=200, min_frequency=1)
  transformers.BertConfig(vocab_size=wordpiece.get_vocab_size(), hidden_size=8, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=8).save_pretrained(folder)  # fmt: skip
  if files == "tokenizer.json":
    transformers.BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=lowercase).save_pretrained(
      folder
    )
  else:
    wordpiece.save_model(str(folder))
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lowercase}))
  return folder


def assert_same_as_transformers(folder):
  ours, theirs = load_tokenizer(folder), transformers.AutoTokenizer.from_pretrained(folder)
  assert ours.vocab_size == len(theirs)
  for text in PROBES:
    ids = theirs(text)["input_ids"]
    assert ours.encode(text) == ids, text
    assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True), text
  return ours


@pytest.mark.parametrize("files", ["tokenizer.json", "vocab.json + merges.txt"])
def test_gpt2_tokenizer_encodes_and_decodes_as_transformers(tmp_path, files):
  _, folder = gpt2_folder(tmp_path, files=files)
  assert (folder / "tokenizer.json").is_file() == (files == "tokenizer.json")
  ours = assert_same_as_transformers(folder)
  end = byte_level_bpe().token_to_id(END)
  assert (ours.bos_id, ours.eos_id, ours.pad_id, ours.decoder_start_id) == (end, end, None, None)
  assert ours.encode(f"a{END}b")[1] == end and ours.decode(ours.encode(f"a{END}b")) == "ab"  # one special token


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
@pytest.mark.parametrize("files", ["tokenizer.json", "vocab.txt"])
def test_bert_tokenizer_encodes_and_decodes_as_transformers(tmp_path, files, lowercase):
  ours = assert_same_as_transformers(bert_folder(tmp_path, lowercase=lowercase, files=files))
  assert ours.pad_id == 0 and ours.eos_id is None


def t5_folder(folder):
  """A T5 folder with a unigram tokenizer trained here, </s> after each text as T5's does."""
  unigram = tokenizers.SentencePieceUnigramTokenizer()
  unigram.train_from_iterator(CORPUS, vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
  unigram._tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
    single="$A </s>", special_tokens=[("</s>", 1)]
  )
  hf = transformers.T5TokenizerFast(tokenizer_object=unigram._tokenizer, pad_token="<pad>", eos_token="</s>",
                                    unk_token="<unk>", extra_ids=0)  # fmt: skip
  hf.save_pretrained(folder)
  config = transformers.T5Config(
    vocab_size=len(hf), decoder_start_token_id=0, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_decoder_layers=2,
    num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
  )  # fmt: skip
  model = redraw_torch(transformers.T5ForConditionalGeneration(config), seed=3)
  model.save_pretrained(folder)
  return model, hf


def hf_text(model, tokenizer, prompt: str, **options) -> str:
  with torch.no_grad():
    ids = model.generate(torch.tensor([tokenizer(prompt)["input_ids"]]), do_sample=False, **options)
  return tokenizer.decode(ids[0], skip_special_tokens=True)


def test_generate_prints_the_text_transformers_generates_greedily(tmp_path, capsys):
  model, folder = gpt2_folder(tmp_path)
  theirs = hf_text(model, transformers.AutoTokenizer.from_pretrained(folder), "The earth", max_new_tokens=12)
  text = generate.main([str(folder), "--prompt", "The earth", "--max-new-tokens", "12"])
  assert text == theirs and text.startswith("The earth") and len(text) > len("The earth")
  assert capsys.readouterr().out == text + "\n"
  top_1 = generate.main([str(folder), "--prompt", "The earth", "--max-new-tokens", "12", "--top-k", "1"])
  assert top_1 == text  # sampling from the most likely token alone is greedy
  drawn = [str(folder), "--prompt", "The earth", "--max-new-tokens", "12", "--temperature", "2", "--seed", "4"]
  assert generate.main(drawn) == generate.main(drawn)  # the seed fixes the draw


def test_generate_beam_search_equals_transformers_beams(tmp_path):
  model, folder = gpt2_folder(tmp_path)
  options = {"max_new_tokens": 8, "num_beams": 3, "length_penalty": 0.0, "early_stopping": True}
  theirs = hf_text(model, transformers.AutoTokenizer.from_pretrained(folder), "In the", **options)
  assert generate.main([str(folder), "--prompt", "In the", "--max-new-tokens", "8", "--beam", "3"]) == theirs


def test_generate_with_t5_prints_what_its_decoder_writes(tmp_path):
  model, hf = t5_folder(tmp_path)
  ours = load_tokenizer(tmp_path)
  assert (ours.eos_id, ours.pad_id, ours.decoder_start_id) == (1, 0, 0)
  assert ours.encode("the earth") == hf("the earth")["input_ids"]
  theirs = hf_text(model, hf, "the earth was", max_new_tokens=10)
  assert generate.main([str(tmp_path), "--prompt", "the earth was", "--max-new-tokens", "10"]) == theirs


def test_bad_folders_and_options_are_refused_by_name(tmp_path):
  bert = bert_folder(tmp_path / "bert")
  with pytest.raises(ValueError, match=r"model_type 'bert' does not generate text here"):
    generate.main([str(bert), "--prompt", "the earth"])
  _, gpt2 = gpt2_folder(tmp_path / "gpt2", files="vocab.json + merges.txt")
  with pytest.raises(ValueError, match="beam search takes no temperature, top_k or top_p"):
    generate.main([str(gpt2), "--prompt", "x", "--beam", "2", "--top-k", "5"])
  with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
    generate.main([str(gpt2), "--prompt", "x", "--top-p", "1.5"])
  with pytest.raises(ValueError, match="max_new_tokens must be"):
    generate.main([str(gpt2), "--prompt", "x", "--max-new-tokens", "0"])
  with pytest.raises(ValueError, match="prompt must encode to at least one token"):
    generate.main([str(gpt2), "--prompt", ""])
  (gpt2 / "merges.txt").unlink()
  with pytest.raises(ValueError, match=r"lacks merges\.txt: GPT-2's byte-level BPE needs both"):
    load_tokenizer(gpt2)
  (gpt2 / "vocab.json").unlink()
  with pytest.raises(ValueError, match=r"holds no tokenizer: expected tokenizer\.json, vocab\.json \+ merges\.txt"):
    load_tokenizer(gpt2)
  config = json.loads((bert / "config.json").read_text())
  (bert / "config.json").write_text(json.dumps({**config, "eos_token_id": 10_000}))
  with pytest.raises(ValueError, match="eos_token_id 10000 is not a token of the tokenizer"):
    load_tokenizer(bert)
  (bert / "config.json").write_text(json.dumps({**config, "eos_token_id": [1, 2]}))
  with pytest.raises(ValueError, match=r"config.json: eos_token_id must be one token id"):
    load_tokenizer(bert)
  (bert / "config.json").write_text(json.dumps({**config, "vocab_size": 10}))
  with pytest.raises(ValueError, match=r"more than the 10 of config\.json's vocab_size"):
    load_tokenizer(bert)
  (bert / "config.json").write_text(json.dumps(config))
  (bert / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": "yes"}))
  with pytest.raises(ValueError, match=r"tokenizer_config\.json: do_lower_case must be one of"):
    load_tokenizer(bert)
  (bert / "tokenizer_config.json").unlink()
  with pytest.raises(
    ValueError, match=r"ids must be integers in \[0, \d+\) \(the tokenizer.s vocabulary\), got min -1"
  ):
    load_tokenizer(bert).decode([5, -1])
