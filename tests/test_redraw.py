"""harness.redraw: a results file's figures drawn again from the file alone, by the script that wrote it."""

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from experiments import tbptt
from harness import redraw, report, synthetic_translation
from seqjax.train import TrainConfig


def has_figures(path: Path) -> bool:
  markdown = path.with_suffix(".md")
  return markdown.is_file() and "![" in markdown.read_text()


NOT_REDRAWN = {  # committed results files with figures that the file alone cannot draw
  "translation.json": "its attention figure labels the corpus's subwords, which the file does not hold",
  "rerun/hidden_state_drill.json": "written before the drill recorded the sequence its figure shows",
}
COMMITTED = sorted(
  path
  for path in report.RESULTS.rglob("*.json")
  if has_figures(path) and str(path.relative_to(report.RESULTS)) not in NOT_REDRAWN
)


def test_a_config_is_rebuilt_with_nested_dataclasses_and_tuples():
  values = {"time": 7, "k2s": [5, 7], "train": {"steps": 3, "batch_size": 2}, "cost_k2s": [25]}
  config = redraw.rebuild(tbptt.Config, values, "config")
  assert config == tbptt.Config(time=7, k2s=(5, 7), train=TrainConfig(steps=3, batch_size=2), cost_k2s=(25,))


def test_fields_a_script_no_longer_has_are_refused_by_name():
  with pytest.raises(ValueError, match=r"config\.train\.warp: TrainConfig has no such field"):
    redraw.rebuild(tbptt.Config, {"train": {"warp": 9}}, "config")
  with pytest.raises(ValueError, match=r"config\.train must be an object of TrainConfig's fields, got int"):
    redraw.rebuild(tbptt.Config, {"train": 3}, "config")


def test_a_file_from_before_a_rename_is_read_through_the_scripts_renamed_map(tmp_path):
  committed = json.loads((report.RESULTS / "tbptt.json").read_text())
  assert {"steps", "batch", "learning_rate"} <= set(committed["config"])  # the layout before `train`
  _, _, config = redraw.load(report.RESULTS / "tbptt.json")
  assert (config.train.steps, config.train.batch_size, config.train.learning_rate) == (250, 64, 1e-2)
  assert config.train.clip_norm is None  # today's default, as the old script had no clipping
  assert (committed["config"]["cost_hidden"], config.cost_hidden_features) == (128, 128)  # issue #29's name


def test_a_benchmark_file_from_before_issue_29_reads_its_knobs_under_the_librarys_names():
  committed = json.loads((report.RESULTS / "bench" / "layers.json").read_text())
  assert (committed["config"]["heads"], committed["config"]["conv_layers"]) == (4, 10)
  _, _, config = redraw.load(report.RESULTS / "bench" / "layers.json")
  assert (config.num_heads, config.conv_num_layers) == (4, 10)
  committed = json.loads((report.RESULTS / "bench" / "seq2seq_step.json").read_text())
  assert committed["config"]["hiddens"] == [64, 256]
  assert redraw.load(report.RESULTS / "bench" / "seq2seq_step.json")[2].hidden_features == (64, 256)


def test_a_file_from_before_issue_29_reads_its_knobs_and_seed_count_under_todays_names():
  committed = json.loads((report.RESULTS / "gradient_decay.json").read_text())
  assert (committed["config"]["hidden"], committed["config"]["layers"], committed["config"]["seeds"]) == (64, 2, 3)
  _, _, config = redraw.load(report.RESULTS / "gradient_decay.json")
  assert (config.hidden_features, config.num_layers, config.seeds) == (64, 2, (0, 1, 2))  # a count of 3: seeds 0-2


def test_the_synthetic_translation_files_from_before_issue_29_read_their_widths_under_the_librarys_names():
  committed = json.loads((report.RESULTS / "bottleneck.json").read_text())["config"]
  assert (committed["fixed_hiddens"], committed["attention_hidden"], committed["embed"]) == ([64, 128, 256], 64, 64)
  _, _, config = redraw.load(report.RESULTS / "bottleneck.json")
  widths = (config.fixed_hidden_features, config.attention_hidden_features, config.control_hidden_features)
  assert (widths, config.embed_dim) == (((64, 128, 256), 64, 128), 64)


def test_a_nested_task_config_written_under_the_old_names_reads_under_the_librarys(tmp_path):
  record = json.loads((report.RESULTS / "attention_scores.json").read_text())
  task = record["config"]["task"]  # the committed file's, under today's names
  old_task = {old: task[new] for old, new in synthetic_translation.RENAMED.items() if new in task}
  old_task |= {name: value for name, value in task.items() if name not in synthetic_translation.RENAMED.values()}
  assert (old_task["attention_hidden"], old_task["embed"]) == (32, 32)  # as a file from before #29 holds them
  _, _, config = redraw.load(
    write(tmp_path / "attention_scores.json", {**record, "config": {**record["config"], "task": old_task}})
  )
  task = config.task
  assert (task.attention_hidden_features, task.embed_dim, task.fixed_hidden_features) == (32, 32, (32,))


def write(path: Path, record) -> Path:
  path.write_text(record if isinstance(record, str) else json.dumps(record))
  return path


def test_bad_files_are_refused_by_name_before_anything_is_drawn(tmp_path):
  cases = [
    ('{"config": {"time": 7', "not a readable results file"),
    ([1, 2], r"not a results file \(no config object\)"),
    ({"config": {}, "provenance": {"command": "python -m os default"}}, "provenance.command must name an experiment"),
    ({"config": {}, "provenance": {"command": "python -m experiments.nothing"}}, "must name an experiment"),
    ({"config": {}, "provenance": {}}, "must name an experiment"),
    ({"config": {}, "provenance": {"command": "python -m experiments.translation default"}}, "has no redraw"),
    ({"config": {"time": 1}, "provenance": {"command": "python -m experiments.tbptt default"}}, "time must be"),
    ({"config": {"hours": 1}, "provenance": {"command": "python -m experiments.tbptt default"}}, r"config\.hours"),
  ]
  for index, (record, message) in enumerate(cases):
    path = write(tmp_path / f"case{index}.json", record)
    with pytest.raises(ValueError, match=message) as error:
      redraw.redraw(path, tmp_path / "out")
    assert str(path) in str(error.value)
  assert not (tmp_path / "out").exists()


def test_the_command_line_draws_beside_the_file_whatever_its_out_and_refuses_out_with_several_files(tmp_path, capsys):
  record = json.loads((report.RESULTS / "clipping.json").read_text())
  record["config"]["out"] = "/proc/elsewhere"  # written elsewhere: the figures still go beside the file
  redraw.main([str(write(tmp_path / "clipping.json", record))])
  assert capsys.readouterr().out == f"wrote {tmp_path / 'clipping.png'}\n"  # its one figure, and nothing elsewhere
  assert (tmp_path / "clipping.png").is_file()
  with pytest.raises(SystemExit):
    redraw.main([str(tmp_path / "clipping.json"), str(tmp_path / "clipping.json"), "--out", str(tmp_path)])
  assert "--out takes one results file" in capsys.readouterr().err
  with pytest.raises(SystemExit, match="not a readable results file"):
    redraw.main([str(tmp_path / "absent.json")])


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(report.RESULTS)))
def test_every_committed_figure_is_what_its_script_draws_from_its_results_file(path, tmp_path):
  """Pixel for pixel (PNG metadata apart): `python -m harness.redraw FILE` after changing a script's drawing code."""
  paths = redraw.redraw(path, tmp_path)
  assert paths
  for drawn in paths:
    committed = path.parent / drawn.name
    assert committed.is_file(), committed
    assert np.array_equal(image.imread(drawn), image.imread(committed)), f"{committed}: python -m harness.redraw {path}"


def test_a_file_without_a_number_its_figures_need_is_refused_by_name(tmp_path):
  path = report.RESULTS / "rerun" / "hidden_state_drill.json"
  with pytest.raises(ValueError, match=r"no 'example' in the file, which experiments.hidden_state_drill's figures"):
    redraw.redraw(path, tmp_path)
  assert not list(tmp_path.iterdir())


def test_the_committed_figures_checked_include_the_reruns_and_the_full_config():
  names = {str(path.relative_to(report.RESULTS)) for path in COMMITTED}
  assert {"clipping.json", "tbptt.json", "full/long_range.json", "bench/layers.json", "rerun/tbptt.json"} <= names
