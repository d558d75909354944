"""Where experiments write (runs/<experiment>/ by default, results/ only with --out results), how a
run's numbers are compared with the committed ones at its end, and `python -m experiments all`'s
headers and summary table."""

import dataclasses
import json
import shutil
import subprocess
import types
from pathlib import Path

import pytest

from experiments import __main__ as suite
from experiments import gradient_decay
from harness import cli, report, runs


def test_the_main_job_writes_under_runs_which_git_ignores():
  out = cli.parse(gradient_decay.CONFIGS, ["default"]).out
  assert out == str(report.RUNS / "gradient_decay")
  if shutil.which("git") is None or not (report.REPO / ".git").exists():
    pytest.skip("not a git checkout")
  ignored = subprocess.run(["git", "check-ignore", "-q", f"{out}/gradient_decay.json"], cwd=report.REPO, check=False)
  assert ignored.returncode == 0  # git status stays clean


def test_every_experiment_writes_its_configs_apart_from_the_committed_numbers():
  for module in suite.SUITE:
    name = suite.name_of(module)
    for config_name, (_, config) in module.CONFIGS.items():
      if config_name == "smoke":
        assert config.out == "/tmp/seqjax-smoke", module.__name__
      else:  # default, large (runs/<name>/large), long_range's full, translation's long
        assert Path(config.out).is_relative_to(report.RUNS / name), (module.__name__, config_name)
    assert module.CONFIGS["default"][1].out == str(report.RUNS / name)
    assert module.CONFIGS["large"][1].out == str(report.RUNS / name / "large")


@dataclasses.dataclass(frozen=True)
class Config:
  hidden: int = 4
  added_later: int = 0  # an option the committed file predates
  out: str = ""


def write(config, data):
  return report.write("exp", "Exp", [("numbers", "-")], data, config=config, script="experiments.exp", argv=[])


@pytest.fixture
def committed(tmp_path, monkeypatch):
  """A results/ folder holding exp.json, made with hidden=4 before `added_later` existed."""
  results = tmp_path / "results"
  results.mkdir()
  monkeypatch.setattr(report, "RESULTS", results)
  record = {"provenance": {"date": "then"}, "config": {"hidden": 4, "out": "results"}, "score": 0.5, "rows": [1, 2]}
  (results / "exp.json").write_text(json.dumps(record))
  return results


def last_line(capsys) -> str:
  return capsys.readouterr().out.strip().splitlines()[-1]


def test_a_run_of_the_committed_config_says_it_is_identical(committed, tmp_path, capsys):
  write(Config(out=str(tmp_path / "run")), {"score": 0.5, "rows": [1, 2]})
  assert last_line(capsys) == (
    f"compared with {committed / 'exp.json'} (same config): identical: all 5 values equal (provenance and output "
    "folder left out)"
  )


def test_a_run_that_differs_names_the_largest_differences(committed, tmp_path, capsys):
  write(Config(out=str(tmp_path / "run")), {"score": 0.25, "rows": [1, 2]})
  printed = capsys.readouterr().out
  assert (
    "(same config): 1 of 5 values differ, 1 by more than rtol 0; largest relative difference 0.5 at score" in printed
  )
  assert "  score: 0.5 -> 0.25 (relative 0.5)" in printed


def test_a_run_of_another_config_is_not_compared_and_says_why(committed, tmp_path, capsys):
  write(Config(hidden=8, added_later=3, out=str(tmp_path / "run")), {"score": 0.5, "rows": [1, 2]})
  assert last_line(capsys) == (
    f"not compared with the committed numbers: {committed / 'exp.json'} was made with another config "
    "(differs in added_later, hidden)"
  )


def test_writing_over_the_committed_file_compares_with_what_it_held(committed, capsys):
  write(Config(out=str(committed)), {"score": 0.5, "rows": [1, 2, 3]})
  assert "exp.json as it was before this run (same config): 1 of 4 values differ" in capsys.readouterr().out


def test_without_committed_numbers_there_is_nothing_to_compare(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
  write(Config(out=str(tmp_path / "run")), {"score": 0.5})
  assert last_line(capsys) == "no committed results of this experiment to compare with"


def test_a_committed_file_that_is_not_json_is_named(committed, tmp_path, capsys):
  (committed / "exp.json").write_text("{")
  write(Config(out=str(tmp_path / "run")), {"score": 0.5})
  assert last_line(capsys) == f"not compared: {committed / 'exp.json'} is not a readable results file"


def fake_experiment(name: str, reused: int, out: str):
  """A module-like experiment whose runs are read back from a journal `reused` times out of 2."""

  def main(argv):
    plan = runs.Runs(2)
    for seed in range(2):
      plan.run("model", seed, lambda: {}, reused=seed < reused)

  configs = {"smoke": ("tiny", Config(out=out))}
  return types.SimpleNamespace(__name__=f"experiments.{name}", CONFIGS=configs, main=main)


def test_all_heads_each_experiment_and_ends_with_a_table(tmp_path, monkeypatch, capsys):
  fakes = [fake_experiment("first", 0, str(tmp_path / "a")), fake_experiment("second", 2, str(tmp_path / "b"))]
  monkeypatch.setattr(suite, "SUITE", fakes)
  suite.main(["all", "smoke"])
  printed = capsys.readouterr().out
  assert "===== [1 of 2] python -m experiments.first smoke =====" in printed
  assert "===== [2 of 2] python -m experiments.second smoke =====" in printed
  table = printed[printed.index("===== 2 of 2 experiments in") :].splitlines()[1:]
  assert table[0] == "| experiment | seconds | wrote to | runs read back from a journal |"
  assert table[2] == f"| first | 0 | {tmp_path / 'a'} | 0 |"
  assert table[3] == f"| second | 0 | {tmp_path / 'b'} | 2 |"


def test_all_passes_its_arguments_to_every_experiment_and_prints_the_table_when_one_fails(monkeypatch, capsys):
  calls = []

  def failing(argv):
    raise RuntimeError("no corpus")

  good = fake_experiment("good", 0, "/tmp/seqjax-smoke")
  good.main = calls.append
  bad = fake_experiment("bad", 0, "/tmp/seqjax-smoke")
  bad.main = failing
  monkeypatch.setattr(suite, "SUITE", [good, bad])
  with pytest.raises(RuntimeError, match="no corpus"):
    suite.main(["all", "smoke", "--out", "/tmp/seqjax-smoke/x"])
  assert calls == [["smoke", "--out", "/tmp/seqjax-smoke/x"]]
  printed = capsys.readouterr().out
  assert "===== 1 of 2 experiments in" in printed and "| good | 0 | /tmp/seqjax-smoke/x | 0 |" in printed
  with pytest.raises(SystemExit, match="python -m experiments all smoke"):
    suite.main(["smoke"])
