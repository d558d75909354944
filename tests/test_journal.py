"""harness.journal: finished runs survive a kill and are read back, never trained twice."""

import dataclasses

from harness.journal import Journal


@dataclasses.dataclass(frozen=True)
class Config:
  steps: int
  tasks: tuple[str, ...]
  out: str


def test_runs_are_read_back_after_a_restart_and_shared_across_other_fields(tmp_path):
  calls = []

  def train(value):
    calls.append(value)
    return {"score": value, "curve": [(0, 1.0)]}

  first = Journal("exp", Config(5, ("a",), str(tmp_path)), fields=("steps",))
  assert first.run("k1", lambda: train(1)) == {"score": 1, "curve": [[0, 1.0]]}  # as JSON reads it back
  again = Journal("exp", Config(5, ("a", "b"), str(tmp_path)), fields=("steps",))  # tasks do not matter
  assert again.resumed == 1 and again.run("k1", lambda: train(99)) == {"score": 1, "curve": [[0, 1.0]]}
  assert calls == [1]
  other = Journal("exp", Config(6, ("a",), str(tmp_path)), fields=("steps",))  # steps do
  assert other.resumed == 0 and other.run("k1", lambda: train(2))["score"] == 2
  assert calls == [1, 2]


def test_a_torn_last_line_is_reported_and_that_run_trained_again(tmp_path, capsys):
  config = Config(5, (), str(tmp_path))
  journal = Journal("exp", config, fields=("steps",))
  journal.run("k1", lambda: {"score": 1})
  with journal.path.open("a") as file:
    file.write('{"fingerprint": "')  # killed in the middle of writing k2
  resumed = Journal("exp", config, fields=("steps",))
  assert "a torn line" in capsys.readouterr().out and resumed.resumed == 1
  assert resumed.run("k2", lambda: {"score": 2}) == {"score": 2}
  assert Journal("exp", config, fields=("steps",)).done == {"k1": {"score": 1}, "k2": {"score": 2}}


@dataclasses.dataclass(frozen=True)
class Train:
  steps: int = 5


@dataclasses.dataclass(frozen=True)
class TrainWithNewOption:  # Train after an option was added whose default keeps the old behaviour
  steps: int = 5
  eval_every: int = 0


@dataclasses.dataclass(frozen=True)
class Outer:
  train: object
  out: str


def test_an_option_added_at_its_default_keeps_the_fingerprint_and_a_set_one_changes_it(tmp_path):
  fingerprint = lambda train: Journal("exp", Outer(train, str(tmp_path)), fields=("train",)).fingerprint  # noqa: E731
  assert fingerprint(Train(7)) == fingerprint(TrainWithNewOption(7))
  assert fingerprint(Train(7)) != fingerprint(TrainWithNewOption(7, eval_every=10))
  assert fingerprint(Train(7)) != fingerprint(Train(8))
  assert fingerprint(Train()) != fingerprint(Train(8))
