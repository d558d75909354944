"""harness.compare: a rerun's results file against the committed one, number by number, a config
field renamed since read under today's name (harness.renames)."""

import dataclasses
import importlib
import json
import math

import pytest

from harness import compare, redraw, renames, report

COMMITTED = {
  "provenance": {"date": "2026-11-22", "machine": "host A"},
  "config": {"steps": 300, "out": "results"},
  "seeds": [0, 1, 2],
  "runs": [{"model": "lstm", "loss": 0.25, "diverged": False}, {"model": "gru", "loss": math.nan}],
}


def _write(tmp_path, name, document):
  path = tmp_path / name
  path.write_text(json.dumps(document))
  return str(path)


def test_a_rerun_on_another_day_and_machine_is_identical(tmp_path, capsys):
  rerun = json.loads(json.dumps(COMMITTED))
  rerun["provenance"] = {"date": "2026-11-23", "machine": "host B"}  # where and when: left out
  rerun["config"]["out"] = "/tmp/rerun"
  assert compare.main([_write(tmp_path, "a.json", COMMITTED), _write(tmp_path, "b.json", rerun)]) == 0
  assert capsys.readouterr().out.startswith("identical: all 9 values equal")  # NaN = NaN: both diverged


def test_each_differing_number_is_named_by_its_path_with_both_values(tmp_path, capsys):
  rerun = json.loads(json.dumps(COMMITTED))
  rerun["runs"][0]["loss"] = 0.26
  rerun["runs"][1]["loss"] = 1.5  # NaN before, a number now: infinitely different
  assert compare.main([_write(tmp_path, "a.json", COMMITTED), _write(tmp_path, "b.json", rerun)]) == 1
  out = capsys.readouterr().out
  assert out.startswith("2 of 9 values differ, 2 by more than rtol 0; largest relative difference inf at runs[1].loss")
  assert "runs[0].loss: 0.25 -> 0.26 (relative 0.0385)" in out


def test_rtol_accepts_last_bit_rounding_but_still_lists_it(tmp_path, capsys):
  rerun = json.loads(json.dumps(COMMITTED))
  rerun["runs"][0]["loss"] = 0.25 * (1 + 1e-7)
  files = [_write(tmp_path, "a.json", COMMITTED), _write(tmp_path, "b.json", rerun)]
  assert compare.main([*files, "--rtol", "1e-6"]) == 0
  assert "1 of 9 values differ, 0 by more than rtol 1e-06" in capsys.readouterr().out
  assert compare.main(files) == 1


def test_files_not_shaped_alike_differ(tmp_path, capsys):
  rerun = json.loads(json.dumps(COMMITTED))
  rerun["seeds"].append(3)
  del rerun["runs"][0]["diverged"]
  rerun["extra"] = 1
  found, _ = compare.differences(COMMITTED, rerun)
  assert {d.path for d in found} == {"seeds (length)", "runs[0].diverged", "extra"}
  assert compare.main([_write(tmp_path, "a.json", COMMITTED), _write(tmp_path, "b.json", rerun)]) == 1


@pytest.mark.parametrize(("flag", "value"), [("--rtol", "-1"), ("--rtol", "nan"), ("--show", "-2")])
def test_bad_flags_are_refused_by_name(tmp_path, capsys, flag, value):
  files = [_write(tmp_path, "a.json", COMMITTED), _write(tmp_path, "b.json", COMMITTED)]
  with pytest.raises(SystemExit):
    compare.main([*files, flag, value])
  assert flag in capsys.readouterr().err


def test_a_missing_or_unparsable_file_is_refused_by_name(tmp_path, capsys):
  committed = _write(tmp_path, "a.json", COMMITTED)
  (tmp_path / "torn.json").write_text('{"runs": [')
  for second in (str(tmp_path / "absent.json"), str(tmp_path / "torn.json")):
    with pytest.raises(SystemExit):
      compare.main([committed, second])
    assert f"second must be a readable results .json, got '{second}'" in capsys.readouterr().err


def _in_todays_names(record: dict) -> dict:
  """gradient_decay's committed record as today's script writes its config (issue #29's renames)."""
  rerun = json.loads(json.dumps(record))
  config = rerun["config"]
  config["hidden_features"], config["num_layers"] = config.pop("hidden"), config.pop("layers")
  config["seeds"] = list(range(config["seeds"]))  # a count then, the seeds themselves now
  return rerun


def test_a_config_field_renamed_since_compares_under_todays_name(tmp_path, capsys):
  committed = report.RESULTS / "gradient_decay.json"
  record = json.loads(committed.read_text())
  assert {"hidden", "layers"} <= set(record["config"]) and record["config"]["seeds"] == 3  # the names before #29
  rerun = _write(tmp_path, "b.json", _in_todays_names(record))
  assert compare.main([str(committed), rerun]) == 0
  assert capsys.readouterr().out.startswith("identical")
  assert compare.main([rerun, str(committed)]) == 0  # either way round


def test_the_comparison_a_run_prints_reads_a_committed_file_under_todays_names(tmp_path):
  from experiments import bahdanau_drill

  committed = report.RESULTS / "bahdanau_drill.json"
  record = json.loads(committed.read_text())
  assert "hidden" in record["config"]  # the name before #29
  config = bahdanau_drill.Config(out=str(tmp_path))  # the default the committed file was made with
  rerun = {**record, "config": {**json.loads(json.dumps(dataclasses.asdict(config))), "out": "results"}}
  printed = report.comparison(rerun, [(committed, record)], written=tmp_path / "bahdanau_drill.json", config=config)
  assert printed.startswith("compared with results/bahdanau_drill.json (same config): identical")


def test_renamed_fields_move_to_their_dotted_path_and_convert_once():
  from experiments.gradient_decay import seeds_of_count

  renamed = {"steps": "train.steps", "seeds": ("seeds", seeds_of_count)}
  old = {"steps": 5, "seeds": 2, "train": {"batch_size": 4}}
  assert renames.moved(old, renamed) == {"train": {"batch_size": 4, "steps": 5}, "seeds": [0, 1]}
  assert renames.moved(renames.moved(old, renamed), renamed) == renames.moved(old, renamed)  # today's: unchanged
  assert old == {"steps": 5, "seeds": 2, "train": {"batch_size": 4}}  # a copy moved, not the record
  foreign = {"config": {"hidden": 3}, "provenance": {"command": "python -m os"}}  # no script of ours: as it is
  assert renames.current(foreign) is foreign


def test_a_field_renamed_inside_a_nested_config_moves_by_its_dotted_path():
  renamed = {"task.embed": "task.embed_dim"}
  old = {"task": {"embed": 8, "seeds": [0]}, "variants": []}
  assert renames.moved(old, renamed) == {"task": {"embed_dim": 8, "seeds": [0]}, "variants": []}
  assert old["task"] == {"embed": 8, "seeds": [0]}  # a copy moved, not the record
  assert renames.moved({"variants": []}, renamed) == {"variants": []}  # no task: nothing to move
  assert renames.moved({"task": 3}, renamed) == {"task": 3}  # not an object: left for the config's check to refuse


@pytest.mark.parametrize(
  "path", sorted(report.RESULTS.rglob("*.json")), ids=lambda path: str(path.relative_to(report.RESULTS))
)
def test_every_committed_config_reads_as_its_scripts_config_under_todays_names(path):
  """Each field renamed since the file was written is in the script's RENAMED; any other unknown field is refused."""
  record = json.loads(path.read_text())
  module = importlib.import_module(renames.script_name(record))
  redraw.rebuild(module.Config, renames.current(record)["config"], "config", module.Config())
