"""GPTConfig's attention default, measured: `benchmarks.gpt`'s train step with
attention_implementation "dense" against "auto" (what "auto" resolves to on this backend:
`seqjax.attention.dispatch.resolve_implementation`), at `benchmarks.gpt`'s shapes, in one process.

The two steps are compiled, each run once as a warm-up (not timed), then timed in alternating
rounds (dense, auto; then auto, dense; ...), so that load from other processes on a shared
machine weighs on both alike; the load average before and after is recorded with the times.
Besides the ratio of the medians, "per round" is the median over rounds of auto's time over
dense's in the same round (the two ran back to back), for the wall clock and for the CPU time
of this process (which waiting for the cores while others run does not add to).

Commands:
    python -m benchmarks.gpt_attention default   # D=256, 4 layers, T=256, B=8: about 2 minutes on 2 idle CPU cores
    python -m benchmarks.gpt_attention smoke
"""

import dataclasses
import os
import statistics
import time

from benchmarks import gpt
from harness import cli, report, timing
from seqjax.attention.dispatch import resolve_implementation
from seqjax.transformer import GPTConfig

RESULTS = report.RESULTS / "bench"
IMPLEMENTATIONS = ("dense", "auto")  # the first is the peer of the others
SMOKE_MODEL = dataclasses.replace(gpt.CONFIGS["smoke"][1].model, dropout_rate=0.0)  # "auto" as in default: fused


@dataclasses.dataclass(frozen=True)
class Config:
  model: GPTConfig = gpt.Config().model  # benchmarks.gpt's default: D=256, 4 layers, T=256, no dropout
  batch: int = 8
  rounds: int = 31
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("benchmarks.gpt's default shapes, 31 alternating rounds", Config()),
  "smoke": ("tiny", Config(model=SMOKE_MODEL, batch=2, rounds=2, out="/tmp/seqjax-smoke")),
}


def time_alternating(calls: dict, rounds: int) -> dict[str, dict]:
  """Each call once untimed, then `rounds` rounds timing each once, the order reversed every other
  round -> per call {median_s, min_s, times_s} (as harness.timing.time_calls: wall-clock seconds)
  and cpu_s: the CPU seconds this process spent in each timed call (all its threads), which the
  load of other processes slows less than the wall clock."""
  for call in calls.values():
    call()
  times = {name: [] for name in calls}
  cpu = {name: [] for name in calls}
  for index in range(rounds):
    for name in list(calls)[:: 1 if index % 2 == 0 else -1]:
      t0, c0 = time.perf_counter(), time.process_time()
      calls[name]()
      times[name].append(time.perf_counter() - t0)
      cpu[name].append(time.process_time() - c0)
  return {
    name: {"median_s": statistics.median(t), "min_s": min(t), "times_s": t, "cpu_s": cpu[name]}
    for name, t in times.items()
  }


def per_round(result: dict, peer: dict, key: str = "times_s") -> float:
  """The median over rounds of result's time (`key`: wall clock, or cpu_s) over peer's in the same round."""
  return statistics.median(t / p for t, p in zip(result[key], peer[key], strict=True))


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  load_before = os.getloadavg()
  steps, compile_s = {}, {}
  for name in IMPLEMENTATIONS:
    m = dataclasses.replace(config.model, attention_implementation=name)
    _, steps[name], compile_s[name] = gpt.compiled_train_step(m, config.batch, "fp32")
  results = time_alternating(steps, config.rounds)
  load_after = os.getloadavg()
  m = config.model
  attention_dropout = m.block.attention_dropout_rate > 0
  rows = [
    {
      "attention_implementation": name,
      "runs": resolve_implementation(name, attention_dropout=attention_dropout),
      "step ms, median [fastest-slowest]": timing.spread(results[name]),
      "tokens/s": f"{config.batch * m.max_length / results[name]['median_s']:.0f}",
      "vs dense": timing.ratio(results[name], results[IMPLEMENTATIONS[0]]),
      "vs dense, per round (median)": f"{per_round(results[name], results[IMPLEMENTATIONS[0]]):.2f}x",
      "CPU s per step, median": f"{statistics.median(results[name]['cpu_s']):.2f}",
      "CPU vs dense, per round (median)": f"{per_round(results[name], results[IMPLEMENTATIONS[0]], 'cpu_s'):.2f}x",
      "compile s": f"{compile_s[name]:.1f}",
    }
    for name in IMPLEMENTATIONS
  ]
  load = f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} cores"
  report.write(
    "gpt_attention",
    f"GPT train step, dense attention against auto, {timing.device_name()}",
    [
      (
        f"D={m.dim}, L={m.num_layers}, T={m.max_length}, V={m.vocab_size}, B={config.batch}, fp32; "
        f"{config.rounds} alternating rounds after a warm-up of each; {load}",
        report.markdown_table(rows),
      )
    ],
    {"device": timing.device_name(), "load_average": {"before": load_before, "after": load_after}, "rows": rows}
    | {f"{name}_times": results[name] for name in IMPLEMENTATIONS},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
