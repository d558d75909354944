"""LSTM and GRU forward and forward+backward, seqjax against flax.nnx.RNN and torch.nn.LSTM/GRU.

B=32, F=H=256, T in {64, 256, 1024} by default; float32. Cases: seqjax's RNN with the input
projection hoisted out of the scan (one [T*B, F] x [F, G*H] matmul) and without (in scan, at
each lax.scan unroll factor of `unrolls`); flax's
nnx.RNN(OptimizedLSTMCell / GRUCell); torch (skipped when absent; CPU threads = JAX's cores; on
a GPU, torch CUDA, i.e. cuDNN, and skipped if torch has no CUDA); on a GPU also cuDNN's LSTM
through jax.experimental.rnn, with the same weights (seqjax.interop.rnn_to_cudnn).
Also: the fraction of the float32 matmul peak measured in the same run.

Commands:
    python -m benchmarks.rnn default      # a few minutes on 2 CPU cores
    python -m benchmarks.rnn smoke
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, report, timing
from seqjax.interop import rnn_to_cudnn
from seqjax.recurrent import RNN, StackedRNN, make_cell

RESULTS = report.RESULTS / "bench"
CUDNN = "jax cuDNN (jax.experimental.rnn)"

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 32
  hidden_features: int = 256
  times: tuple[int, ...] = (64, 256, 1024)
  kinds: tuple[str, ...] = ("lstm", "gru")
  unrolls: tuple[int, ...] = (1, 4)  # lax.scan unroll factors of the in-scan case
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("B=32, H=256, T=64/256/1024", Config()),
  "gpu": ("as default (cuDNN's LSTM in JAX is float32 only)", Config()),
  "smoke": ("tiny", Config(batch=8, hidden_features=8, times=(4,), unrolls=(1, 2), runs=1, out="/tmp/seqjax-smoke")),
}


def flops(kind: str, B: int, T: int, H: int, backward: bool) -> float:
  """Matmul FLOPs: per step 2 * B * (F + H) * G * H with F = H; backward about twice forward."""
  gates = 4 if kind == "lstm" else 3
  forward = 2 * B * T * (2 * H) * gates * H
  return 3 * forward if backward else forward


class FlaxRNN(nnx.Module):
  """flax's nnx.RNN from an explicit zero carry (its default draws from an RNG stream)."""

  def __init__(self, kind: str, hidden: int):
    cell_class = nnx.OptimizedLSTMCell if kind == "lstm" else nnx.GRUCell
    self.rnn = nnx.RNN(cell_class(hidden, hidden, rngs=nnx.Rngs(0)))
    self.kind = kind
    self.hidden = hidden

  def __call__(self, x):
    zeros = jnp.zeros((x.shape[0], self.hidden))
    return self.rnn(x, initial_carry=(zeros, zeros) if self.kind == "lstm" else zeros)


def jax_case(model, x, backward: bool):
  """(the model's pure forward or parameter-gradient function, its arguments (params, x))."""
  fn, params = timing.module_case(model, backward=backward)
  return fn, (params, x)


def cudnn_case(x, H: int, backward: bool):
  """jax.experimental.rnn.lstm (cuDNN; NVIDIA GPUs only) with seqjax's LSTM weights packed by rnn_to_cudnn."""
  from jax.experimental import rnn as jax_rnn

  B, T, F = x.shape
  weights = jnp.asarray(rnn_to_cudnn(StackedRNN("lstm", F, H, rngs=nnx.Rngs(0))))
  zeros, lengths = jnp.zeros((1, B, H)), jnp.full((B,), T, jnp.int32)  # one layer, one direction

  def forward(weights, x):
    return jax_rnn.lstm(x, zeros, zeros, weights, lengths, F, H, 1, 0.0, False)[0]

  if not backward:
    return forward, (weights, x)
  return jax.grad(lambda w, x: jnp.sum(forward(w, x))), (weights, x)


def torch_case(kind: str, x: np.ndarray, H: int, backward: bool, device: str):
  import torch

  torch.set_num_threads(os.cpu_count() or 1)
  module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(x.shape[-1], H, batch_first=True).to(device)
  xt = torch.from_numpy(x).to(device)

  def run():
    if backward:
      module.zero_grad()
      module(xt)[0].sum().backward()
    else:
      with torch.no_grad():
        module(xt)

  return run


def matmul_rows(config: Config, torch_device: str | None, runs: int) -> list[dict]:
  """float32 matmul throughput, JAX against torch, at the LSTM's own shapes (T the middle of
  config.times): what bounds any LSTM written on the backend's matmul kernels."""
  B, H, T = config.batch, config.hidden_features, config.times[len(config.times) // 2]
  shapes = {
    f"input projection, all steps [T*B, H] x [H, 4H], T={T}": ((T * B, H), (H, 4 * H)),
    f"weight gradient, all steps [H, T*B] x [T*B, 4H], T={T}": ((H, T * B), (T * B, 4 * H)),
    "square [2048, 2048] x [2048, 2048]": ((2048, 2048), (2048, 2048)),
  }
  rows = []
  for name, (a_shape, b_shape) in shapes.items():
    r = timing.time_matmul(a_shape, b_shape, torch_device, runs=runs)
    row = {"matmul": name, "JAX GFLOP/s": f"{r['flops'] / r['jax_s'] / 1e9:.0f}"}
    if r["torch_s"] is not None:
      row |= {
        "torch GFLOP/s": f"{r['flops'] / r['torch_s'] / 1e9:.0f}",
        "JAX time vs torch": f"{r['jax_s'] / r['torch_s']:.2f}x",
      }
    rows.append(row)
  return rows


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  peak = timing.matmul_peak()
  torch_device = timing.torch_device()
  cudnn = jax.default_backend() == "gpu"
  rows, data = [], []
  for kind in config.kinds:
    for T in config.times:
      x = np.random.default_rng(0).standard_normal((config.batch, T, config.hidden_features)).astype(np.float32)
      for backward in (False, True):

        def cell(kind=kind):
          return make_cell(kind, config.hidden_features, config.hidden_features, rngs=nnx.Rngs(0))

        cases = {
          "seqjax (hoisted)": jax_case(RNN(cell(), hoist_input_projection=True, unroll=1), jnp.asarray(x), backward),
          **{
            ("seqjax (in scan)" if unroll == 1 else f"seqjax (in scan, unroll {unroll})"): jax_case(
              RNN(cell(), hoist_input_projection=False, unroll=unroll), jnp.asarray(x), backward
            )
            for unroll in config.unrolls
          },
          "flax nnx.RNN": jax_case(FlaxRNN(kind, config.hidden_features), jnp.asarray(x), backward),
        }
        if cudnn and kind == "lstm":
          cases[CUDNN] = cudnn_case(jnp.asarray(x), config.hidden_features, backward)
        results = {name: timing.time_jax(fn, *args, runs=config.runs) for name, (fn, args) in cases.items()}
        if torch_device:
          torch_run = torch_case(kind, x, config.hidden_features, backward, torch_device)
          results["torch"] = timing.time_torch(torch_run, runs=config.runs)
        work = flops(kind, config.batch, T, config.hidden_features, backward)
        for name, r in results.items():
          row = {
            "cell": kind,
            "T": T,
            "pass": "fwd+bwd" if backward else "fwd",
            "implementation": name,
            "ms, median [fastest-slowest]": timing.spread(r, fmt=".2f"),
            "compile s": f"{r['compile_s']:.2f}",
            "vs torch": timing.ratio(r, results.get("torch")),
            "vs flax": timing.ratio(r, results["flax nnx.RNN"]),
            **({"vs cuDNN": timing.ratio(r, results.get(CUDNN))} if cudnn else {}),
            "% matmul peak": f"{100 * work / r['median_s'] / peak:.0f}%",
          }
          rows.append(row)
          data.append({**row, **r})
  matmuls = matmul_rows(config, torch_device, runs=5 * config.runs)
  report.write(
    "rnn",
    f"RNN speed, {timing.device_name()}",
    [
      (
        f"B={config.batch}, F=H={config.hidden_features}, float32; median of {config.runs} runs after a warm-up; "
        f"matmul peak measured in the same run: {peak / 1e9:.1f} GFLOP/s",
        report.markdown_table(rows),
      ),
      (
        f"Matmul kernels at the LSTM's shapes, JAX (XLA) against torch, float32; median of {5 * config.runs} calls",
        report.markdown_table(matmuls),
      ),
    ],
    {
      "matmul_peak_flops": peak,
      "device": timing.device_name(),
      "rows": data,
      "matmuls": matmuls,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
