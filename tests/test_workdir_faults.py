"""fit under faults: corrupted and torn checkpoints, torn metrics, another run's workdir, two
runs at once, an exception mid-save, a kill -9 during a save (issue #11), and bad input to fit."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax.train import fit
from seqjax.train.checkpoint import state_checksum
from seqjax.train.records import WorkdirLock, read_metrics
from tests import tiny_lm
from tests.conftest import COMPILE_CACHE

REPO = Path(__file__).resolve().parent.parent


RUN = {"steps": 4, "save_every": 2}  # checkpoints at steps 1 (orbax saves the first), 2 and 4


def run(workdir, stop_after=None, **overrides):
  config = tiny_lm.config(**overrides)
  return fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, config, workdir=workdir, stop_after=stop_after)


def losses(workdir) -> list[float]:
  return [json.loads(line)["loss"] for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
  """The workdir of a run of RUN, never interrupted (tests that write to it work on a copy)."""
  workdir = tmp_path_factory.mktemp("whole")
  run(workdir, **RUN)
  return workdir


@pytest.fixture(scope="module")
def uninterrupted(finished) -> list[float]:
  """The logged losses of a run with checkpoints, never interrupted."""
  return losses(finished)


def copy_of(finished: Path, tmp_path: Path) -> Path:
  return Path(shutil.copytree(finished, tmp_path / "run"))


def data_files(step_dir: Path) -> list[Path]:
  """The array data files of a checkpoint (tensorstore OCDBT's data folders `d/`)."""
  return sorted(p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d")


def flip_byte(path: Path) -> None:
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x5A
  path.write_bytes(data)


def test_flipped_byte_in_data_falls_back_and_the_run_repeats_bit_for_bit(tmp_path, finished, uninterrupted, caplog):
  workdir = copy_of(finished, tmp_path)
  for path in data_files(workdir / "checkpoints" / "4"):  # (some hold superseded OCDBT nodes, never read)
    flip_byte(path)
  with caplog.at_level(logging.WARNING):
    resumed = run(workdir, **RUN)
  assert "checkpoint" in caplog.text and "is unusable" in caplog.text
  assert resumed.history[0]["step"] == 3  # from the good step-2 checkpoint
  assert losses(workdir) == uninterrupted
  assert [p.name.split("-")[0] for p in (workdir / "quarantine").iterdir()] == ["4"]
  assert run(workdir, **RUN).history == []  # step 4 was saved again: nothing left to do


def test_checksum_mismatch_is_caught(tmp_path, finished, uninterrupted):
  workdir = copy_of(finished, tmp_path)
  saved = workdir / "checkpoints" / "4" / "checksum" / "metadata"
  checksum = json.loads(saved.read_text())
  checksum[0][0] = (checksum[0][0] + 1) % 2**32
  saved.write_text(json.dumps(checksum))
  assert run(workdir, **RUN).history[0]["step"] == 3
  assert losses(workdir) == uninterrupted


def test_checksum_sees_one_flipped_bit_in_any_dtype():
  tree = {"f": jnp.arange(6.0), "b": jnp.ones(3, jnp.bfloat16), "i": jnp.arange(4), "k": jnp.array([True, False])}
  reference = state_checksum(tree)
  for name, x in tree.items():
    bits = np.asarray(x).view(np.uint8).copy()
    bits[1] ^= 1
    changed = {**tree, name: jnp.asarray(bits.view(np.asarray(x).dtype))} if x.dtype != jnp.bool_ else None
    if changed is not None:
      assert state_checksum(changed) != reference, name


def test_all_checkpoints_torn_restarts_and_saves_again(tmp_path, finished, uninterrupted):
  workdir = copy_of(finished, tmp_path)
  for step_dir in (workdir / "checkpoints").iterdir():
    for path in data_files(step_dir):
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  restarted = run(workdir, **RUN)
  assert restarted.history[0]["step"] == 1
  assert losses(workdir) == uninterrupted
  assert "4" in os.listdir(workdir / "checkpoints")  # orbax did not skip the save


def test_torn_last_metrics_line_is_dropped(tmp_path, finished, uninterrupted):
  """The workdir a kill leaves while step 4's metrics line is half written: checkpoint 4 not
  begun (the newest is step 2), lines 1-3 whole and line 4 torn."""
  workdir = copy_of(finished, tmp_path)
  shutil.rmtree(workdir / "checkpoints" / "4")
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  (workdir / "metrics.jsonl").write_text("".join(line + "\n" for line in lines[:3]) + '{"step": 4, "loss": 1.2')
  assert run(workdir, **RUN).history[0]["step"] == 3
  assert losses(workdir) == uninterrupted


def test_another_model_with_the_same_train_config_is_refused(tmp_path, finished):
  other = tiny_lm.make_model()
  other.stack.blocks.pop()  # no layer (tiny_lm has one), same TrainConfig
  with pytest.raises(ValueError, match=r"different config or model \(differs in: model.parameters"):
    fit(other, tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(**RUN), workdir=copy_of(finished, tmp_path))


@pytest.mark.parametrize("text", ["", "{not json"])
def test_unreadable_config_json_is_a_clear_error(tmp_path, text):
  (tmp_path / "config.json").write_text(text)
  with pytest.raises(ValueError, match=r"config\.json is empty or not valid JSON"):
    run(tmp_path, steps=2)


def test_a_second_run_on_a_locked_workdir_is_refused(tmp_path):
  lock = WorkdirLock(tmp_path)  # another run holds the workdir
  with pytest.raises(RuntimeError, match=f"workdir {tmp_path} is in use by another run \\(process {os.getpid()}\\)"):
    run(tmp_path, steps=2)
  lock.release()
  assert len(run(tmp_path, steps=2).history) == 2


def test_an_exception_waits_for_the_checkpoint_in_flight(tmp_path):
  def batch_fn(step, rows):
    return {**tiny_lm.batch_fn(step, rows), "step": np.full((8,), step)[rows]}

  def diverging(model, batch, rng):  # NaN gradients at step index 2
    loss, metrics = tiny_lm.loss_fn(model, {"tokens": batch["tokens"]}, rng)
    return loss * jnp.where(batch["step"][0] == 2, jnp.nan, 1.0), metrics

  config = tiny_lm.config(steps=4, save_every=1, nonfinite="stop")
  with pytest.raises(FloatingPointError, match="at step 3"):
    fit(tiny_lm.make_model(), diverging, batch_fn, config, workdir=tmp_path)
  newest = max(int(p.name) for p in (tmp_path / "checkpoints").iterdir())
  assert newest >= 2 and (tmp_path / "checkpoints" / str(newest) / "commit_success.txt").exists()


def test_unfinished_writes_are_moved_away_and_keep_counts_real_checkpoints(tmp_path, finished):
  workdir = copy_of(finished, tmp_path)
  shutil.rmtree(workdir / "checkpoints" / "4")  # a run stopped before step 4: checkpoints 1 and 2
  (workdir / "checkpoints" / "3").mkdir()  # cut short: no commit marker
  (workdir / "checkpoints" / "4.orbax-checkpoint-tmp-1").mkdir()
  resumed = run(workdir, **RUN)
  assert resumed.history[0]["step"] == 3
  assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2", "4"]  # keep=3: counting "3", 1 would go
  assert len(os.listdir(workdir / "quarantine")) == 2


def test_diverging_updates_are_skipped_then_stop_the_run():
  config = {"optimizer": "sgd", "learning_rate": 1e38, "clip_norm": None, "steps": 5}
  result = fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(**config, skip_limit=100))
  assert sum(record["skipped"] for record in result.history) >= 3
  assert all(jnp.isfinite(p).all() for p in jax.tree.leaves(nnx.state(result.model, nnx.Param)))
  with pytest.raises(FloatingPointError, match="updates in a row skipped"):
    fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(**config, skip_limit=3))


def test_attention_key_bias_is_not_called_vanishing(finished):
  assert [record["vanishing"] for record in read_metrics(finished)] == [0, 0, 0, 0]


@pytest.mark.parametrize(
  "batch_fn,loss_fn,match",
  [
    (lambda step, rows: {"tokens": tiny_lm.DATA[:5]}, tiny_lm.loss_fn, r"must return arrays of the 8 rows"),
    (tiny_lm.batch_fn, lambda m, b, r: (jnp.ones(3) * m(b["tokens"]).mean(), {}), r"loss a scalar float array.*\[3\]"),
    (tiny_lm.batch_fn, lambda m, b, r: (1.0, {}), "loss a scalar float array from the model, got float 1.0"),
    (tiny_lm.batch_fn, lambda m, b, r: m(b["tokens"]).mean(), r"loss_fn must return \(loss, metrics\).*float32\[\]"),
    (tiny_lm.batch_fn, lambda m, b, r: (m(b["tokens"]).mean(), 2.0), r"return \(loss, metrics\).*metrics are a float"),
  ],
)
def test_bad_batches_and_losses(batch_fn, loss_fn, match):
  with pytest.raises(ValueError, match=match):
    fit(tiny_lm.make_model(), loss_fn, batch_fn, tiny_lm.config(steps=1))


def test_a_file_as_workdir_is_refused(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(ValueError, match="is a file, not a folder"):
    run(tmp_path / "file", steps=1)


# ---- a real process killed during a save ---------------------------------------------------------


def test_kill_during_a_save_resumes_bit_for_bit(tmp_path, uninterrupted):
  """A fit subprocess saving every step is killed (SIGKILL) while an orbax write is in flight;
  the run resumed from its workdir (here, in the test's process) logs an uninterrupted run's
  metrics."""
  worker = [sys.executable, "-m", "tests.fit_worker", str(tmp_path), str(RUN["steps"])]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO), "JAX_COMPILATION_CACHE_DIR": COMPILE_CACHE}
  process = subprocess.Popen(worker, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  checkpoints = tmp_path / "checkpoints"
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline and process.poll() is None:
    if checkpoints.exists() and any(".orbax-checkpoint-tmp" in p.name for p in checkpoints.iterdir()):
      break  # a save is being written now
    time.sleep(0.002)
  assert process.poll() is None, f"the worker ended before a save was caught: {process.stderr.read().decode()[-2000:]}"
  os.kill(process.pid, signal.SIGKILL)
  process.wait()
  run(tmp_path, steps=RUN["steps"], save_every=1)  # the worker's config, resumed here (the same XLA flags)
  assert losses(tmp_path) == uninterrupted
