"""Sequential against associative scan for the parallel recurrences (minGRU, LRU), forward+backward,
T from 256 to 65536.

Commands:
    python -m benchmarks.scan default     # B=4, H=64
    python -m benchmarks.scan smoke
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, report, timing
from seqjax.parallel import LRU, MinGRU

RESULTS = report.RESULTS / "bench"

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hidden": "hidden_features"}


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 4
  hidden_features: int = 64
  times: tuple[int, ...] = (256, 1024, 4096, 16384, 65536)
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("B=4, H=64, T=256..65536", Config()),
  "gpu": ("as default", Config()),
  "smoke": ("tiny", Config(batch=1, hidden_features=4, times=(16,), runs=1, out="/tmp/seqjax-smoke")),
}


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  rows, data = [], []
  layers = {
    "minGRU": lambda: MinGRU(config.hidden_features, config.hidden_features, rngs=nnx.Rngs(0)),
    "LRU": lambda: LRU(config.hidden_features, config.hidden_features, rngs=nnx.Rngs(0)),
  }
  for name, make in layers.items():
    for T in config.times:
      x = jnp.asarray(np.random.default_rng(0).standard_normal((config.batch, T, config.hidden_features)), jnp.float32)
      results = {}
      for mode in ("sequential", "associative"):
        fn, params = timing.module_case(make(), backward=True, mode=mode)
        results[mode] = timing.time_jax(fn, params, x, runs=config.runs)
      ratio = results["sequential"]["median_s"] / results["associative"]["median_s"]
      row = {
        "layer": name,
        "T": T,
        "sequential ms, median [fastest-slowest]": timing.spread(results["sequential"], fmt=".2f"),
        "associative ms": timing.spread(results["associative"], fmt=".2f"),
        "associative speed-up": f"{ratio:.2f}x",
      }
      rows.append(row)
      data.append({**row, "results": results})
  report.write(
    "scan",
    f"Sequential vs associative scan, {timing.device_name()}",
    [
      (
        f"forward+backward, B={config.batch}, H={config.hidden_features}, float32 (LRU: complex64 state); median of "
        f"{config.runs} runs",
        report.markdown_table(rows),
      )
    ],
    {"device": timing.device_name(), "rows": data},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
