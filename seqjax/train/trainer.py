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
from tqdm import tqdm

from seqjax.train import distributed, grad_health, optim
from seqjax.train.checkpoint import Checkpointer
from seqjax.train.config import PRECISIONS, TrainConfig
from seqjax.train.records import MetricsLog, prepare_workdir
from seqjax.train.sharding import make_mesh, shard_params
from seqjax.train.step import init_state, make_train_step, split_model

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FitResult:
  model: nnx.Module  # the trained model (parameters gathered to host memory)
  history: list[dict]  # the logged metrics, one dict per logged step
  compile_seconds: float  # the first step of this run, compilation included


def build_optimizer(config: TrainConfig, model_dim: int | None = None):
  lr = optim.schedule(
    config.schedule,
    config.learning_rate,
    warmup_steps=config.warmup_steps,
    total_steps=config.steps // config.accumulate_steps,
    model_dim=model_dim,
  )
  return optim.optimizer(
    config.optimizer,
    lr,
    weight_decay=config.weight_decay,
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
) -> FitResult:
  """Trains `model` for config.steps steps of loss_fn(model, batch, rng) -> (loss, metrics).

  workdir: config.json, metrics.jsonl and checkpoints; an existing run of the same config is
  resumed from its newest complete checkpoint. run_config: the whole experiment config to
  record (defaults to the train config). stop_after: leave after this many steps of this call
  (a preempted job; the next call resumes). model_dim: for the inverse_sqrt schedule.
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

  checkpointer = metrics_log = None
  if workdir is not None:
    workdir = prepare_workdir(workdir, run_config or dataclasses.asdict(config), overwrite=overwrite)
    checkpointer = Checkpointer(workdir / "checkpoints", save_every=config.save_every or config.steps, keep=config.keep)
    restored = checkpointer.restore_latest(state)
    if restored is not None:
      state = restored[1]
      log.info("resumed %s from step %d", workdir, restored[0])
    if jax.process_index() == 0:
      metrics_log = MetricsLog(workdir, resume_step=int(state.step), tensorboard=config.tensorboard)

  rows = distributed.host_slice(config.batch_size)
  start = int(state.step)
  end = config.steps if stop_after is None else min(config.steps, start + stop_after)
  history, compile_seconds = [], float("nan")
  bar = tqdm(total=config.steps, initial=start, disable=not config.progress or jax.process_index() != 0)
  window_start, window_steps, window_tokens = time.perf_counter(), 0, []
  for step in range(start, end):
    batch = distributed.global_batch(batch_fn(step, rows), mesh)
    t0 = time.perf_counter()
    state, metrics = train_step(state, batch)
    if step == start:
      jax.block_until_ready(metrics)
      compile_seconds = time.perf_counter() - t0
      window_start = time.perf_counter()  # rates exclude the compiling step
    else:
      window_steps += 1
      window_tokens.append(metrics.get("tokens", 0.0))  # device scalars: read at log time, no sync here
    if config.nonfinite == "stop" and not bool(metrics["finite"]):
      raise FloatingPointError(f"non-finite gradient at step {step + 1}; stopping as nonfinite='stop' asks")
    done = step + 1
    if done % config.log_every == 0 or done == end:
      record = _record(metrics, names, config)
      elapsed = time.perf_counter() - window_start
      if window_steps:
        record["step_time_s"] = elapsed / window_steps
        tokens = float(sum(jax.device_get(window_tokens)))
        record["tokens_per_s"] = tokens / elapsed if tokens else None
      window_start, window_steps, window_tokens = time.perf_counter(), 0, []
      history.append({"step": done, **record})
      if metrics_log is not None:
        metrics_log.write(done, record)
      bar.set_postfix(loss=f"{record['loss']:.4f}")
    bar.update(1)
    if checkpointer is not None:
      checkpointer.save(done, state, force=done == config.steps)
  bar.close()
  if checkpointer is not None:
    checkpointer.close()
  if metrics_log is not None:
    metrics_log.close()
  params = jax.device_get(state.params)
  return FitResult(nnx.merge(graphdef, params, rest), history, compile_seconds)


def _record(metrics: dict, names: list[str], config: TrainConfig) -> dict:
  """Host-side summary of one step's metrics, with the gradient-health flags logged as warnings."""
  metrics = jax.device_get(metrics)
  health = grad_health.describe(metrics, names, low=config.vanishing_threshold, high=config.exploding_threshold)
  for kind in ("vanishing", "exploding"):
    if health[kind]:
      log.warning("%s gradients (norm %s threshold): %s", kind, "<" if kind == "vanishing" else ">", health[kind])
  record = {k: float(np.asarray(v)) for k, v in metrics.items() if np.ndim(v) == 0 and k not in ("finite", "applied")}
  record.update(grad_norm=health["global_norm"], finite=health["finite"], applied=bool(metrics["applied"]))
  record.update(vanishing=len(health["vanishing"]), exploding=len(health["exploding"]))
  record.pop("global_norm", None)
  return record
