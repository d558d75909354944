"""The character-LM experiment: its text is the corpus in book order split by whole books, every
architecture is causal at a matched size, and `sample` decodes a trained run from its workdir."""

import functools
import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import charlm
from harness import cli, report, timing
from seqjax import zoo
from seqjax.data import bible, bible_text
from tests.helpers import forward, run_workdir

FIXTURE = report.REPO / "tests" / "fixtures" / "bible"


@pytest.fixture
def small_matmul_peak(monkeypatch):
  """charlm.main measures the matmul peak at its start and end (six 2048^3 matmuls each, seconds
  on a CPU) for its report's fraction-of-peak column, which no test here reads: a 128^3 probe,
  measured the same way, takes milliseconds."""
  monkeypatch.setattr(timing, "matmul_peak", functools.partial(timing.matmul_peak, size=128))


def test_books_come_in_book_order_with_every_split_put_back_in_place():
  books = bible_text.books(FIXTURE)
  assert list(books) == ["Gen", "Ruth", "Ps", "Matt", "John", "Rev"]
  english = {ref: en for split in bible.SPLITS for ref, en, _ in bible.load(split, FIXTURE)}
  assert books["Gen"].startswith(english["Gen 1:1"] + " " + english["Gen 1:2"])
  assert english["Gen 2:6"] + " " + english["Gen 2:7"] in books["Gen"]  # 2:7 is a valid.tsv verse
  assert english["Gen 1:6"] + "\n" + english["Gen 2:1"] in books["Gen"]  # chapters by newlines


def test_whole_books_are_held_out():
  split = bible_text.split_by_book(bible_text.books(FIXTURE), 2)
  assert split.held_out == ("Ruth", "Matt", "Rev")
  english = {ref: en for ref, en, _ in bible.load("train", FIXTURE)}
  assert english["Ruth 1:1"] in split.valid and english["Ruth 1:1"] not in split.train
  assert english["John 1:1"] in split.train and english["John 1:1"] not in split.valid
  assert set(split.train + split.valid) == set(split.vocabulary)
  with pytest.raises(ValueError, match="valid_every must be an integer >= 2"):
    bible_text.split_by_book({"Gen": "x"}, 1)


@pytest.mark.parametrize("name", sorted(charlm.ARCHITECTURES))
def test_every_model_is_causal_at_its_matched_size(name):
  multiple = charlm.width_multiple(name)
  width, count = zoo.matched_width(lambda w, r: charlm.language_model(name, w, 11, 16, r), 4000, multiple)
  model = charlm.language_model(name, width, 11, 16, nnx.Rngs(0))
  assert width % multiple == 0 and zoo.count_params(model) == count and abs(count - 4000) < 0.5 * 4000
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 11, (1, 16)), jnp.int32)
  changed = tokens.at[:, 9:].set((tokens[:, 9:] + 1) % 11)
  logits, changed_logits = forward(model, tokens), forward(model, changed)
  np.testing.assert_allclose(logits[:, :9], changed_logits[:, :9], atol=1e-5)  # t < 9 never reads t >= 9
  assert not np.allclose(logits[:, 9:], changed_logits[:, 9:])


def test_sample_decodes_a_trained_run_in_one_compiled_loop(tmp_path, capsys, small_matmul_peak):
  charlm.main(["smoke", "--out", str(tmp_path), "--no-anchor"])
  runs = tmp_path / "charlm-runs"
  for name in ("lstm-seed0", "dilated-cnn-seed0"):  # a cached (recurrent) and an uncached decoder
    run = run_workdir(runs, name)
    text = charlm.main(["sample", "--checkpoint", str(run), "--prompt", "In the", "--tokens", "12"])
    assert text.startswith("In the") and len(text) == 6 + 12
    assert text in capsys.readouterr().out
    again = charlm.main(["sample", "--checkpoint", str(run), "--prompt", "In the", "--tokens", "12"])
    assert again == text  # the seed fixes the draw
  with pytest.raises(ValueError, match=r"unknown characters: \['#'\]"):
    charlm.main(["sample", "--checkpoint", str(run_workdir(runs, "lstm-seed0")), "--prompt", "#"])
  with pytest.raises(ValueError, match=r"must be a charlm run.s workdir holding config\.json"):
    charlm.main(["sample", "--checkpoint", str(tmp_path)])


def test_a_text_file_of_ones_own_trains_and_samples_through_the_command_line(tmp_path, capsys, small_matmul_peak):
  text = tmp_path / "notes.txt"
  text.write_text("the quick brown fox jumps over the lazy dog.\n" * 12, encoding="utf-8")  # 540 characters
  train = ["smoke", "--text", str(text), "--models", "LSTM", "--no-anchor", "--out", str(tmp_path / "out")]
  charlm.main(train)
  written = json.loads((tmp_path / "out" / "charlm-notes.json").read_text())
  assert written["held_out"] == ["the last 270 characters of notes.txt"]
  assert written["vocabulary"] == "".join(sorted(set(text.read_text())))
  report_page = (tmp_path / "out" / "charlm-notes.md").read_text()
  assert "Character-level language models on notes.txt" in report_page
  assert "![charlm-notes](charlm-notes.png)" in report_page and (tmp_path / "out" / "charlm-notes.png").is_file()
  assert not (tmp_path / "out" / "charlm.png").exists()  # the Bible's figure names stay the Bible's
  run = run_workdir(tmp_path / "out" / "charlm-runs" / "notes", "lstm-seed0")
  sample = ["sample", "--checkpoint", str(run), "--prompt", "the ", "--tokens", "12"]
  continued = charlm.main(sample)
  assert continued.startswith("the ") and len(continued) == 4 + 12 and set(continued) <= set(text.read_text())
  assert continued in capsys.readouterr().out
  first = json.loads((tmp_path / "out" / "charlm-notes.json").read_text())["runs"]
  charlm.main(train)  # the same text: its run is read back from the journal, timings and all
  assert json.loads((tmp_path / "out" / "charlm-notes.json").read_text())["runs"] == first
  text.write_text("an edited file is another text.\n" * 12, encoding="utf-8")
  charlm.main(train)  # another text: trained again, not read back
  assert (
    json.loads((tmp_path / "out" / "charlm-notes.json").read_text())["runs"][0]["valid_bpc"] != first[0]["valid_bpc"]
  )


def test_the_pilots_split_is_the_training_texts_tail_never_the_held_out_text():
  ids = np.arange(103)
  pilot_ids, tuning_ids = charlm.tuning_split(ids, 10)
  np.testing.assert_array_equal(np.concatenate([pilot_ids, tuning_ids]), ids)
  assert len(tuning_ids) == 10  # the last 1/valid_every


def test_the_tuned_path_trains_each_model_at_the_rate_its_pilots_chose(tmp_path, small_matmul_peak):
  tuned = ["smoke", "--models", "LSTM", "--no-anchor", "--learning-rates", "1e-3", "3e-3", "1e-2", "3e-2"]
  tuned += ["--extend-grid", "1", "--out", str(tmp_path)]  # smoke's pilots: 2 steps
  charlm.main(tuned)
  data = json.loads((tmp_path / "charlm.json").read_text())
  tuning = data["tuning"]["LSTM"]
  assert tuning["grid"] == [1e-3, 3e-3, 1e-2, 3e-2] and tuning["score"] == "tuning_bpc"
  pilots = tuning["pilots"]
  assert [p["learning_rate"] for p in pilots[:4]] == tuning["grid"] and len(pilots) <= 5
  scores = [p["tuning_bpc"] for p in pilots]
  chosen = tuning["chosen"]["learning_rate"]
  assert chosen == pilots[scores.index(min(s for s in scores if s is not None))]["learning_rate"]
  (run,) = data["runs"]
  assert run["learning_rate"] == chosen and data["table"][0]["peak lr"] == f"{chosen:g}"
  recorded = json.loads((run_workdir(tmp_path / "charlm-runs", "lstm-seed0") / "config.json").read_text())["config"]
  assert recorded["train"]["learning_rate"] == chosen  # the seed trained at the chosen rate
  page = (tmp_path / "charlm.md").read_text()
  assert "## Learning-rate pilots" in page and f"LSTM: peak lr {chosen:g} (tuning_bpc" in page
  charlm.main(tuned)  # every pilot and the run read back from the journal
  again = json.loads((tmp_path / "charlm.json").read_text())
  assert again["runs_resumed_from_journal"] == len(pilots) + 1
  assert again["tuning"] == data["tuning"] and again["runs"] == data["runs"]


@pytest.mark.parametrize(
  "args,message",
  [
    (["--learning-rates", "1e-3", "1e-2"], "learning_rates must hold at least 4 learning rates"),
    (["--learning-rates", "1e-3", "3e-3", "1e-2", "3e-2", "--pilot-steps", "5"], r"pilot_steps must be .* \[2, 4\]"),
    (["--learning-rates", "1e-3", "3e-3", "1e-2", "3e-2", "--extend-grid", "-1"], "extend_grid must be an integer"),
  ],
)
def test_a_bad_tuning_setting_is_refused_before_any_work(args, message):
  with pytest.raises(ValueError, match=message):
    cli.parse(charlm.CONFIGS, ["smoke", *args])
