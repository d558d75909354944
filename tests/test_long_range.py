"""The long-range tasks put the answer exactly D steps back, bad settings are refused, and the
experiment's bookkeeping (matched widths, longest solved distance) counts what it says; with a
learning-rate grid each model trains at the rate its pilots chose on validation sequences."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from experiments import long_range
from harness import cli, long_range_runs
from seqjax import zoo
from seqjax.data import long_range as tasks

GRID = ["1e-3", "3e-3", "1e-2", "3e-2"]


@pytest.mark.parametrize("distance", [2, 5, 16])
def test_copy_answers_the_symbol_seen_distance_steps_before_the_go_marker(distance):
  batch = tasks.make_batch("copy", distance, np.random.default_rng(0), 64)
  tokens = batch["x"].argmax(-1)  # [B, T]
  assert batch["x"].shape == (64, distance + 1, tasks.SYMBOLS + 1)
  assert (tokens[:, -1] == tasks.SYMBOLS).all() and (tokens[:, :-1] < tasks.SYMBOLS).all()
  np.testing.assert_array_equal(batch["y"], tokens[:, -1 - distance])
  assert len(set(batch["y"].tolist())) > 1


@pytest.mark.parametrize("distance", [2, 5, 16])
def test_recall_answers_the_one_marked_symbol_distance_steps_back(distance):
  batch = tasks.make_batch("recall", distance, np.random.default_rng(1), 64)
  x = batch["x"]
  marker = x[..., -1]  # [B, T]
  assert x.shape[1] == tasks.PREFIX + distance + 1
  np.testing.assert_array_equal(marker.sum(1), 1.0)
  marked = marker.argmax(1)
  np.testing.assert_array_equal(x.shape[1] - 1 - marked, distance)
  tokens = x[..., :-1].argmax(-1)
  np.testing.assert_array_equal(batch["y"], tokens[np.arange(64), marked])
  assert (tokens[:, -1] == tasks.SYMBOLS).all()


def test_adding_marks_one_value_in_the_first_tenth_and_one_in_the_second_half():
  distance = 40
  batch = tasks.make_batch("adding", distance, np.random.default_rng(2), 128)
  values, markers = batch["x"][..., 0], batch["x"][..., 1]
  np.testing.assert_array_equal(markers.sum(1), 2.0)
  first, second = markers.argmax(1), distance - 1 - markers[:, ::-1].argmax(1)
  assert (first < distance // 10).all() and (second >= distance // 2).all()
  np.testing.assert_allclose(batch["y"], (values * markers).sum(1))
  assert abs(np.var(batch["y"]) - tasks.ADDING_VARIANCE) < 0.05


@pytest.mark.parametrize("task", tasks.TASKS)
@pytest.mark.parametrize("distance", [2, 17])
def test_sequence_length_is_the_batches_time_axis(task, distance):
  batch = tasks.make_batch(task, distance, np.random.default_rng(3), 2)
  assert tasks.sequence_length(task, distance) == batch["x"].shape[1]


def test_sequence_length_refuses_an_unknown_task():
  with pytest.raises(ValueError, match="task"):
    tasks.sequence_length("sort", 8)


@pytest.mark.parametrize("name", ["LSTM, forget bias 1", "LRU", "Transformer (causal, RoPE)"])
def test_matched_width_comes_nearest_the_target_among_multiples_of_four(name):
  build = long_range.predictor(long_range.ARCHITECTURES[name], "adding")
  width, count = zoo.matched_width(build, 3000)
  assert width % 4 == 0
  assert zoo.count_params(build(width, nnx.Rngs(0))) == count  # the model as built, initialized

  def size(w):  # the neighbours' counts from their shapes alone (initializing each costs seconds)
    return zoo.count_params(nnx.eval_shape(lambda: build(w, nnx.Rngs(0))))

  for neighbour in (width - 4, width + 4):
    if neighbour >= 4:
      assert abs(size(neighbour) - 3000) >= abs(count - 3000)


def test_longest_solved_needs_every_shorter_distance_solved():
  runs = [{"distance": d, "solved": s} for d, s in ((4, True), (8, False), (16, True))]
  assert long_range.longest_solved(runs, (4, 8, 16)) == 4
  assert long_range.longest_solved(runs[1:], (4, 8, 16)) == 0
  assert long_range.distances_text([0, 4, 16], (4, 8, 16), longest_run=16) == "4 [< 4 to >= 16]"


def test_a_diverged_run_is_reported_as_such_not_as_a_score():
  runs = [{"score": 0.5}, {"score": None}, {"score": 0.7}]
  assert long_range.score_text(runs) == "0.60 [0.50-0.70] (1 of 3 diverged)"
  assert long_range.drawn(runs[1]) == long_range.FLOOR


@pytest.mark.parametrize(
  "task,distance,size,message",
  [
    ("sort", 4, 2, "task must be one of"),
    ("copy", 1, 2, "distance must be an integer >= 2, got 1"),
    ("adding", 8, 0, "size"),
  ],
)
def test_bad_task_settings_are_refused(task, distance, size, message):
  with pytest.raises(ValueError, match=message):
    tasks.make_batch(task, distance, np.random.default_rng(0), size)


def test_a_diverged_run_prints_as_diverged():
  from experiments.long_range import run_text

  assert run_text({"score": None}) == "diverged" and run_text({"score": 0.5}) == "0.500"


@pytest.mark.parametrize("task", tasks.TASKS)
def test_validation_sequences_are_drawn_apart_from_the_test_and_training_sequences(task):
  def drawn(split):
    return long_range_runs.fingerprints(long_range_runs.held_out(task, 16, 0, 256, split)["x"])

  validation, test = drawn("validation"), drawn("test")
  assert len(validation) == len(test) == 256 and not validation & test
  training = set().union(
    *(long_range_runs.fingerprints(tasks.make_batch(task, 16, long_range_runs.generator(task, 16, 0, step), 32)["x"])
      for step in range(8))
  )  # fmt: skip
  assert not training & validation and not training & test
  with pytest.raises(ValueError, match=r"split must be one of \('test', 'validation'\), got 'valid'"):
    long_range_runs.held_out(task, 16, 0, 4, "valid")


def test_the_tuned_path_trains_each_model_at_the_rate_its_pilots_chose(tmp_path, monkeypatch):
  calls = []  # (split, distance, steps, learning rate) of each training

  def recorded(name, build, task, distance, seed, train, test_size, split="test"):
    calls.append((split, distance, train.steps, train.learning_rate))
    return long_range_runs.train_and_test(name, build, task, distance, seed, train, test_size, split)

  monkeypatch.setattr(long_range, "train_and_test", recorded)
  tuned = ["smoke", "--tasks", "adding", "--learning-rates", *GRID, "--extend-grid", "1", "--no-pilot-shorter"]
  tuned += ["--out", str(tmp_path)]
  long_range.main(tuned)  # smoke's pilots: 2 steps at D = 8, and no shorter distance tried
  data = json.loads((tmp_path / "long_range.json").read_text())
  tuning = data["tuning"]["LSTM, forget bias 1 / adding"]
  assert tuning["grid"] == [1e-3, 3e-3, 1e-2, 3e-2] and tuning["score"] == "valid_loss"
  pilots = tuning["pilots"]
  assert [p["learning_rate"] for p in pilots[:4]] == tuning["grid"] and len(pilots) <= 5
  assert all(p["distance"] == 8 and p["steps"] == 2 for p in pilots)
  losses = [p["valid_loss"] for p in pilots]
  chosen = tuning["chosen"]["learning_rate"]
  assert chosen == pilots[losses.index(min(loss for loss in losses if loss is not None))]["learning_rate"]
  # the pilots train on validation sequences at D = 8 for 2 steps, then every run at the chosen rate on the test's
  assert calls[: len(pilots)] == [("validation", 8, 2, p["learning_rate"]) for p in pilots]
  assert calls[len(pilots) :] == [("test", r["distance"], 4, chosen) for r in data["runs"]]
  assert data["runs"] and all(r["learning_rate"] == chosen for r in data["runs"])
  page = (tmp_path / "long_range.md").read_text()
  assert f"| adding | LSTM, forget bias 1 | 8 | 361 | {chosen:g} |" in page
  assert "## Learning-rate pilots" in page and f"LSTM, forget bias 1 (adding, D=8): peak lr {chosen:g}" in page
  assert f"| LSTM, forget bias 1 (adding, D=8) | {chosen:g} |" in page  # the chosen pilot's row
  keys = [json.loads(line)["key"] for line in (tmp_path / "long_range.runs.jsonl").read_text().splitlines()]
  assert sum(key.startswith("pilot|") for key in keys) == len(pilots)
  assert sum(key.endswith(f"|lr {chosen:g}") for key in keys) == len(data["runs"])
  calls.clear()
  long_range.main(tuned)  # every pilot and run read back from the journal
  again = json.loads((tmp_path / "long_range.json").read_text())
  assert not calls and again["tuning"] == data["tuning"] and again["runs"] == data["runs"]


def test_where_no_pilot_solves_the_pilots_run_again_at_the_next_shorter_distance(tmp_path, monkeypatch):
  calls = []  # (split, distance, learning rate) of each training
  solves = {(8, 3e-2), (4, 1e-2), (4, 3e-2)}  # the pilots (distance, rate) whose validation score is set to solved

  def scored(name, build, task, distance, seed, train, test_size, split="test"):
    calls.append((split, distance, train.learning_rate))
    run = long_range_runs.train_and_test(name, build, task, distance, seed, train, test_size, split)
    if split == "validation":  # a pilot: solved, with the lowest loss at the faster rate, only where `solves` says
      solved = (distance, train.learning_rate) in solves
      run |= {"score": 1.0 if solved else 0.1, "held_out_loss": 1e-3 / train.learning_rate if solved else 2.0}
    return run

  monkeypatch.setattr(long_range, "train_and_test", scored)
  args = ["smoke", "--tasks", "copy", "--distances", "4", "8", "16", "--pilot-distance", "16", "--learning-rates"]
  long_range.main([*args, *GRID, "--extend-grid", "0", "--depth-layers", "--out", str(tmp_path)])
  data = json.loads((tmp_path / "long_range.json").read_text())
  tuning = data["tuning"]["LSTM, forget bias 1 / copy"]
  # no pilot solves at D = 16, one does at D = 8: its rate trains; D = 4 is never piloted
  pilots = [call for call in calls if call[0] == "validation"]
  assert pilots == [("validation", d, float(r)) for d in (16, 8) for r in GRID]
  assert tuning["pilot_distance"] == 8 and tuning["chosen"]["learning_rate"] == 3e-2
  assert [t["pilot_distance"] for t in tuning["unsolved_longer"]] == [16]
  assert [p["distance"] for p in tuning["unsolved_longer"][0]["pilots"]] == [16] * 4
  assert all(r["learning_rate"] == 3e-2 for r in data["runs"]) and data["runs"]
  page = (tmp_path / "long_range.md").read_text()
  assert "| LSTM, forget bias 1 (copy, D=16) | 0.001 |" in page and "| LSTM, forget bias 1 (copy, D=8) | 0.03 |" in page
  assert "pilots run again at the next shorter distance" in page
  calls.clear()
  long_range.main([*args, *GRID, "--extend-grid", "0", "--depth-layers", "--out", str(tmp_path)])
  assert [call for call in calls if call[0] == "validation"] == []  # both distances' pilots read back
  assert json.loads((tmp_path / "long_range.json").read_text())["tuning"] == data["tuning"]


def test_the_lstm_control_trains_a_wider_lstm_for_longer_where_control_params_asks(tmp_path, monkeypatch):
  calls = []  # (distance, steps, parameters) of each training

  def recorded(name, build, task, distance, seed, train, test_size, split="test"):
    model = build(nnx.Rngs(0))
    calls.append((distance, train.steps, sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))))
    return long_range_runs.train_and_test(name, build, task, distance, seed, train, test_size, split)

  monkeypatch.setattr(long_range, "train_and_test", recorded)
  wider = ["--control-factor", "2", "--control-params", "2000"]
  long_range.main(["smoke", "--tasks", "copy", *wider, "--out", str(tmp_path)])
  data = json.loads((tmp_path / "long_range.json").read_text())
  ((series_width, series_count),) = {(w["width"], w["parameters"]) for w in data["widths"].values()}
  if data["control_runs"] == []:
    pytest.skip("the LSTM solved D = 4 in 4 steps: no control to run")
  series, control = calls[:1], calls[-1:]  # no seed solves D = 4: the series stops there, the control runs at it
  assert series[0][:2] == (4, 4) and control[0][:2] == (4, 8)
  assert series[0][2] == series_count < 1000 and 1500 <= control[0][2] <= 2500  # ~2,000 parameters, the width matched
  text = (tmp_path / "long_range.md").read_text()
  assert f"after 4 steps at width {series_width}," in text and f"({control[0][2]:,} parameters)" in text
  with pytest.raises(ValueError, match="control_params must be an integer >= 100, got 5"):
    long_range.main(["smoke", "--control-params", "5", "--out", str(tmp_path)])


def test_the_wider_lstm_control_trains_at_the_rate_its_own_pilots_chose_at_its_width(tmp_path, monkeypatch):
  calls = []  # (split, steps, parameters, learning rate) of each training

  def recorded(name, build, task, distance, seed, train, test_size, split="test"):
    count = sum(x.size for x in jax.tree.leaves(nnx.state(build(nnx.Rngs(0)), nnx.Param)))
    calls.append((split, train.steps, count, train.learning_rate))
    return long_range_runs.train_and_test(name, build, task, distance, seed, train, test_size, split)

  monkeypatch.setattr(long_range, "train_and_test", recorded)
  args = ["smoke", "--tasks", "copy", "--learning-rates", *GRID, "--extend-grid", "0", "--control-factor", "2"]
  args += ["--no-pilot-shorter"]
  long_range.main([*args, "--control-params", "2000", "--depth-layers", "--out", str(tmp_path)])
  data = json.loads((tmp_path / "long_range.json").read_text())
  if data["control_runs"] == []:
    pytest.skip("the LSTM solved D = 4 in 4 steps: no control to run")
  assert data["depth_runs"] == []  # no depth_layers: no depth sweep
  (series_count,) = {w["parameters"] for w in data["widths"].values()}
  control_count = data["control_runs"][0]["budget"]["parameters"]
  wide = next(key for key in data["tuning"] if key != "LSTM, forget bias 1 / copy")
  assert wide.startswith("LSTM, forget bias 1, width ") and wide.endswith(" / copy") and len(data["tuning"]) == 2
  pilots = [call for call in calls if call[0] == "validation"]  # 4 at the series' width, then 4 at the control's
  assert [call[2] for call in pilots] == [series_count] * 4 + [control_count] * 4 and control_count > 2 * series_count
  assert [call[3] for call in pilots] == [float(r) for r in GRID] * 2
  chosen = data["tuning"][wide]["chosen"]["learning_rate"]
  assert calls[-1] == ("test", 8, control_count, chosen)  # the control: twice the steps at its own rate
  assert all(r["learning_rate"] == chosen for r in data["control_runs"])
  assert f"(its copy rate, tuned at width {wide.split()[5]})" in (tmp_path / "long_range.md").read_text()
  keys = [json.loads(line)["key"] for line in (tmp_path / "long_range.runs.jsonl").read_text().splitlines()]
  fingerprints = {key.removeprefix("pilot|").split("|")[2] for key in keys}
  assert len(fingerprints) == 2  # the journal tells the two widths apart


@pytest.mark.parametrize(
  "args,message",
  [
    (["--learning-rates", "1e-3", "1e-2"], "learning_rates must hold at least 4 learning rates"),
    (["--learning-rates", *GRID, "--pilot-steps", "5"], r"pilot_steps must be .* \[2, 4\]"),
    (["--learning-rates", *GRID, "--pilot-distance", "1"], "pilot_distance must be an integer >= 2, got 1"),
    (["--learning-rates", *GRID, "--extend-grid", "-1"], "extend_grid must be an integer >= 0"),
  ],
)
def test_a_bad_tuning_setting_is_refused_before_any_work(args, message):
  with pytest.raises(ValueError, match=message):
    cli.parse(long_range.CONFIGS, ["smoke", *args])


def test_each_run_records_its_budget_and_convergence_and_the_table_shows_them(tmp_path):
  long_range.main(["smoke", "--tasks", "adding", "--train.log-every", "1", "--out", str(tmp_path)])
  data = json.loads((tmp_path / "long_range.json").read_text())
  run = data["runs"][0]  # the LSTM on adding at D = 4: 4 steps of batch 8
  count = data["widths"]["LSTM, forget bias 1 / adding"]["parameters"]
  readout = data["widths"]["LSTM, forget bias 1 / adding"]["width"] + 1  # width x 1 kernel and a bias
  assert run["budget"]["parameters"] == count and run["budget"]["training_tokens"] == 4 * 8 * 4
  assert run["budget"]["flops_per_token"] == pytest.approx(6 * (count - readout) + 6 * readout / 4)
  # windows of 0.8 steps over the last 40% (constant rate): the loss in decades at step 3 against step 4
  losses = dict(run["train_loss"])
  assert run["convergence"]["improvement"] == pytest.approx(np.log10(losses[3]) - np.log10(losses[4]))
  assert run["convergence"]["converged"] == (run["convergence"]["improvement"] < 0.05)
  page = (tmp_path / "long_range.md").read_text()
  assert "| training tokens | nominal GFLOP | train s | converged |" in page and " of 1 seeds |" in page
