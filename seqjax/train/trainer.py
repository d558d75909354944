"""`fit`: the training loop of every experiment that trains on whole sequences (truncated BPTT
updates inside a sequence: seqjax.train.tbptt).

Batches come from batch_fn(step, rows) -> the given rows of global batch `step` (host numpy
arrays), so data order is a function of the step alone: a resumed run sees the batches the
uninterrupted one would have, and each host loads only its own rows.
"""

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from seqjax._paths import path_names
from seqjax.train import distributed, grad_health, optim, preemption
from seqjax.train.checkpoint import Checkpointer
from seqjax.train.config import PRECISIONS, TrainConfig
from seqjax.train.progress import Progress, announce
from seqjax.train.records import MetricsLog, WorkdirLock, check_workdir, prepare_workdir, run_record
from seqjax.train.sharding import make_mesh, shard_params
from seqjax.train.step import init_state, make_train_step, split_model

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FitResult:
  model: nnx.Module  # the trained model (parameters gathered to host memory)
  history: list[dict]  # the logged metrics, one dict per logged step (evaluations included)
  compile_seconds: float  # the first step of this run, compilation included
  step: int  # the steps the model has been trained for (a resumed run's earlier ones included)


def learning_rate_schedule(config: TrainConfig, model_dim: int | None = None):
  """The learning rate of each optimizer update, by update count from 0 (an update is
  config.accumulate_steps steps)."""
  return optim.schedule(
    config.schedule,
    config.learning_rate,
    warmup_steps=config.warmup_steps,
    total_steps=config.steps // config.accumulate_steps,
    model_dim=model_dim,
  )


def build_optimizer(config: TrainConfig, model_dim: int | None = None):
  return optim.optimizer(
    config.optimizer,
    learning_rate_schedule(config, model_dim),
    weight_decay=config.weight_decay,
    weight_decay_mask=config.weight_decay_mask,
    adam_b2=config.adam_b2,
    clip_norm=config.clip_norm,
    clip_value=config.clip_value,
    accumulate_steps=config.accumulate_steps,
  )


def fit(
  model: nnx.Module,
  loss_fn: Callable,
  batch_fn: Callable[[int, slice], dict],
  config: TrainConfig,
  *,
  workdir: str | Path | None = None,
  run_config: dict | None = None,
  overwrite: bool = False,
  stop_after: int | None = None,
  model_dim: int | None = None,
  evaluate: Callable[[nnx.Module], dict] | None = None,
) -> FitResult:
  """Trains `model` for config.steps steps of loss_fn(model, batch, rng) -> (loss, metrics).

  workdir: config.json, metrics.jsonl and checkpoints; an existing run of the same config and
  model (parameter shapes) is resumed from its newest checkpoint that verifies (see
  `checkpoint.Checkpointer`); another run's workdir is refused unless overwrite. The workdir is
  locked while fit runs: a second fit on it raises at once. On any exception the in-flight
  checkpoint is finished first. SIGTERM or SIGINT while it trains: the step is finished and
  saved, then SystemExit(143) or KeyboardInterrupt is raised (see `preemption`). A save that
  fails raises CheckpointSaveError by the next step. run_config: the whole experiment config to
  record (defaults to the train config). stop_after: leave after this many steps of this call
  (a preempted job; the next call resumes); 0 only restores, writing nothing (read-only storage
  works). model_dim: for the inverse_sqrt schedule.
  evaluate(model) -> {name: number}: run every config.eval_every steps and at the last step on
  the current model; its numbers join that step's record, which also holds `train_s`, the
  training seconds of this call so far (the compiling first step and evaluations excluded).
  """
  config.check()
  if config.distributed and not jax.distributed.is_initialized():
    raise ValueError("distributed=True: call seqjax.train.distributed.initialize(True) before building the model")
  mesh = make_mesh(config.data_parallel, config.model_parallel)
  if config.batch_size % mesh.shape["data"]:
    raise ValueError(
      f"batch_size {config.batch_size} must be divisible by the {mesh.shape['data']} data-parallel devices"
    )
  compute_dtype = PRECISIONS[config.precision]
  tx = build_optimizer(config, model_dim)
  graphdef, params, rest = split_model(model)
  state = shard_params(init_state(params, tx, config.seed), mesh)  # moments like their params, scalars replicated
  train_step = make_train_step(graphdef, rest, loss_fn, tx, nonfinite=config.nonfinite, compute_dtype=compute_dtype)
  names = grad_health.parameter_names(params)
  zero = grad_health.structurally_zero(model)

  lock = checkpointer = metrics_log = None
  stop = preemption.StopRequest()
  try:
    if workdir is not None:
      workdir = Path(workdir)
      check_workdir(workdir)
      read_only = stop_after == 0 and not overwrite  # a restore: writes nothing, so read-only storage works
      if jax.process_index() == 0:  # hosts share the workdir; the first one holds the lock
        lock = WorkdirLock(workdir, shared=read_only)
      if jax.process_count() == 1 and not read_only:  # (hosts stopping at different steps would wait forever)
        stop.install()  # SIGTERM, SIGINT: finish the step, save it, then stop
      record = run_record(run_config or dataclasses.asdict(config), model_signature(model, params))
      workdir = prepare_workdir(workdir, record, overwrite=overwrite, read_only=read_only)
      save_every = config.save_every or config.steps
      checkpointer = Checkpointer(
        workdir / "checkpoints", save_every=save_every, keep=config.keep, run=record, read_only=read_only
      )
      restored = checkpointer.restore_latest(state)
      if restored is not None:
        state = restored[1]
        log.info("resumed %s from step %d", workdir, restored[0])
      if jax.process_index() == 0 and not read_only:
        metrics_log = MetricsLog(workdir, resume_step=int(state.step), tensorboard=config.tensorboard)
        if config.progress:
          announce(workdir, config.tensorboard)
    evaluation = None if evaluate is None else lambda params: _evaluated(evaluate(nnx.merge(graphdef, params, rest)))
    state, history, compile_seconds = _loop(
      state, train_step, batch_fn, config, mesh, names, zero, checkpointer, metrics_log, stop_after, evaluation, stop
    )
  finally:  # also on an exception: the checkpoint in flight is finished, the lock released, the handlers restored
    try:
      if checkpointer is not None:
        checkpointer.close()
    finally:
      if metrics_log is not None:
        metrics_log.close()
      if lock is not None:
        lock.release()
      stop.restore()
  if stop.signal is not None:
    raise stop.stopped(int(state.step), workdir)
  params = jax.device_get(state.params)
  return FitResult(nnx.merge(graphdef, params, rest), history, compile_seconds, int(state.step))


def model_signature(model: nnx.Module, params) -> dict:
  """What identifies a model's structure in config.json: its class and every parameter's shape
  and dtype, by name."""
  shapes = {"/".join(path_names(path)): f"{x.dtype}{list(x.shape)}" for path, x in jax.tree.leaves_with_path(params)}
  return {"class": type(model).__name__, "parameters": shapes}


def _check_batch(batch, rows: int, step: int) -> None:
  for path, leaf in jax.tree.leaves_with_path(batch):
    if not hasattr(leaf, "shape") or leaf.ndim == 0 or leaf.shape[0] != rows:
      got = f"shape {tuple(leaf.shape)}" if hasattr(leaf, "shape") else type(leaf).__name__
      raise ValueError(
        f"batch_fn({step}, rows) must return arrays of the {rows} rows asked for on their first axis; "
        f"{jax.tree_util.keystr(path) or 'the batch'} has {got}"
      )


def _evaluated(numbers: dict) -> dict:
  """evaluate's result as host floats; its names must be strings."""
  if not isinstance(numbers, dict) or not all(isinstance(k, str) for k in numbers):
    raise ValueError(f"evaluate(model) must return a dict of name -> number, got {type(numbers).__name__}")
  return {k: float(np.asarray(v)) for k, v in numbers.items()}


def _loop(
  state, train_step, batch_fn, config, mesh, names, zero, checkpointer, metrics_log, stop_after, evaluation, stop
):
  rows = distributed.host_slice(config.batch_size)
  row_count = len(range(config.batch_size)[rows])
  start = int(state.step)
  end = config.steps if stop_after is None else min(config.steps, start + stop_after)
  history, compile_seconds, skips_in_a_row = [], float("nan"), 0
  progress = Progress(config.steps, start, end, enabled=config.progress and jax.process_index() == 0)
  window_start, window_steps, window_tokens, window_applied = time.perf_counter(), 0, [], []
  train_s = 0.0  # training seconds of this call: the compiling step and evaluations excluded
  for step in range(start, end):
    host_batch = batch_fn(step, rows)
    _check_batch(host_batch, row_count, step)
    batch = distributed.global_batch(host_batch, mesh)
    t0 = time.perf_counter()
    state, metrics = train_step(state, batch)
    last = stop.signal is not None  # a SIGTERM or SIGINT came: this step is the last, logged and saved
    window_applied.append(metrics["applied"])  # device scalars: read at log time, no sync here
    if step == start:
      jax.block_until_ready(metrics)
      compile_seconds = time.perf_counter() - t0
      window_start = time.perf_counter()  # rates exclude the compiling step
    else:
      window_steps += 1
      window_tokens.append(metrics.get("tokens", 0.0))
    if config.nonfinite == "stop" and not bool(metrics["finite"]):
      raise FloatingPointError(f"non-finite gradient or update at step {step + 1}; stopping as nonfinite='stop' asks")
    done = step + 1
    evaluating = evaluation is not None and (
      done == config.steps or (config.eval_every and done % config.eval_every == 0)
    )
    if done % config.log_every == 0 or done == end or evaluating or last:
      record = _record(metrics, names, zero, config)
      applied = jax.device_get(window_applied)
      record["skipped"] = int(sum(not a for a in applied))
      for a in applied:
        skips_in_a_row = 0 if a else skips_in_a_row + 1
        if skips_in_a_row >= config.skip_limit:
          raise FloatingPointError(
            f"{skips_in_a_row} updates in a row skipped for non-finite gradients or updates (by step {done}): "
            "training has diverged; lower the learning rate, clip harder, or check the data"
          )
      elapsed = time.perf_counter() - window_start
      train_s += elapsed
      record["train_s"] = train_s
      if window_steps:
        record["step_time_s"] = elapsed / window_steps
        tokens = float(sum(jax.device_get(window_tokens)))
        record["tokens_per_s"] = tokens / elapsed if tokens else None
      if evaluating:
        numbers = evaluation(state.params)
        clash = sorted(set(numbers) & set(record))
        if clash:
          raise ValueError(f"evaluate(model) returned names the training record already has: {clash}")
        record.update(numbers)
      window_start, window_steps, window_tokens, window_applied = time.perf_counter(), 0, [], []
      history.append({"step": done, **record})
      if metrics_log is not None:
        metrics_log.write(done, record)
      progress.logged(done, record, numbers if evaluating else {})
    progress.advance()
    if checkpointer is not None:
      checkpointer.save(done, state, force=done == config.steps or last)
    if last:
      break
  progress.close()
  return state, history, compile_seconds


def _record(metrics: dict, names: list[str], zero: set[str], config: TrainConfig) -> dict:
  """Host-side summary of one step's metrics, with the gradient-health flags logged as warnings."""
  metrics = jax.device_get(metrics)
  low, high = config.vanishing_threshold, config.exploding_threshold
  health = grad_health.describe(metrics, names, low=low, high=high, zero=zero)
  for kind in ("vanishing", "exploding"):
    if health[kind]:
      log.warning("%s gradients (norm %s threshold): %s", kind, "<" if kind == "vanishing" else ">", health[kind])
  record = {k: float(np.asarray(v)) for k, v in metrics.items() if np.ndim(v) == 0 and k not in ("finite", "applied")}
  record.update(grad_norm=health["global_norm"], finite=health["finite"], applied=bool(metrics["applied"]))
  record.update(vanishing=len(health["vanishing"]), exploding=len(health["exploding"]))
  record.pop("global_norm", None)
  return record
