"""LSTM and GRU forward and forward+backward, seqjax against flax.nnx.RNN and torch.nn.LSTM/GRU.

B=32, F=H=256, T in {64, 256, 1024} by default; float32. Cases: seqjax's RNN with the input
projection hoisted out of the scan (one [T*B, F] x [F, G*H] matmul) and without; flax's
nnx.RNN(OptimizedLSTMCell / GRUCell); torch (skipped when absent; CPU threads = JAX's cores).
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

from benchmarks import timing
from experiments import cli, report
from seqjax.recurrent import RNN, make_cell

RESULTS = report.RESULTS / "bench"


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 32
  hidden: int = 256
  times: tuple[int, ...] = (64, 256, 1024)
  kinds: tuple[str, ...] = ("lstm", "gru")
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("B=32, H=256, T=64/256/1024", Config()),
  "smoke": ("tiny", Config(batch=8, hidden=8, times=(4,), runs=1, out="/tmp/seqjax-smoke")),
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
  """A pure function of (params, x): the forward outputs, or the parameters' gradient."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # rest: e.g. flax's RNG streams

  def forward(params, x):
    outputs = nnx.merge(graphdef, params, rest)(x)
    return outputs[0] if isinstance(outputs, tuple) else outputs

  if not backward:
    return forward, (params, x)
  return jax.grad(lambda p, x: jnp.sum(forward(p, x))), (params, x)


def torch_case(kind: str, x: np.ndarray, H: int, backward: bool):
  import torch

  torch.set_num_threads(os.cpu_count() or 1)
  module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(x.shape[-1], H, batch_first=True)
  xt = torch.from_numpy(x)

  def run():
    if backward:
      module.zero_grad()
      module(xt)[0].sum().backward()
    else:
      with torch.no_grad():
        module(xt)

  return run


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  peak = timing.matmul_peak()
  rows, data = [], []
  for kind in config.kinds:
    for T in config.times:
      x = np.random.default_rng(0).standard_normal((config.batch, T, config.hidden)).astype(np.float32)
      for backward in (False, True):

        def cell(kind=kind):
          return make_cell(kind, config.hidden, config.hidden, rngs=nnx.Rngs(0))

        cases = {
          "seqjax (hoisted)": jax_case(RNN(cell(), hoist_input_projection=True), jnp.asarray(x), backward),
          "seqjax (in scan)": jax_case(RNN(cell(), hoist_input_projection=False), jnp.asarray(x), backward),
          "flax nnx.RNN": jax_case(FlaxRNN(kind, config.hidden), jnp.asarray(x), backward),
        }
        results = {name: timing.time_jax(fn, *args, runs=config.runs) for name, (fn, args) in cases.items()}
        if timing.torch_available():
          results["torch"] = timing.time_torch(torch_case(kind, x, config.hidden, backward), runs=config.runs)
        work = flops(kind, config.batch, T, config.hidden, backward)
        for name, r in results.items():
          row = {
            "cell": kind,
            "T": T,
            "pass": "fwd+bwd" if backward else "fwd",
            "implementation": name,
            "median ms": f"{1e3 * r['median_s']:.2f}",
            "compile s": f"{r['compile_s']:.2f}",
            "vs torch": f"{r['median_s'] / results['torch']['median_s']:.2f}x" if "torch" in results else "n/a",
            "vs flax": f"{r['median_s'] / results['flax nnx.RNN']['median_s']:.2f}x",
            "% matmul peak": f"{100 * work / r['median_s'] / peak:.0f}%",
          }
          rows.append(row)
          data.append({**row, **r})
  report.write(
    "rnn",
    f"RNN speed, {timing.device_name()}",
    [
      (
        f"B={config.batch}, F=H={config.hidden}, float32; median of {config.runs} runs after a warm-up; "
        f"matmul peak measured in the same run: {peak / 1e9:.1f} GFLOP/s",
        report.markdown_table(rows, list(rows[0])),
      )
    ],
    {"config": dataclasses.asdict(config), "matmul_peak_flops": peak, "device": timing.device_name(), "rows": data},
    script=__spec__.name,
    argv=argv,
    out_dir=report.Path(config.out),
  )


if __name__ == "__main__":
  main()
