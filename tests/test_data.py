"""Synthetic tasks, vocabularies, subwords, batching, and the Bible corpus preparation."""

import re
from pathlib import Path

import numpy as np
import pytest

from seqjax.data import bible
from seqjax.data.batching import bucketed_batches, pad, seq2seq_batch, step_indices
from seqjax.data.subword import Subwords
from seqjax.data.synthetic import generate
from seqjax.data.vocab import BOS, EOS, PAD, UNK, Vocab


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_symbol_tasks(task):
  pairs = generate(task, 50, min_length=2, max_length=6, seed=0)
  assert pairs == generate(task, 50, min_length=2, max_length=6, seed=0)  # seeded
  for src, tgt in pairs:
    assert 2 <= len(src) <= 6
    assert tgt == {"copy": src, "reverse": src[::-1], "sort": sorted(src)}[task]


def test_addition():
  for src, tgt in generate("addition", 50, min_length=1, max_length=4, seed=1):
    plus = src.index("+")
    assert int("".join(src[:plus])) + int("".join(src[plus + 1 :])) == int("".join(tgt))


def test_translation_reorders_and_agrees_over_distance():
  for src, tgt in generate("translate", 100, min_length=0, max_length=4, seed=2):
    clauses = src.count("that")
    assert len(tgt) == 3 + 2 * clauses  # subject, (object, verb) per clause, object, verb
    plural_subject = src[1].endswith("s") or src[1] in ("men", "children")
    final_verb = tgt[-1]
    assert final_verb.endswith("n") == plural_subject  # ve / ven, quiere / quieren: agreement


def test_vocab_round_trip_and_specials():
  vocab = Vocab.characters(["abc", "cab"])
  assert vocab.symbols[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
  ids = vocab.encode("cabz")
  assert ids[-1] == UNK and vocab.decode([BOS, *ids[:3], EOS, 5]) == list("cab")


def test_text_spelling_a_specials_name_is_a_symbol_of_its_own():
  words = "<eos> is a word here <pad> <bos> <unk>".split()
  vocab = Vocab.words([" ".join(words)])
  ids = vocab.encode(words)
  assert min(ids) >= len(("<pad>", "<bos>", "<eos>", "<unk>")) and len(set(ids)) == len(words)
  assert vocab.decode(ids) == words and vocab.decode([BOS, *ids, EOS, PAD]) == words
  assert Vocab.characters(["<eos>"]).encode(["<eos>", "<"]) == [UNK, 4]  # an unknown symbol is UNK, never EOS


@pytest.mark.parametrize(
  "sequence,got",
  [
    ([1.5, 2.7], "got float64 values [1.5, 2.7]"),  # no silent truncation to [1, 2]
    ([5, -5], "got min -5 and max 5"),
    ([2**40], "got min 1099511627776 and max 1099511627776"),
    ([2**31], "got min 2147483648"),  # would wrap to -2**31 in int32
    ([True, False], "got bool values"),
  ],
)
def test_pad_refuses_ids_that_are_not_int32_token_ids(sequence, got):
  expected = f"sequences[1] must hold integer token ids in [0, 2147483647] (int32), {got}"
  with pytest.raises(ValueError, match=re.escape(expected)):
    pad([[4], sequence])
  np.testing.assert_array_equal(pad([[0, 2**31 - 1]])[0], [[0, 2**31 - 1]])  # both ends of the range


def test_padding_masks_and_seq2seq_batch():
  ids, mask = pad([[5, 6, 7], [8]])
  np.testing.assert_array_equal(ids, [[5, 6, 7], [8, PAD, PAD]])
  np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0]])
  batch = seq2seq_batch([([5, 6], [7]), ([8], [9, 10])])
  np.testing.assert_array_equal(batch["tgt_in"], [[BOS, 7, PAD], [BOS, 9, 10]])
  np.testing.assert_array_equal(batch["tgt_out"], [[7, EOS, PAD], [9, 10, EOS]])
  with pytest.raises(ValueError, match="sequences must not be empty"):
    pad([[5], []])


def test_bucketed_batches_cover_everything_once_with_little_padding():
  lengths = np.random.default_rng(0).integers(1, 60, 1000)
  batches = bucketed_batches(lengths, 32, seed=0)
  assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
  spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
  assert spread < 8  # random batches would spread over ~55
  assert all((a == b).all() for a, b in zip(batches, bucketed_batches(lengths, 32, seed=0), strict=True))


def test_subwords_round_trip():
  texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20
  subwords = Subwords(texts, vocab_size=40)
  ids = subwords.encode("the cat sat")
  assert min(ids) > UNK and subwords.decode([*ids, EOS, 7]) == "the cat sat"
  assert Subwords(texts, vocab_size=40).encode("a dog on the log") == subwords.encode("a dog on the log")


@pytest.mark.parametrize("texts", [[], ["", "", ""], [" ", "\t\u2028"], ["a" * 4193], ["é" * 2097, ""]])
def test_subwords_need_a_line_to_train_on(texts):
  with pytest.raises(ValueError, match=r"texts must hold at least one line to train on .* at most 4192 bytes"):
    Subwords(texts, vocab_size=10)


TEXTS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "fi ﬁ x\x00y"] * 10


def test_subwords_normalization_is_nfkc_with_spaces_collapsed_and_nul_unknown():
  subwords = Subwords(TEXTS, vocab_size=40)
  plain = subwords.encode("the cat sat")
  for text in ["the\tcat sat", "the\u2028cat sat", "the\rcat sat", "the cat sat ", "  the  cat sat"]:
    assert subwords.encode(text) == plain, repr(text)
  assert subwords.encode("ﬁ") == subwords.encode("fi") and subwords.decode(subwords.encode("ﬁ")) == "fi"  # NFKC
  assert subwords.encode("\uff43\uff41\uff54") == subwords.encode("cat")  # fullwidth letters
  assert UNK in subwords.encode("x\x00y")  # NUL is unknown, though the training texts hold it


def test_subwords_identity_normalization_keeps_the_text_as_it_is():
  texts = [*TEXTS, "the\tcat  sat "] * 2
  subwords = Subwords(texts, vocab_size=40, normalization="identity")
  for text in ["the\tcat  sat ", " ﬁ", "the cat sat"]:
    assert subwords.decode(subwords.encode(text)) == text, repr(text)
  assert subwords.encode("the\tcat") != subwords.encode("the cat")
  assert UNK in subwords.encode("x\x00y")
  with pytest.raises(ValueError, match="normalization must be one of"):
    Subwords(texts, vocab_size=40, normalization="nfc")


def test_generator_errors():
  with pytest.raises(ValueError, match="task must be one of"):
    generate("parse", 3, min_length=1, max_length=2, seed=0)
  with pytest.raises(ValueError, match="need 1 <= min_length <= max_length"):
    generate("copy", 3, min_length=0, max_length=2, seed=0)


# Real verse markup, as pysword returns it from Debian's engWEB2015eb and spaRV1909eb modules.
WEB = {
  "Gen 1:1": '<w lemma="strong:H0430">In</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H7225">beginning</w>, '
  '<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">1:1 </reference>The Hebrew '
  'word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note><w lemma="strong:H1254">created</w> <w lemma="strong:H0853">the'
  '</w> <w lemma="strong:H8064">heavens</w> <w lemma="strong:H0430">and</w> <w lemma="strong:H0853">the</w> '
  '<w lemma="strong:H0776">earth</w>. ',
  "John 3:16": '<q marker="" who="Jesus"><w lemma="strong:G1063">For</w> <w lemma="strong:G2316">God</w> '
  '<w lemma="strong:G2443">so</w> <w lemma="strong:G0025">loved</w> <w lemma="strong:G3956">the</w> '
  '<w lemma="strong:G2889">world</w>, <w lemma="strong:G2443">that</w> <w lemma="strong:G0846">he</w> '
  '<w lemma="strong:G1325">gave</w> <w lemma="strong:G0846">his</w> <w lemma="strong:G3439">only</w> born</q>'
  '<note placement="foot"><reference type="annotateRef">3:16 </reference>The phrase “only born” is from the Greek '
  "word “μονογενη”.</note>",
  "Rev 22:21": "",  # empty in one text: dropped
}
SPARV = {
  "Gen 1:1": '<w lemma="strong:H7225">EN el principio</w> <w lemma="strong:H1254">crió</w> <w lemma="strong:H0430">'
  'Dios</w> <w lemma="strong:H8064">los cielos</w> <w lemma="strong:H0776">y la tierra</w>. ',
  "John 3:16": '<w lemma="strong:G1063">Porque</w> <w lemma="strong:G3779">de tal manera</w> '
  '<w lemma="strong:G0025">amó</w> <w lemma="strong:G2316">Dios</w> <w lemma="strong:G3588">al</w> '
  '<w lemma="strong:G2889">mundo</w>, &amp; más',
  "Rev 22:21": "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén.",
}


def test_clean_strips_markup_and_notes():
  assert bible.clean(WEB["Gen 1:1"]) == "In the beginning, God created the heavens and the earth."
  assert bible.clean(WEB["John 3:16"]) == "For God so loved the world, that he gave his only born"
  assert bible.clean(SPARV["John 3:16"]) == "Porque de tal manera amó Dios al mundo, & más"


def test_prepare_aligns_splits_and_caches(tmp_path):
  rows = bible.align(WEB, SPARV)
  every = [row for split in bible.SPLITS for row in rows[split]]
  assert sorted(r[0] for r in every) == ["Gen 1:1", "John 3:16"]  # Rev 22:21 is empty in English
  assert all(bible.split_of(ref) == split for split in bible.SPLITS for ref, _, _ in rows[split])
  assert bible.split_of("Gen 1:1") == bible.split_of("Gen 1:1")
  bible.write(rows, tmp_path)
  loaded = [row for split in bible.SPLITS for row in bible.load(split, tmp_path)]
  assert sorted(loaded) == sorted(every)


def test_glossary_is_cut_and_drop_capitals_normalized():
  english = {"Rev 22:20": "He who testifies says.", "Rev 22:21": "Amen.  World English Bible Glossary  Abba is..."}
  spanish = {"Rev 22:20": "Y JEHOVÁ dice: Ciertamente.", "Rev 22:21": "EN verdad, ACHAB. Amén. Jehová dijo."}
  rows = [row for split in bible.SPLITS for row in bible.align(english, spanish)[split]]
  assert sorted(rows) == [
    ("Rev 22:20", "He who testifies says.", "Y Jehová dice: Ciertamente."),  # the case seen elsewhere
    ("Rev 22:21", "Amen.", "En verdad, ACHAB. Amén. Jehová dijo."),  # only the leading capitals change
  ]
  assert bible.normalize_drop_capitals(["ACHAB vino", "Y ACONTECIÓ que", "aconteció"]) == [
    "Achab vino",  # never seen otherwise: a name
    "Y aconteció que",
    "aconteció",
  ]


def test_default_corpus_folder_is_the_repositorys_or_the_environments(monkeypatch, tmp_path):
  monkeypatch.delenv("SEQJAX_BIBLE", raising=False)
  assert bible.default_out() == Path(bible.__file__).resolve().parents[2] / "data" / "bible"
  monkeypatch.setenv("SEQJAX_BIBLE", str(tmp_path))
  bible.write({"train": [("Gen 1:1", "a", "b")], "valid": [], "test": []}, tmp_path)
  monkeypatch.chdir("/")
  assert bible.load("train") == [("Gen 1:1", "a", "b")]


def test_load_names_the_file_and_line_of_a_row_without_three_fields(tmp_path):
  (tmp_path / "train.tsv").write_text("Gen 1:1\ta\tb\nGen 1:2\tonly English\n")
  with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'train.tsv'}:2: 2 tab-separated fields, expected 3")):
    bible.load("train", tmp_path)
  (tmp_path / "train.tsv").write_bytes("Gen 1:1\ta\tb\nGen 1:2\tcafé\tb\n".encode("latin-1"))
  with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'train.tsv'}:2: invalid UTF-8")):
    bible.load("train", tmp_path)


@pytest.mark.parametrize("separator", ["\t", "\n", "\r", "\u2028", "\u0085"])
def test_write_refuses_a_field_that_load_would_split(tmp_path, separator):
  rows = {"train": [("Gen 1:1", "a", "b"), ("Gen 1:2", f"one{separator}two", "b")], "valid": [], "test": []}
  with pytest.raises(ValueError, match=re.escape(f"rows['train'][1] holds U+{ord(separator):04X}")):
    bible.write(rows, tmp_path)
  assert not list(tmp_path.iterdir())  # refused before any file is written
  with pytest.raises(ValueError, match="must be 3 strings"):
    bible.write({"train": [("Gen 1:1", "a")]}, tmp_path)


def test_missing_corpus_names_the_prepare_command(tmp_path):
  with pytest.raises(ValueError, match=r"python -m seqjax.data.bible prepare --out"):
    bible.load("train", tmp_path / "nowhere")
  with pytest.raises(ValueError, match="split must be one of"):
    bible.load("dev", tmp_path)


def test_fixed_length_batches():
  batch = seq2seq_batch([([5, 6], [7]), ([8], [9, 10])], source_length=4, target_length=5)
  assert batch["src"].shape == (2, 4) and batch["tgt_in"].shape == (2, 5) and batch["tgt_mask"].sum() == 5
  with pytest.raises(ValueError, match="does not fit length 1"):
    seq2seq_batch([([5, 6], [7])], source_length=1)


def test_step_indices_depend_on_seed_and_step_alone():
  first = step_indices(0, 7, 100, 16)
  assert first.shape == (16,) and len(set(first.tolist())) == 16 and first.min() >= 0 and first.max() < 100
  np.testing.assert_array_equal(step_indices(0, 7, 100, 16), first)  # a resumed run draws the same batch
  assert not np.array_equal(step_indices(0, 8, 100, 16), first)
  assert not np.array_equal(step_indices(1, 7, 100, 16), first)
