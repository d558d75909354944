"""The training library: losses, schedules, clipping, gradient health, NaN policy, accumulation,
TBPTT, checkpoints and resume, workdir guard, sharding, two processes, reproducibility, bf16."""

import dataclasses
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from seqjax.attention import MultiHeadAttention
from seqjax.logical_axes import EMBED, HEAD_DIM, HEADS, axes
from seqjax.recurrent import ElmanCell
from seqjax.train import (
  TrainConfig,
  classification_cross_entropy,
  describe,
  fit,
  gradient_health,
  init_state,
  make_mesh,
  make_train_step,
  optimizer,
  schedule,
  shard_batch,
  shard_params,
  split_model,
  token_cross_entropy,
)
from seqjax.train.records import cumulative_train_seconds, read_metrics
from seqjax.train.step import optimizer_init, optimizer_update
from seqjax.train.tbptt import truncated_bptt, update_windows
from seqjax.transformer.blocks import TransformerBlock
from tests import tiny_lm
from tests.conftest import FAST_COMPILE
from tests.helpers import normal

ROOT = Path(__file__).resolve().parent.parent


# ---- losses and schedules ----------------------------------------------------------------------


def test_token_cross_entropy_ignores_padding_and_smooths():
  logits = jnp.asarray(normal(0, 2, 3, 5))
  targets = jnp.array([[1, 2, 3], [4, 0, 0]], jnp.int32)
  mask = jnp.array([[True, True, True], [True, False, False]])
  loss, count = token_cross_entropy(logits, targets, mask)
  log_p = np.asarray(jax.nn.log_softmax(logits))
  want = -np.mean([log_p[0, 0, 1], log_p[0, 1, 2], log_p[0, 2, 3], log_p[1, 0, 4]])
  assert float(count) == 4 and float(loss) == pytest.approx(want, rel=1e-5)
  eps = 0.1
  smoothed, _ = token_cross_entropy(logits, targets, mask, label_smoothing=eps)
  q = np.full(5, eps / 5)
  per = [-(np.eye(5)[t] * (1 - eps) + q) @ log_p[b, i] for b, i, t in [(0, 0, 1), (0, 1, 2), (0, 2, 3), (1, 0, 4)]]
  assert float(smoothed) == pytest.approx(np.mean(per), rel=1e-5)
  labels = jnp.array([1, 4])
  assert float(classification_cross_entropy(logits[:, 0], labels)) == pytest.approx(
    -np.mean([log_p[0, 0, 1], log_p[1, 0, 4]]), rel=1e-5
  )


def test_inverse_sqrt_is_the_2017_formula():
  lr = schedule("inverse_sqrt", 1.0, warmup_steps=4000, model_dim=512)
  for step in (1, 100, 4000, 10000):
    want = 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
    assert float(lr(step - 1)) == pytest.approx(want, rel=1e-6)


def test_warmup_rsqrt_peaks_at_its_learning_rate_then_decays_as_one_over_root_step():
  lr = schedule("warmup_rsqrt", 3e-3, warmup_steps=100)
  for step in (1, 50, 100, 400, 10000):
    want = 3e-3 * min(step / 100, (100 / step) ** 0.5)
    assert float(lr(step - 1)) == pytest.approx(want, rel=1e-6)
  with pytest.raises(ValueError, match="warmup_steps"):
    schedule("warmup_rsqrt", 3e-3, warmup_steps=0)


def test_adam_b2_reaches_optax():
  def three_updates(tx):  # gradients that change, so the second-moment decay matters
    params = {"w": jnp.array([0.5, -2.0])}
    with jax.numpy_dtype_promotion("standard"):  # as seqjax.train.step runs optax
      state = tx.init(params)
      for k in range(3):
        update, state = tx.update({"w": params["w"] * (k + 1) ** 2}, state, params)
    return update["w"]

  for name, reference in (("adam", optax.adam), ("adamw", functools.partial(optax.adamw, weight_decay=0.0))):
    ours = three_updates(optimizer(name, 1e-2, adam_b2=0.98))
    np.testing.assert_allclose(ours, three_updates(reference(1e-2, b2=0.98)), rtol=1e-6)
    assert not np.allclose(ours, three_updates(reference(1e-2)), rtol=1e-4)  # not optax's default 0.999
  with pytest.raises(ValueError, match="adam_b2"):
    TrainConfig(adam_b2=1.0).check()


def test_warmup_cosine_peaks_then_decays():
  lr = schedule("warmup_cosine", 1e-3, warmup_steps=10, total_steps=100)
  assert float(lr(0)) == 0.0 and float(lr(10)) == pytest.approx(1e-3) and float(lr(100)) == pytest.approx(0.0)


# ---- clipping, accumulation, gradient health ------------------------------------------------------


def test_global_norm_clipping_bounds_the_update():
  params = {"a": jnp.zeros(3), "b": jnp.zeros(4)}
  grads = {"a": jnp.full(3, 100.0), "b": jnp.full(4, -50.0)}
  with jax.numpy_dtype_promotion("standard"):
    tx = optimizer("sgd", 1.0, clip_norm=0.5)
    updates, _ = tx.update(grads, tx.init(params))
    norm = optax.tree.norm(updates)
    tx_value = optimizer("sgd", 1.0, clip_value=0.1)
    by_value, _ = tx_value.update(grads, tx_value.init(params))
  assert float(norm) == pytest.approx(0.5, rel=1e-5)
  assert float(jnp.max(jnp.abs(jnp.concatenate([by_value["a"], by_value["b"]])))) == pytest.approx(0.1)


def test_accumulation_equals_one_step_on_the_mean_gradient():
  params = {"w": jnp.array([1.0, -2.0])}
  g1, g2 = {"w": jnp.array([0.4, 1.0])}, {"w": jnp.array([0.2, -3.0])}
  tx = optimizer("sgd", 0.1, accumulate_steps=2)
  state = optimizer_init(tx, params)
  p1, state = optimizer_update(tx, g1, state, params)
  p2, state = optimizer_update(tx, g2, state, p1)
  np.testing.assert_array_equal(p1["w"], params["w"])  # nothing applied after the first micro-batch
  np.testing.assert_allclose(p2["w"], params["w"] - 0.1 * (g1["w"] + g2["w"]) / 2, rtol=1e-6)


def test_monitor_flags_planted_vanishing_and_exploding_gradients():
  grads = {"tiny": jnp.full(4, 1e-10), "huge": jnp.full(4, 1e5), "fine": jnp.ones(4)}
  health = describe(jax.jit(gradient_health)(grads), ["fine", "huge", "tiny"], low=1e-7, high=1e3)
  assert health["vanishing"] == ["tiny"] and health["exploding"] == ["huge"] and health["finite"]
  assert health["global_norm"] == pytest.approx(np.sqrt(4 * 1e10 + 4 + 4e-20), rel=1e-6)


def poisoned(model, batch, rng):
  """tiny_lm's loss, times NaN (computed from the batch, so it reaches the gradient)."""
  loss, metrics = tiny_lm.loss_fn(model, batch, rng)
  return jnp.where(batch["tokens"][0, 0] >= 0, jnp.nan, 1.0) * loss, metrics


def test_injected_nan_is_skipped():
  graphdef, params, rest = split_model(tiny_lm.make_model())
  tx = optimizer("adam", 1e-2)
  step = make_train_step(graphdef, rest, poisoned, tx, nonfinite="skip")
  before = jax.tree.map(np.array, params)  # host copies: the step donates its input state
  state, metrics = step(init_state(params, tx, 0), tiny_lm.batch_fn(0, slice(None)))
  assert not bool(metrics["finite"]) and not bool(metrics["applied"])
  jax.tree.map(np.testing.assert_array_equal, state.params, before)


def test_injected_nan_stops_the_run():
  with pytest.raises(FloatingPointError, match="non-finite gradient or update at step 1"):
    fit(tiny_lm.make_model(), poisoned, tiny_lm.batch_fn, tiny_lm.config(nonfinite="stop"))


# ---- truncated BPTT -------------------------------------------------------------------------------


def elman_setup(T=12, F=3, H=4):
  cell = ElmanCell(F, H, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
  graphdef, cell_params = nnx.split(cell)
  params = {"cell": cell_params, "delta": jnp.zeros((T, F))}  # delta[t]: a handle on the input at t

  def step_fn(params, h, x):
    x_t, t = x
    return nnx.merge(graphdef, params["cell"])(h, x_t + params["delta"][t][None, :])

  def loss_fn(ys, targets):
    return jnp.sum((ys - targets) ** 2)

  xs = (jnp.asarray(normal(1, T, 2, F)), jnp.arange(T))
  targets = jnp.asarray(normal(2, T, 2, H))
  return step_fn, loss_fn, params, jnp.zeros((2, H)), xs, targets


def test_tbptt_with_k2_at_least_T_equals_full_bptt():
  step_fn, loss_fn, params, h0, xs, targets = elman_setup()

  def full_loss(params):
    def body(h, x):
      h, y = step_fn(params, h, x)
      return h, y

    return loss_fn(jax.lax.scan(body, h0, xs)[1], targets)

  loss, want = jax.jit(jax.value_and_grad(full_loss))(params)  # one compile, not an eager op at a time
  for k1 in (3, 5, 12):
    _, losses, grads, _ = truncated_bptt(step_fn, loss_fn, params, h0, xs, targets, k1=k1, k2=12)
    total = jax.tree.map(lambda *g: sum(g), *grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), total, want)
    assert float(sum(losses)) == pytest.approx(float(loss), rel=1e-5)


@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5)])
def test_tbptt_gradients_stop_k2_steps_back(k1, k2):
  step_fn, loss_fn, params, h0, xs, targets = elman_setup()
  _, _, grads, _ = truncated_bptt(step_fn, loss_fn, params, h0, xs, targets, k1=k1, k2=k2)
  for (w, _, e), g in zip(update_windows(12, k1, k2), grads, strict=True):
    delta = np.abs(np.asarray(g["delta"])).sum(-1)  # [T]
    assert (delta[:w] == 0).all() and (delta[e:] == 0).all()  # exactly zero beyond the window
    assert (delta[w:e] > 0).all()


def test_tbptt_updates_between_segments_and_rejects_k1_above_k2():
  step_fn, loss_fn, params, h0, xs, targets = elman_setup()

  def sgd(params, grads):
    return jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)

  first = truncated_bptt(step_fn, loss_fn, params, h0, xs, targets, k1=4, k2=6, update=sgd)
  again = truncated_bptt(step_fn, loss_fn, first[0], h0, xs, targets, k1=4, k2=6, update=sgd)
  assert float(sum(again[1])) < float(sum(first[1]))
  with pytest.raises(ValueError, match=r"k1 \(5\) > k2 \(3\) is unsupported"):
    update_windows(12, 5, 3)


# ---- checkpoints, resume, workdir -------------------------------------------------------------


def losses(result):
  return [record["loss"] for record in result.history]


CHECKPOINTED = tiny_lm.config(save_every=4, keep=2)  # 12 steps: checkpoints at 1 (orbax saves the first), 4, 8, 12


def checkpointed_fit(workdir, config=CHECKPOINTED, **options):
  return fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, config, workdir=workdir, **options)


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
  """(whole, part, folder): two runs of CHECKPOINTED from scratch, in folder/whole (never
  interrupted) and folder/cut (stopped after 6 steps: its newest checkpoint is step 4). Tests
  that write to a workdir work on a copy."""
  folder = tmp_path_factory.mktemp("runs")
  whole = checkpointed_fit(folder / "whole")
  part = checkpointed_fit(folder / "cut", stop_after=6)
  return whole, part, folder


def copied(folder, run: str, tmp_path):
  return Path(shutil.copytree(folder / run, tmp_path / run))


def test_resume_reproduces_the_uninterrupted_run(tmp_path, checkpointed):
  whole, part, folder = checkpointed
  cut = copied(folder, "cut", tmp_path)
  rest = checkpointed_fit(cut)
  assert len(part.history) == 6 and rest.history[0]["step"] == 5  # resumed from the step-4 checkpoint
  assert losses(rest) == losses(whole)[4:]  # bit for bit: data order and dropout keys follow the step
  read = [json.loads(line)["loss"] for line in (cut / "metrics.jsonl").read_text().splitlines()]
  assert read == losses(whole)
  assert [r["loss"] for r in read_metrics(cut)] == losses(whole)
  assert sorted(os.listdir(folder / "whole" / "checkpoints")) == ["12", "8"]  # keep the last 2


def test_cumulative_train_seconds_add_the_fit_calls_of_a_resumed_run():
  records = [{"train_s": s} for s in (1.0, 2.0, 3.0, 0.5, 1.5, 0.25)]  # three calls: clocks restart at 0.5, 0.25
  assert cumulative_train_seconds(records) == [1.0, 2.0, 3.0, 3.5, 4.5, 4.75]
  with pytest.raises(ValueError, match=r"holds no metrics\.jsonl"):
    read_metrics("/nonexistent-workdir")


def test_partial_checkpoint_is_skipped(tmp_path, checkpointed):
  cut = copied(checkpointed[2], "cut", tmp_path)
  (cut / "checkpoints" / "6").mkdir()  # a step directory cut short: no commit marker
  (cut / "checkpoints" / "7.orbax-checkpoint-tmp-1").mkdir()  # an unfinished write
  resumed = checkpointed_fit(cut, stop_after=1)
  assert resumed.history[0]["step"] == 5


def test_workdir_of_another_config_is_refused(tmp_path, checkpointed):
  workdir = copied(checkpointed[2], "whole", tmp_path)
  other = dataclasses.replace(CHECKPOINTED, seed=1)  # (the same compiled step: only the dropout keys differ)
  with pytest.raises(ValueError, match="holds a run of a different config"):
    checkpointed_fit(workdir, other)
  checkpointed_fit(workdir, other, overwrite=True, stop_after=1)
  assert json.loads((workdir / "config.json").read_text())["config"]["seed"] == 1
  assert os.listdir(workdir / "checkpoints") == ["1"]  # the old run's checkpoints are gone
  assert [r["step"] for r in read_metrics(workdir)] == [1]


def test_evaluate_runs_on_the_current_model_every_eval_every_steps():
  held_out = {"tokens": tiny_lm.DATA[:8]}
  evaluate = nnx.jit(lambda model: {"valid_loss": tiny_lm.loss_fn(model, held_out, None)[0]})  # eager: 100s of compiles
  result = fit(
    tiny_lm.make_model(),  # (evaluated without a dropout key: no dropout)
    tiny_lm.loss_fn,
    tiny_lm.batch_fn,
    tiny_lm.config(steps=10, log_every=3, eval_every=4),
    evaluate=evaluate,
  )
  evaluated = [r["step"] for r in result.history if "valid_loss" in r]
  assert evaluated == [4, 8, 10]  # every eval_every steps and the last
  assert [r["step"] for r in result.history] == [3, 4, 6, 8, 9, 10]  # evaluations add records between logs
  assert result.history[-1]["valid_loss"] == pytest.approx(float(evaluate(result.model)["valid_loss"]), rel=1e-6)
  seconds = [r["train_s"] for r in result.history]
  assert seconds == sorted(seconds) and seconds[0] >= 0.0


def test_evaluate_must_not_shadow_training_metrics():
  with pytest.raises(ValueError, match=r"already has: \['loss'\]"):
    fit(
      tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(steps=2), evaluate=lambda m: {"loss": 0}
    )


def test_same_seed_same_losses_bit_for_bit(checkpointed):
  whole, part, _ = checkpointed  # two runs from scratch
  assert losses(part) == losses(whole)[:6]


def test_bf16_compute_trains_with_float32_master_weights():
  result = fit(tiny_lm.make_model(0.0), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(steps=20, precision="bf16"))
  assert losses(result)[-1] < losses(result)[0]
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(result.model, nnx.Param)))


# ---- devices and hosts ----------------------------------------------------------------------------


def test_sharded_step_equals_single_device():
  graphdef, params, rest = split_model(tiny_lm.make_model(0.0))
  params = jax.device_get(params)  # host copy: each step donates the device arrays it is given
  tx = optimizer("sgd", 0.1)  # Adam's g / (|g| + eps) turns rounding noise in near-zero gradients into sign flips
  batch = tiny_lm.batch_fn(0, slice(None))
  step = make_train_step(graphdef, rest, tiny_lm.loss_fn, tx)
  single_mesh = make_mesh(1, 1, devices=jax.devices()[:1])
  one, one_metrics = step(init_state(shard_params(params, single_mesh), tx, 0), shard_batch(batch, single_mesh))
  for data, model in [(8, 1), (4, 2)]:
    mesh = make_mesh(data, model)
    sharded_params = shard_params(params, mesh)
    if model > 1:  # the attention kernels really are split over "model"
      kernel = sharded_params["stack"]["blocks"][0]["self_attention"]["query"]["kernel"][...]
      assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, "model", None)
    many, many_metrics = step(init_state(sharded_params, tx, 0), shard_batch(batch, mesh))
    assert float(many_metrics["loss"]) == pytest.approx(float(one_metrics["loss"]), rel=1e-6), (data, model)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), many.params, one.params)


def test_model_axis_splits_what_parameters_declare():
  class Readout(nnx.Module):  # layers named like attention's projections, outside any attention module
    def __init__(self, rngs: nnx.Rngs):
      self.query, self.out = nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, 6, rngs=rngs)

  mesh = make_mesh(4, 2)
  readout = shard_params(nnx.state(Readout(nnx.Rngs(0)), nnx.Param), mesh)
  assert {leaf.sharding.spec for leaf in jax.tree.leaves(readout)} == {jax.sharding.PartitionSpec()}
  decoder_block = TransformerBlock(8, 2, 16, cross_attention=True, rngs=nnx.Rngs(0))
  params = shard_params(nnx.state(decoder_block, nnx.Param), mesh)
  P = jax.sharding.PartitionSpec
  assert params["cross_attention"]["value"]["kernel"][...].sharding.spec == P(None, "model", None)
  assert params["cross_attention"]["out"]["kernel"][...].sharding.spec == P("model", None, None)
  assert params["feed_forward"]["outer"]["kernel"][...].sharding.spec == P("model", None)

  class Renamed(nnx.Module):  # attention under a field name no rule knows: its declared axes still hold
    def __init__(self, rngs: nnx.Rngs):
      self.mixer = MultiHeadAttention(2, 8, rngs=rngs)

  params = shard_params(nnx.state(Renamed(nnx.Rngs(0)), nnx.Param), mesh)
  assert params["mixer"]["query"]["kernel"][...].sharding.spec == P(None, "model", None)

  class Mislabelled(nnx.Module):  # a parameter whose declaration does not fit its rank
    def __init__(self, rngs: nnx.Rngs):
      self.out = nnx.Linear(8, 6, kernel_metadata=axes(HEADS, HEAD_DIM, EMBED), rngs=rngs)

  with pytest.raises(ValueError, match=r"out/kernel has shape \(8, 6\) but declares 3 logical axes"):
    shard_params(nnx.state(Mislabelled(nnx.Rngs(0)), nnx.Param), mesh)


def test_heads_must_divide_by_the_model_axis():
  _, params, _ = split_model(tiny_lm.make_model())  # 2 heads
  with pytest.raises(
    ValueError, match=r"self_attention/key/bias axis 0 \(size 2\) must be divisible by the 'model' mesh axis \(4\)"
  ):
    shard_params(params, make_mesh(2, 4))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_agree_on_the_loss():
  port = str(free_port())
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
  env["PYTHONPATH"] = str(ROOT)
  flags = FAST_COMPILE.split()
  env["XLA_FLAGS"] = " ".join(f for f in flags if not f.startswith("--xla_force_host_platform_device_count"))
  workers = [
    subprocess.Popen(
      [sys.executable, "-m", "tests.distributed_worker", port, str(i)],
      cwd=ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  try:
    single = fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(steps=4))  # while they run
    outputs = []
    for worker in workers:
      out, err = worker.communicate(timeout=240)
      assert worker.returncode == 0, err[-3000:]
      outputs.append(json.loads(out.strip().splitlines()[-1]))
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  assert outputs[0] == outputs[1] and len(outputs[0]) == 4
  np.testing.assert_allclose(outputs[0], losses(single), rtol=1e-5)


# ---- bad configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
  "overrides,match",
  [
    ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
    ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
    ({"optimizer": "adagrad"}, "optimizer must be one of"),
    ({"schedule": "step"}, "schedule must be one of"),
    ({"batch_size": 6}, "batch_size 6 must be divisible by the 8 data-parallel devices"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0, got inf"),
    ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
    ({"clip_norm": float("nan")}, "clip_norm must be a finite number > 0"),
    ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
    ({"skip_limit": 0}, "skip_limit must be a positive integer"),
    ({"eval_every": -1}, "eval_every must be an integer >= 0"),
    ({"model_parallel": 3}, r"model parallelism \(model_parallel\) = 3 must divide the number of devices, 8 here"),
  ],
)
def test_bad_configuration(overrides, match):
  with pytest.raises(ValueError, match=match):
    fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(**overrides))
