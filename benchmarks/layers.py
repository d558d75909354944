"""The seed's cost table, measured: one layer of each family at the same width over T.

    | Property         | Forward RNN | BiRNN  | Transformer         |
    | Computation cost | O(n)        | O(2n)  | O(n^2) but parallel |
    | Parallelizable   | No          | No     | Yes                 |

Cases, forward+backward, B=8, D=256, float32: an LSTM layer (T dependent steps), a bidirectional
LSTM (two such passes), minGRU run by an associative scan (a recurrence with log2 T dependent
levels), a pre-LN Transformer encoder block (self-attention with 4 heads, FFN 4D; attention by
`implementation="auto"`) and a causal dilated CNN of `conv_num_layers` layers (kernel 2, dilations 1,
2, 4, ...: receptive field 2 ** conv_num_layers; `seqjax.conv.DilatedConvStack`). Reports time per
layer (median [fastest-slowest] of the repeats), each against the LSTM, the growth exponent of
time with T (log-log slope between neighbouring T: 1 for linear, 2 for quadratic), and a log-log
figure with the slope fitted over all T.

Commands:
    python -m benchmarks.layers default   # about 4 minutes on 2 CPU cores
    python -m benchmarks.layers smoke
"""

import dataclasses
import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report, timing
from seqjax.conv import DilatedConvStack
from seqjax.parallel import MinGRU
from seqjax.recurrent import RNN, Bidirectional, LSTMCell
from seqjax.transformer import TransformerBlock

RESULTS = report.RESULTS / "bench"
LSTM = "LSTM (forward RNN)"

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"heads": "num_heads", "conv_layers": "conv_num_layers"}


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 8
  dim: int = 256
  num_heads: int = 4
  conv_num_layers: int = 10  # receptive field 2 ** 10 = 1024 tokens
  times: tuple[int, ...] = (64, 256, 1024, 4096)
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("B=8, D=256, T=64..4096", Config()),
  "gpu": ("as default", Config()),
  "smoke": (
    "tiny",
    Config(batch=2, dim=8, num_heads=2, conv_num_layers=3, times=(8, 16), runs=1, out="/tmp/seqjax-smoke"),
  ),
}


def encoder_block(config: Config) -> TransformerBlock:
  """Pre-LN self-attention + FFN 4D; it returns (x, cache), of which the benchmark times x."""
  D = config.dim
  return TransformerBlock(D, config.num_heads, 4 * D, norm="pre", attention_implementation="auto", rngs=nnx.Rngs(0))


def layers(config: Config) -> dict[str, tuple[Callable[[], nnx.Module], str, dict]]:
  """name -> (a constructor of the layer, its dependent steps over T, options of its call)."""
  D = config.dim

  def lstm():
    return RNN(LSTMCell(D, D, rngs=nnx.Rngs(0)))

  return {
    LSTM: (lstm, "T", {}),
    "BiLSTM": (lambda: Bidirectional(lstm(), lstm()), "T (two passes)", {}),
    # always the associative scan (the CPU default would be sequential)
    "minGRU, associative scan": (lambda: MinGRU(D, D, rngs=nnx.Rngs(0)), "log2 T levels", {"mode": "associative"}),
    "Transformer encoder block": (lambda: encoder_block(config), "1", {}),
    f"dilated CNN, {config.conv_num_layers} layers": (
      lambda: DilatedConvStack(D, D, config.conv_num_layers, rngs=nnx.Rngs(0)),
      f"{config.conv_num_layers} layers",
      {},
    ),
  }


def draw(data: list[dict], config: Config, device: str):
  """Time against T on log-log axes per layer: median with the fastest-slowest band, fitted slope; the
  title states the fitted slopes (1 = linear, 2 = quadratic) rather than a shape the data may not show."""
  fig, ax = figures.figure(7.0, 4.8)
  slopes = {}
  for index, name in enumerate(dict.fromkeys(d["layer"] for d in data)):
    times = np.array([d["times_s"] for d in data if d["layer"] == name]) * 1e3  # [T, runs]
    slopes[name] = np.polyfit(np.log(config.times), np.log(np.median(times, 1)), 1)[0]
    ax.loglog(config.times, np.median(times, 1), "-o", color=f"C{index}", label=f"{name}: slope {slopes[name]:.2f}")
    ax.fill_between(config.times, times.min(1), times.max(1), color=f"C{index}", alpha=0.2)
  steepest = max(slopes, key=slopes.get)
  others = [slope for name, slope in slopes.items() if name != steepest]
  others_text = f", the others {min(others):.2f}-{max(others):.2f}" if others else ""
  ax.set_xlabel("sequence length T (tokens)")
  ax.set_ylabel("forward+backward time per layer (ms)")
  ax.set_title(
    f"Time against T, log-log slope fitted over T = {config.times[0]}-{config.times[-1]} (1 = linear, 2 = "
    f"quadratic):\n{steepest} {slopes[steepest]:.2f}{others_text}\n"
    f"(B={config.batch}, D={config.dim}, {device}; median, band: fastest-slowest of {config.runs} runs)",
    fontsize=9,
  )
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3, which="both")
  return figures.save(fig, config.out, "layers")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["rows"], config, record["device"])]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  medians: dict[str, list[float]] = {}
  rows, data = [], []
  for T in config.times:
    x = jnp.asarray(np.random.default_rng(0).standard_normal((config.batch, T, config.dim)), jnp.float32)
    for name, (make, steps, options) in layers(config).items():
      fn, params = timing.module_case(make(), backward=True, **options)
      r = timing.time_jax(fn, params, x, runs=config.runs)
      medians.setdefault(name, []).append(r["median_s"])
      if name == LSTM:  # the first case: the others are compared with it
        lstm = r
      row = {
        "T": T,
        "layer": name,
        "dependent steps": steps,
        "ms, median [fastest-slowest]": timing.spread(r),
        "compile s": f"{r['compile_s']:.2f}",
        "vs LSTM": timing.ratio(r, lstm),
      }
      rows.append(row)
      data.append({**row, **r})
  growth = [
    {
      "layer": name,
      **{
        f"T {a} -> {b}": f"{math.log(t_b / t_a) / math.log(b / a):.2f}"
        for a, b, t_a, t_b in zip(config.times, config.times[1:], times, times[1:], strict=False)
      },
    }
    for name, times in medians.items()
  ]
  report.write(
    "layers",
    f"One layer of each family over T, {timing.device_name()}",
    [
      (
        f"forward+backward, B={config.batch}, D={config.dim}, float32; {config.runs} timed runs after a warm-up",
        report.markdown_table(rows),
      ),
      (
        "Growth exponent of time with T (log-log slope; 1 = linear, 2 = quadratic)",
        report.markdown_table(growth) + f"\n\n![time against T]({draw(data, config, timing.device_name()).name})",
      ),
    ],
    {"device": timing.device_name(), "rows": data},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
