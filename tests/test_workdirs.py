"""harness.workdirs: a run's fit workdir is named by a hash of its record, so runs of different
configs never share one (experiments call fit without overwrite, and no start empties another
run's checkpoints), and the same record always finds its own again."""

import pytest

from harness.workdirs import run_workdir


def test_the_same_record_finds_the_same_workdir_whatever_its_key_order(tmp_path):
  first = run_workdir(tmp_path, "lstm-seed0", {"model": "LSTM", "train": {"learning_rate": 0.01, "steps": 400}})
  again = run_workdir(tmp_path, "lstm-seed0", {"train": {"steps": 400, "learning_rate": 0.01}, "model": "LSTM"})
  assert first == again and first.parent == tmp_path
  assert first.name.startswith("lstm-seed0-") and len(first.name) == len("lstm-seed0-") + 8


def test_a_record_that_differs_anywhere_gets_a_workdir_of_its_own(tmp_path):
  record = {"model": "LSTM", "train": {"learning_rate": 0.01, "steps": 400}}
  other = {"model": "LSTM", "train": {"learning_rate": 0.02, "steps": 400}}
  assert run_workdir(tmp_path, "lstm-seed0", record) != run_workdir(tmp_path, "lstm-seed0", other)


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_a_name_that_is_not_one_folder_is_refused(tmp_path, name):
  with pytest.raises(ValueError, match="name must be one folder name"):
    run_workdir(tmp_path, name, {})


def test_a_record_that_is_not_a_dict_is_refused(tmp_path):
  with pytest.raises(ValueError, match="record must be a dict"):
    run_workdir(tmp_path, "run", ["model"])
