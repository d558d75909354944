"""fit under preemption and the faults of issue #32: SIGTERM and SIGINT (real processes, a save in
flight included), a failed background save (a full disk), a read-only workdir, metrics.jsonl
lines that are not records, config.json edited by hand."""

import concurrent.futures
import errno
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orbax.checkpoint as ocp
import pytest

from seqjax.train import fit, preemption
from seqjax.train.checkpoint import CheckpointSaveError
from seqjax.train.records import MetricsLog, WorkdirLock
from tests import tiny_lm
from tests.conftest import COMPILE_CACHE

REPO = Path(__file__).resolve().parent.parent
RUN = {"steps": 4, "save_every": 2}  # checkpoints at steps 1 (orbax saves the first), 2 and 4
ENV = {
  **os.environ,  # with conftest's XLA_FLAGS: the same numbers as here
  "JAX_PLATFORMS": "cpu",
  "PYTHONPATH": str(REPO),
  "JAX_COMPILATION_CACHE_DIR": COMPILE_CACHE,  # compiled once for the whole suite
}


def run(workdir, batch_fn=tiny_lm.batch_fn, stop_after=None, **overrides):
  config = tiny_lm.config(**{**RUN, **overrides})
  return fit(tiny_lm.make_model(), tiny_lm.loss_fn, batch_fn, config, workdir=workdir, stop_after=stop_after)


def losses(workdir) -> list[float]:
  return [json.loads(line)["loss"] for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]


def final_checksum(workdir) -> list:
  """The checksum of every byte of the last step's state (parameters, optimizer, step, key)."""
  return json.loads((Path(workdir) / "checkpoints" / str(RUN["steps"]) / "checksum" / "metadata").read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
  """The workdir of a run of RUN, never interrupted (tests that write to it work on a copy)."""
  workdir = tmp_path_factory.mktemp("whole")
  run(workdir)
  return workdir


@pytest.fixture(scope="module")
def uninterrupted(finished) -> tuple[list[float], list]:
  """The logged losses and the final state's checksum of a run never interrupted."""
  return losses(finished), final_checksum(finished)


def copy_of(finished: Path, tmp_path: Path) -> Path:
  return Path(shutil.copytree(finished, tmp_path / "run"))


def assert_resumes_bit_for_bit(workdir, stopped_at: int, uninterrupted, **overrides) -> None:
  resumed = run(workdir, **overrides)
  assert resumed.history[0]["step"] == stopped_at + 1
  assert (losses(workdir), final_checksum(workdir)) == uninterrupted


def committed_steps(workdir) -> list[str]:
  return sorted(p.name for p in (Path(workdir) / "checkpoints").iterdir())


def worker(workdir, *args) -> list[str]:
  """tests/fit_worker.py on workdir with RUN's steps: save_every, delay per batch, stop_after."""
  return [sys.executable, "-m", "tests.fit_worker", str(workdir), str(RUN["steps"]), *map(str, args)]


def start(command, **kwargs) -> subprocess.Popen:
  return subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def wait_until(condition, process: subprocess.Popen, what: str) -> None:
  deadline = time.monotonic() + 300
  while not condition():
    if process.poll() is not None or time.monotonic() > deadline:
      process.kill()
      raise AssertionError(f"the worker ended or stalled before {what}: {process.communicate()[1].decode()[-2000:]}")
    time.sleep(0.002)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
  """The worker's stdout and stderr once it has exited; a worker still alive after `timeout` (a
  hang at exit) fails the test."""
  try:
    stdout, stderr = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    stderr = process.communicate()[1].decode()[-2000:]
    raise AssertionError(f"the worker hung for {timeout} s after the signal: {stderr}") from None
  return stdout.decode(), stderr.decode()


# ---- SIGTERM and SIGINT ---------------------------------------------------------------------------


def test_sigterm_finishes_the_step_saves_it_and_exits_then_resumes_bit_for_bit(tmp_path, uninterrupted):
  """A real fit process (its step 3 slow) gets SIGTERM during step 3, which saves nothing by
  itself: it finishes step 3, saves it, and exits with status 143 (128 + SIGTERM)."""
  process = start(worker(tmp_path, RUN["save_every"], 1.5))
  metrics = tmp_path / "metrics.jsonl"
  wait_until(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, process, "step 2")
  process.send_signal(signal.SIGTERM)  # batch 3 is being loaded (1.5 s)
  _, stderr = finish(process)
  assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
  assert f"SIGTERM: fit stopped at step 3, saved in {tmp_path}" in stderr
  assert committed_steps(tmp_path) == ["1", "2", "3"]
  assert_resumes_bit_for_bit(tmp_path, 3, uninterrupted)


def interrupted_during_a_save(folder: Path, saves_before: int) -> tuple[Path, subprocess.Popen, str]:
  """Starts a worker that saves every step and sends it SIGINT while its save after
  `saves_before` others is in flight -> (its workdir, the exited worker, its stderr). A worker
  that finished its run before the signal reached it (the test process seen late by a loaded
  machine: fit returned and printed its step) proves nothing and is tried again, at most 5 times."""
  for attempt in range(5):
    workdir = folder / f"{saves_before}-{attempt}"
    process = start(worker(workdir))  # a save every step
    checkpoints = workdir / "checkpoints"

    def saving(checkpoints=checkpoints) -> bool:
      names = [p.name for p in checkpoints.iterdir()] if checkpoints.exists() else []
      return any(".orbax-checkpoint-tmp" in name for name in names) and len(names) > saves_before

    wait_until(saving, process, "a save")
    process.send_signal(signal.SIGINT)
    stdout, stderr = finish(process)
    if not stdout.startswith("step "):
      return workdir, process, stderr
  pytest.fail("5 workers in a row finished their runs normally: SIGINT came too late each time, or fit ignored it")


def test_sigint_during_saves_finishes_them_and_exits(tmp_path, uninterrupted):
  """Ctrl-C while an orbax write is in flight, in two real processes at once (the first save, a
  later one): the save finishes, the process exits (KeyboardInterrupt; none hangs at exit) and
  leaves no unfinished write; the run resumes bit for bit."""
  with concurrent.futures.ThreadPoolExecutor(2) as pool:  # each thread watches and signals its worker
    trials = list(pool.map(functools.partial(interrupted_during_a_save, tmp_path), [0, 1]))
  for workdir, process, stderr in trials:
    assert process.returncode == -signal.SIGINT, stderr[-2000:]  # an uncaught KeyboardInterrupt
    stopped = int(re.search(r"SIGINT: fit stopped at step (\d+)", stderr)[1])
    steps = committed_steps(workdir)
    assert all(step.isdigit() for step in steps) and max(map(int, steps)) == stopped, steps  # none left unfinished
    if stopped < RUN["steps"]:
      assert_resumes_bit_for_bit(workdir, stopped, uninterrupted, save_every=1)


def test_sigint_in_process_raises_after_the_save_and_restores_the_handler(tmp_path, uninterrupted):
  """fit called from Python: Ctrl-C during step 3 is a KeyboardInterrupt once step 3 is saved,
  and the handler from before fit is back (on exit by the signal, and on a normal return)."""
  received = []
  before = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
  mine = signal.getsignal(signal.SIGINT)
  try:

    def batch_fn(step, rows):
      if step == 2:
        os.kill(os.getpid(), signal.SIGINT)
      return tiny_lm.batch_fn(step, rows)

    with pytest.raises(KeyboardInterrupt, match=f"SIGINT: fit stopped at step 3, saved in {tmp_path}"):
      run(tmp_path, batch_fn)
    assert signal.getsignal(signal.SIGINT) is mine and received == []
    assert committed_steps(tmp_path) == ["1", "2", "3"]
    assert_resumes_bit_for_bit(tmp_path, 3, uninterrupted)
    assert signal.getsignal(signal.SIGINT) is mine
  finally:
    signal.signal(signal.SIGINT, before)


def test_a_second_signal_exits_at_once_and_an_ignored_one_stays_ignored(monkeypatch):
  exits = []
  monkeypatch.setattr(os, "_exit", exits.append)  # (the real one would end pytest)
  before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
  # Ctrl-C's default, also where pytest was started in the background (SIGINT ignored)
  before_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
  stop = preemption.StopRequest()
  try:
    stop.install()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    signal.raise_signal(signal.SIGINT)  # to this thread: handled before the next line (os.kill may
    assert stop.signal == signal.SIGINT and exits == []  # reach another thread first, under load)
    signal.raise_signal(signal.SIGINT)
    assert exits == [128 + signal.SIGINT]
  finally:
    stop.restore()
    signal.signal(signal.SIGTERM, before)
    signal.signal(signal.SIGINT, before_sigint)


# ---- a failed save (a full disk) ------------------------------------------------------------------


def test_a_failed_background_save_stops_the_run_at_the_next_step(tmp_path, monkeypatch, uninterrupted):
  """The step-2 checkpoint's write fails in orbax's background thread with ENOSPC (simulated:
  no small filesystem can be mounted here). fit stops at the end of step 3, not at the next
  save (step 4), with one message naming the workdir and the free space; the step-1 checkpoint,
  which keep=1 would rotate out after a good save, is kept, and the run resumes from it."""
  failed = threading.Event()
  write = ocp.handlers.JsonCheckpointHandler._save_fn

  async def full_disk(self, item, directory):
    if directory.parent.name.startswith("2."):  # an item of step 2's unfinished folder
      failed.set()
      raise OSError(errno.ENOSPC, "No space left on device", str(directory))
    return await write(self, item, directory)

  monkeypatch.setattr(ocp.handlers.JsonCheckpointHandler, "_save_fn", full_disk)
  asked = []

  def batch_fn(step, rows):
    asked.append(step)
    if step == 2:  # let the write fail while step 3 runs
      assert failed.wait(60)
      time.sleep(0.5)
    return tiny_lm.batch_fn(step, rows)

  expected = rf"checkpoint of step 2 could not be written in workdir {tmp_path} \(OSError: .*No space left on device"
  with pytest.raises(CheckpointSaveError, match=expected) as error:
    run(tmp_path, batch_fn, keep=1)
  free = r"; [\d.]+ [KMG]?i?B free there\. "
  assert re.search(free + "Training stopped; the checkpoint of step 1 is kept", str(error.value))
  assert asked == [0, 1, 2]  # reported at the end of step 3
  assert (tmp_path / "checkpoints" / "1" / "commit_success.txt").exists()
  monkeypatch.undo()
  resumed = run(tmp_path, keep=1)
  assert resumed.history[0]["step"] == 2
  assert losses(tmp_path) == uninterrupted[0]


# ---- a read-only workdir --------------------------------------------------------------------------


def test_a_finished_run_restores_from_a_read_only_workdir(tmp_path, finished):
  """stop_after=0 reads a run and writes nothing (no lock file made, no config.json, metrics or
  folders written), so it works where nothing can be written. The workdir is made read-only with
  chmod; root, whom permissions do not stop, restores it without the capabilities that bypass
  them (setpriv drops CAP_DAC_OVERRIDE and CAP_FOWNER), so the permissions bind."""
  workdir = copy_of(finished, tmp_path)
  command = worker(workdir, RUN["save_every"], 0, 0)  # stop_after=0
  if os.getuid() == 0:
    if shutil.which("setpriv") is None:
      pytest.skip("as root, permissions bind only without CAP_DAC_OVERRIDE: needs setpriv (util-linux)")
    command = ["setpriv", "--bounding-set=-dac_override,-fowner", *command]
  paths = [workdir, *workdir.rglob("*")]
  try:
    for path in paths:
      path.chmod(0o555 if path.is_dir() else 0o444)
    restore = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, timeout=300)
  finally:
    for path in paths:
      path.chmod(0o755 if path.is_dir() else 0o644)
  assert restore.returncode == 0, restore.stderr.decode()[-2000:]
  assert restore.stdout.decode().split() == ["step", "4"]
  assert sorted(p.name for p in workdir.iterdir()) == [".lock", "checkpoints", "config.json", "metrics.jsonl"]


def test_readers_share_a_workdir_but_not_with_a_writer(tmp_path):
  writer = WorkdirLock(tmp_path)
  with pytest.raises(RuntimeError, match=f"in use by another run \\(process {os.getpid()}\\)"):
    WorkdirLock(tmp_path, shared=True)
  writer.release()
  readers = [WorkdirLock(tmp_path, shared=True), WorkdirLock(tmp_path, shared=True)]
  with pytest.raises(RuntimeError, match="in use by another run"):
    WorkdirLock(tmp_path)
  for reader in readers:
    reader.release()


def test_restoring_a_workdir_without_a_run_is_an_error(tmp_path):
  with pytest.raises(ValueError, match=f"workdir {tmp_path} holds no run to restore"):
    run(tmp_path, stop_after=0)
  assert list(tmp_path.iterdir()) == []


# ---- metrics.jsonl --------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "line,match",
  [
    (b'{"foo": 1}', "is not a metrics record"),
    (b"[1, 2]", "is not a metrics record"),
    (b'"a string"', "is not a metrics record"),
    (b'{"step": "2"}', "is not a metrics record"),
    (b'{"step": true}', "is not a metrics record"),
    (b'{"step": 2, "loss": "\xff"}', "is not UTF-8 text"),
    (b'{"step": 1, "loss": 1.0}', "logs step 1 after step 1: a duplicated or reordered record"),
  ],
)
def test_a_metrics_line_that_is_not_a_record_names_the_file_and_line(tmp_path, line, match):
  records = [b'{"step": 1, "loss": 1.0}', line, b'{"step": 3, "loss": 0.5}']
  (tmp_path / "metrics.jsonl").write_bytes(b"\n".join(records) + b"\n")
  with pytest.raises(ValueError, match=f"{tmp_path / 'metrics.jsonl'} line 2 {match}"):
    MetricsLog(tmp_path, resume_step=3, tensorboard=False)


# ---- config.json edited by hand -------------------------------------------------------------------


def test_a_checkpoint_of_another_config_is_refused(tmp_path, finished):
  """config.json edited to another learning rate, and a rerun with that rate: the checkpoints
  were trained with the old one, and say so."""
  workdir = copy_of(finished, tmp_path)
  path = workdir / "config.json"
  edited = json.loads(path.read_text())
  edited["config"]["learning_rate"] = 0.02
  path.write_text(json.dumps(edited))
  expected = (
    f"checkpoint {workdir / 'checkpoints' / '4'} was written by another run than {path} describes "
    r"\(config.learning_rate: 0.01 in checkpoint 4, 0.02 in config.json\)"
  )
  with pytest.raises(ValueError, match=expected):
    run(workdir, learning_rate=0.02)
  with pytest.raises(ValueError, match=expected):
    run(workdir, learning_rate=0.02, stop_after=0)


def test_a_checkpoint_from_before_run_records_is_used_with_a_warning(tmp_path, caplog, finished, uninterrupted):
  """A run whose newest checkpoint, step 2, was written before checkpoints held run records (the
  run's step-4 checkpoint removed, step 2's record too)."""
  workdir = copy_of(finished, tmp_path)
  shutil.rmtree(workdir / "checkpoints" / "4")
  shutil.rmtree(workdir / "checkpoints" / "2" / "run")
  assert_resumes_bit_for_bit(workdir, 2, uninterrupted)
  assert "checkpoint 2 predates run records" in caplog.text
