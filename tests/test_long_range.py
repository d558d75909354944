"""The long-range tasks put the answer exactly D steps back, bad settings are refused, and the
experiment's bookkeeping (matched widths, longest solved distance) counts what it says."""

import numpy as np
import pytest
from flax import nnx

from experiments import long_range
from seqjax import zoo
from seqjax.data import long_range as tasks


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
