"""harness.journal: finished runs survive a kill and are read back, never trained twice."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from harness import journal as journal_module
from harness.journal import Journal, code_version


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


def test_the_fingerprint_is_the_one_earlier_journals_were_written_with(tmp_path):
  assert Journal("exp", Config(5, ("a",), str(tmp_path)), fields=("steps",)).fingerprint == "49bd0f4419034a28"


@dataclasses.dataclass(frozen=True)
class RenamedConfig:  # Config after its `steps` was renamed `num_steps`
  num_steps: int
  tasks: tuple[str, ...]
  out: str


def test_a_field_renamed_since_runs_were_journaled_keeps_them_under_its_old_name(tmp_path):
  Journal("exp", Config(5, ("a",), str(tmp_path)), fields=("steps", "tasks")).run("k1", lambda: {"score": 1})
  renamed = RenamedConfig(5, ("a",), str(tmp_path))
  assert Journal("exp", renamed, fields=("num_steps", "tasks")).resumed == 0  # the new name: another fingerprint
  again = Journal("exp", renamed, fields=("num_steps", "tasks"), renamed={"num_steps": "steps"})
  assert again.resumed == 1 and again.done == {"k1": {"score": 1}}
  changed = RenamedConfig(6, ("a",), str(tmp_path))  # the renamed field's value still counts
  assert Journal("exp", changed, fields=("num_steps", "tasks"), renamed={"num_steps": "steps"}).resumed == 0


def test_a_rename_must_name_a_journaled_field_and_keep_names_distinct(tmp_path):
  config = RenamedConfig(5, ("a",), str(tmp_path))
  with pytest.raises(ValueError, match=r"renamed: 'steps' is not one of the journal's fields \['num_steps'\]"):
    Journal("exp", config, fields=("num_steps",), renamed={"steps": "num_steps"})  # backwards: today's name first
  with pytest.raises(ValueError, match="two of the journal's fields would enter its fingerprint as 'tasks'"):
    Journal("exp", config, fields=("num_steps", "tasks"), renamed={"num_steps": "tasks"})


def old_line(journal, key, record):  # a line as the journal wrote it before checksums and code versions
  return json.dumps({"fingerprint": journal.fingerprint, "key": key, "record": record}) + "\n"


def test_lines_that_are_no_run_are_reported_by_file_and_line_and_skipped(tmp_path, capsys):
  config = Config(5, (), str(tmp_path))
  journal = Journal("exp", config, fields=("steps",))
  journal.run("k1", lambda: {"score": 1})
  fingerprint = journal.fingerprint
  bad = [
    "{}",
    "[1, 2]",
    "null",
    json.dumps({"fingerprint": fingerprint, "key": "k2"}),  # no record
    json.dumps({"fingerprint": fingerprint, "key": "k2", "record": float("nan")}),  # a record that is no object
    json.dumps({"fingerprint": fingerprint, "key": 7, "record": {"score": 2}}),
    f'{{"fingerprint": "{fingerprint}", "key": "k2", "record": {{"score": 2, "score": 3}}}}',  # a name twice
  ]
  with journal.path.open("a") as file:
    file.write("\n".join(bad) + "\n")
  with journal.path.open("ab") as file:
    file.write(b'{"key": "\xff"}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n")
  capsys.readouterr()
  resumed = Journal("exp", config, fields=("steps",))
  out = capsys.readouterr().out
  assert resumed.done == {"k1": {"score": 1}}
  for line, why in [
    (2, "an entry without 'fingerprint', 'key', 'record'"),
    (3, "not a journal entry (a JSON array: '[1, 2]')"),
    (4, "not a journal entry (a JSON null: 'null')"),
    (5, "an entry without 'record'"),
    (6, "'record' must be a JSON object, got number nan"),
    (7, "'key' must be a JSON string, got number 7"),
    (8, "a JSON object names 'score' twice"),
    (9, "invalid UTF-8"),
    (10, "a JSON value nested too deeply"),
  ]:
    assert f"{journal.path}:{line}: {why}" in out, (line, out)
  assert resumed.run("k2", lambda: {"score": 2}) == {"score": 2}  # skipped lines: the run is trained again


def test_an_edited_value_fails_its_checksum_and_the_run_is_trained_again(tmp_path, capsys):
  config = Config(5, (), str(tmp_path))
  journal = Journal("exp", config, fields=("steps",))
  journal.run("k1", lambda: {"score": 0.5, "loss": 1.25})
  journal.run("k2", lambda: {"score": 0.75, "loss": 1.0})
  lines = journal.path.read_text().splitlines()
  edited = json.loads(lines[0])
  edited["record"]["score"] = 0.9
  journal.path.write_text("\n".join([json.dumps(edited), lines[1]]) + "\n")
  capsys.readouterr()
  resumed = Journal("exp", config, fields=("steps",))
  assert f"{journal.path}:1: the checksum does not match" in capsys.readouterr().out
  assert resumed.done == {"k2": {"score": 0.75, "loss": 1.0}}


def test_a_record_must_be_a_json_object_before_it_is_written(tmp_path):
  journal = Journal("exp", Config(5, (), str(tmp_path)), fields=("steps",))
  with pytest.raises(ValueError, match="the record of run 'k1' must be a dict"):
    journal.run("k1", lambda: float("nan"))
  with pytest.raises(TypeError, match="not JSON serializable"):
    journal.run("k1", lambda: {"model": object()})
  assert not journal.path.exists()


def test_a_run_journaled_twice_is_reported_and_its_first_line_kept(tmp_path, capsys):
  config = Config(5, (), str(tmp_path))
  first = Journal("exp", config, fields=("steps",))
  second = Journal("exp", config, fields=("steps",))  # two processes started before either finished k1
  first.run("k1", lambda: {"score": 1})
  second.run("k1", lambda: {"score": 2})
  first.run("k2", lambda: {"score": 3})
  second.run("k2", lambda: {"score": 3})
  capsys.readouterr()
  resumed = Journal("exp", config, fields=("steps",))
  out = capsys.readouterr().out
  assert f"{first.path}:2: run 'k1' journaled again (a different record): line 1 kept" in out
  assert f"{first.path}:4: run 'k2' journaled again (the same record): line 3 kept" in out
  assert resumed.done == {"k1": {"score": 1}, "k2": {"score": 3}}


def test_journals_written_before_checksums_are_read_with_one_note(tmp_path, capsys):
  config = Config(5, (), str(tmp_path))
  journal = Journal("exp", config, fields=("steps",))
  journal.path.write_text(
    old_line(journal, "k1", {"score": 1}) + old_line(journal, "k2", {"score": 2}) + old_line(journal, "k3", {"a": 3})
  )
  journal = Journal("exp", config, fields=("steps",))
  journal.run("k4", lambda: {"score": 4})
  capsys.readouterr()
  resumed = Journal("exp", config, fields=("steps",))
  out = capsys.readouterr().out
  assert resumed.done == {"k1": {"score": 1}, "k2": {"score": 2}, "k3": {"a": 3}, "k4": {"score": 4}}
  assert out.count("journaled before checksums") == 1
  assert f"{journal.path}: 3 runs (lines 1-3) were journaled before checksums and code versions: accepted" in out
  assert "WARNING" not in out


def test_each_run_records_the_code_version_and_a_start_warns_when_results_mix_versions(tmp_path, capsys, monkeypatch):
  config = Config(5, (), str(tmp_path))
  journal = Journal("exp", config, fields=("steps",))
  journal.run("k1", lambda: {"score": 1})
  version = json.loads(journal.path.read_text())["version"]
  assert version == journal.version == code_version(Path(__file__))
  commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parents[1], capture_output=True, text=True)
  assert version["commit"] == (commit.stdout.strip() if commit.returncode == 0 else None)
  capsys.readouterr()
  Journal("exp", config, fields=("steps",))
  assert "WARNING" not in capsys.readouterr().out  # the same code
  monkeypatch.setattr(journal_module, "code_version", lambda script: {"source": "0123456789abcdef", "commit": None})
  edited = Journal("exp", config, fields=("steps",))  # the code changed since k1 was trained
  out = capsys.readouterr().out
  assert f"{journal.path}: WARNING 1 of the 1 runs read back were trained by other code" in out
  assert f"than this start's (source 0123456789abcdef, commit None): 1 by source {version['source']}" in out
  assert edited.done == {"k1": {"score": 1}}  # read back all the same


def test_the_code_version_follows_the_scripts_source(tmp_path):
  script = tmp_path / "experiment.py"
  script.write_text("STEPS = 5\n")
  before = code_version(script)
  script.write_text("STEPS = 6\n")
  assert code_version(script)["source"] != before["source"]
  assert code_version(script) == code_version(script)
