"""harness.compare: a rerun's results file against the committed one, number by number."""

import json
import math

import pytest

from harness import compare

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
