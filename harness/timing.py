"""Timing the same way for every case: compile time apart (JAX's lower + compile), one warm-up
run excluded, then the median of `runs` timed runs, each ended by block_until_ready (torch: the
call returns when the CPU work is done; on CUDA, torch.cuda.synchronize)."""

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def time_calls(call: Callable[[], object], *, runs: int) -> dict:
  """One warm-up call, then `runs` timed ones; `call` must return only when its work is done."""
  call()
  times = []
  for _ in range(runs):
    t0 = time.perf_counter()
    call()
    times.append(time.perf_counter() - t0)
  return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def time_jax(fn: Callable, *args, runs: int = 5) -> dict:
  """fn: a pure function of arrays. -> compile_s, median_s, min_s, and its compiled temp memory."""
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  memory = compiled.memory_analysis()
  return {
    "compile_s": compile_s,
    **time_calls(lambda: jax.block_until_ready(compiled(*args)), runs=runs),
    "temp_bytes": None if memory is None else memory.temp_size_in_bytes,
  }


def module_case(module: nnx.Module, *, backward: bool, **call_options) -> tuple[Callable, nnx.State]:
  """An NNX module as a pure function of (params, x) for `time_jax`: its output (the first, when it
  returns a tuple), or with `backward` the gradient of the output's sum with respect to the
  parameters. -> (function, params)."""
  graphdef, params, rest = nnx.split(module, nnx.Param, ...)  # rest: e.g. flax's RNG streams

  def forward(params, x):
    outputs = nnx.merge(graphdef, params, rest)(x, **call_options)
    return outputs[0] if isinstance(outputs, tuple) else outputs

  if not backward:
    return forward, params
  return jax.grad(lambda params, x: jnp.sum(forward(params, x))), params


def compiled_step_call(step: Callable, state, batch: dict) -> tuple[Callable[[], None], float]:
  """A jitted train step (seqjax.train.step.make_train_step's, which donates its state) compiled for
  `state` and `batch` -> (call: one step from the previous call's state, returning when its state
  and metrics are ready; the compile seconds)."""
  t0 = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  holder = {"state": state}  # donated: each call feeds the previous call's state back in

  def call() -> None:
    holder["state"], metrics = compiled(holder["state"], batch)
    jax.block_until_ready((holder["state"], metrics))

  return call, compile_s


def spread(result: dict, scale: float = 1e3, fmt: str = ".1f") -> str:
  """A timing's repeats as "median [fastest-slowest]", in milliseconds by default (scale 1e3)."""
  times = [t * scale for t in result["times_s"]]
  return f"{statistics.median(times):{fmt}} [{min(times):{fmt}}-{max(times):{fmt}}]"


def ratio(result: dict, peer: dict | None) -> str:
  """A case's median time over its peer's, as "1.23x"; "n/a" when the peer did not run."""
  return "n/a" if peer is None else f"{result['median_s'] / peer['median_s']:.2f}x"


def time_torch(fn: Callable, *, runs: int = 5) -> dict:
  import torch

  sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
  return {"compile_s": 0.0, **time_calls(lambda: (fn(), sync()), runs=runs), "temp_bytes": None}


def matmul_peak(size: int = 2048, runs: int = 5, dtype=jnp.float32) -> float:
  """FLOP/s of a [size, size] x [size, size] matmul in `dtype` on the default device, measured now."""
  a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), dtype)
  result = time_jax(lambda a: a @ a, a, runs=runs)
  return 2 * size**3 / result["median_s"]


def time_matmul(a_shape: tuple[int, ...], b_shape: tuple[int, ...], torch_device: str | None, *, runs: int) -> dict:
  """One float32 (batched) matmul a [..., M, K] x b [..., K, N] timed in JAX and, given a device,
  in torch on the same data. -> flops, jax_s and torch_s (None without torch), medians."""
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal(a_shape, np.float32), rng.standard_normal(b_shape, np.float32)
  jax_s = time_jax(jnp.matmul, jnp.asarray(a), jnp.asarray(b), runs=runs)["median_s"]
  torch_s = None
  if torch_device:
    import torch

    ta, tb = torch.from_numpy(a).to(torch_device), torch.from_numpy(b).to(torch_device)
    torch_s = time_torch(lambda: ta @ tb, runs=runs)["median_s"]
  return {"flops": 2 * int(np.prod(a_shape)) * b_shape[-1], "jax_s": jax_s, "torch_s": torch_s}


def device_name() -> str:
  device = jax.devices()[0]
  return f"{device.platform}: {device.device_kind}"


def torch_device() -> str | None:
  """Where a torch peer runs on the same hardware as JAX: "cpu", "cuda", or None (no torch, or
  JAX is on an accelerator torch cannot use, where a CPU peer would be no peer)."""
  try:
    import torch
  except ImportError:
    return None
  if jax.default_backend() == "cpu":
    return "cpu"
  return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else None
