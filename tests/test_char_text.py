"""seqjax.data.char_text: any text file as character-LM data (vocabulary, held-out tail, windows)."""

import numpy as np
import pytest

from seqjax.data import char_text


def test_the_last_part_is_held_out_and_the_vocabulary_is_every_character():
  split = char_text.split_tail("abcdefghij" * 3 + "\u00e9", 4, name="notes.txt")
  assert (split.train, split.valid) == ("abcdefghij" * 2 + "abcd", "efghij\u00e9")  # 31 // 4 = 7 held out
  assert split.held_out == ("the last 7 characters of notes.txt",)
  assert split.vocabulary == "abcdefghij\u00e9"
  with pytest.raises(ValueError, match=r"notes\.txt has 3 characters: too few to hold out 1/4 of them"):
    char_text.split_tail("abc", 4, name="notes.txt")
  with pytest.raises(ValueError, match="valid_every must be an integer >= 2"):
    char_text.split_tail("abc", 1)


def test_ids_round_trip_and_unknown_characters_are_named():
  ids = char_text.encode("cab", "abc")
  assert ids.dtype == np.int32 and ids.tolist() == [2, 0, 1] and char_text.decode(ids, "abc") == "cab"
  with pytest.raises(ValueError, match=r"unknown characters: \['#', 'z'\]"):
    char_text.encode("a#z", "abc")
  with pytest.raises(ValueError, match=r"ids must be integers in \[0, 3\) \(the vocabulary\), got min 0, max 3"):
    char_text.decode([0, 3], "abc")


def test_read_text_names_a_missing_or_non_utf8_file(tmp_path):
  (tmp_path / "ok.txt").write_bytes("line\r\nd\u00e9j\u00e0\n".encode())
  assert char_text.read_text(tmp_path / "ok.txt") == "line\r\nd\u00e9j\u00e0\n"  # line ends as written
  (tmp_path / "latin1.txt").write_bytes("abc d\u00e9j\u00e0".encode("latin-1"))
  with pytest.raises(ValueError, match=r"latin1\.txt' is not UTF-8: byte 5"):
    char_text.read_text(tmp_path / "latin1.txt")
  with pytest.raises(ValueError, match="no such file"):
    char_text.read_text(tmp_path / "missing.txt")


def test_windows_cover_the_text_and_the_sampler_depends_on_seed_and_step_alone():
  ids = np.arange(50, dtype=np.int32)
  fixed = char_text.fixed_windows(ids, 3, 9)
  assert fixed.tolist() == [list(range(0, 10)), list(range(20, 30)), list(range(40, 50))]  # first to last
  draw = char_text.window_sampler(ids, 9, 64, seed=3)
  batch = draw(7)
  assert batch.shape == (64, 10) and np.all(np.diff(batch, axis=1) == 1)  # contiguous windows of the text
  assert 0 <= batch[:, 0].min() and batch[:, -1].max() <= 49
  np.testing.assert_array_equal(char_text.window_sampler(ids, 9, 64, seed=3)(7), batch)  # a resumed run's batch
  assert not np.array_equal(draw(8), batch)
  with pytest.raises(ValueError, match="held-out text has 5 characters, fewer than a window of context \\+ 1 = 10"):
    char_text.fixed_windows(ids[:5], 3, 9)
  with pytest.raises(ValueError, match="training text has 10 characters, fewer than context \\+ 2 = 11"):
    char_text.window_sampler(ids[:10], 9, 4, seed=0)
