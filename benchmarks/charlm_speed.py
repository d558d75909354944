"""experiments/charlm's seven character language models, one training step each, timed in one
process: step time, tokens/s, nominal FLOPs per token, the fraction of the float32 matmul peak
measured in the same run, and tokens/s against the LSTM.

charlm's results table has tokens/s and fraction-of-peak columns, but its runs are read back from
a journal: they were trained in different processes under different machine load, so those
columns cannot be compared with each other. These can. Every model of charlm's ARCHITECTURES is
built at its matched width (charlm.matched_widths: the width nearest `params` parameters at
`context` and vocabulary `vocab`; 67 is the Bible corpus's, so no corpus is read), with its
training step as charlm's `fit` runs it (seqjax.train's make_train_step: charlm's loss_fn and its
AdamW recipe charlm.TRAIN, at `batch` windows) on a fixed batch of random tokens
[batch, context + 1]. Each step is compiled first (timed apart), run once as a warm-up (not
timed), then timed in `rounds` interleaved rounds: every model one step per round, the order
reversed every other round (benchmarks.gpt_attention.time_alternating), so a change of load from
other processes weighs on every model alike. The float32 matmul peak (`peak_size`^3) is measured
at the start and at the end; the load average before and after is recorded.

Per model: step ms, median [fastest-slowest] over the rounds; tokens/s = batch x context / the
median step; nominal FLOPs/token (charlm.flops_per_token: 6 per matmul parameter, plus attention's
12 x layers x context x width); fraction of peak = FLOPs/token x tokens/s / the mean of the two
peaks; tokens/s against the LSTM's (the ratio of the medians; per round: the median over rounds of
the LSTM's step time over the model's in the same round); this process's CPU seconds per step.

Commands:
    python -m benchmarks.charlm_speed default   # charlm's shapes (~1M parameters, T=128, B=16): minutes on 2 cores
    python -m benchmarks.charlm_speed smoke
"""

import dataclasses
import os
import statistics

import jax.numpy as jnp
import numpy as np

from benchmarks.gpt_attention import per_round, time_alternating
from experiments import charlm
from harness import cli, report, timing
from seqjax import zoo
from seqjax.train.config import PRECISIONS
from seqjax.train.step import init_state, make_train_step, split_model
from seqjax.train.trainer import build_optimizer

RESULTS = report.RESULTS / "bench"
PEER = "LSTM"  # the model every other one is compared with
CHARLM = charlm.Config()  # charlm's default shapes


@dataclasses.dataclass(frozen=True)
class Config:
  params: int = CHARLM.params  # each model's width is chosen to come nearest this count (charlm.matched_widths)
  context: int = CHARLM.context  # characters per window
  batch: int = charlm.TRAIN.batch_size  # windows per step
  vocab: int = 67  # the Bible corpus's characters (charlm's default text)
  rounds: int = 11  # interleaved timed rounds, one step of each model per round
  peak_size: int = 2048  # the float32 matmul peak's square matrices
  out: str = str(RESULTS)

  def check(self) -> "Config":
    cli.at_least("params", self.params, 1000)
    cli.at_least("context", self.context, 2)
    cli.at_least("batch", self.batch, 1)
    cli.at_least("vocab", self.vocab, 2)
    cli.at_least("rounds", self.rounds, 1)
    cli.at_least("peak_size", self.peak_size, 1)
    return self


CONFIGS = {
  "default": ("charlm's shapes: ~1M parameters, T=128, B=16, vocabulary 67; 11 interleaved rounds", Config()),
  "gpu": ("as default", Config()),
  "smoke": (
    "tiny",
    Config(params=3000, context=8, batch=2, rounds=1, peak_size=128, out="/tmp/seqjax-smoke"),
  ),
}


def compiled_train_step(name: str, width: int, config: Config):
  """charlm's model `name` at `width` (seed 0) and its training step as charlm's fit builds it, on
  random tokens [batch, context + 1], compiled -> (model, call: one step, returning when it is
  done, compile seconds)."""
  train = dataclasses.replace(charlm.TRAIN, batch_size=config.batch)
  model = charlm.build(name, width, config.vocab, config.context, train.seed)
  tx = build_optimizer(train)
  graphdef, params, rest = split_model(model)
  step = make_train_step(
    graphdef, rest, charlm.loss_fn, tx, nonfinite=train.nonfinite, compute_dtype=PRECISIONS[train.precision]
  )
  tokens = np.random.default_rng(0).integers(0, config.vocab, (config.batch, config.context + 1), dtype=np.int32)
  batch = {"tokens": jnp.asarray(tokens)}
  call, compile_s = timing.compiled_step_call(step, init_state(params, tx, train.seed), batch)
  return model, call, compile_s


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  names = list(charlm.ARCHITECTURES)
  shapes = dataclasses.replace(CHARLM, params=config.params, context=config.context)
  widths = charlm.matched_widths(shapes, names, config.vocab)
  load_before = os.getloadavg()
  peaks = [timing.matmul_peak(size=config.peak_size)]
  calls, models, compile_s = {}, {}, {}
  for name in names:
    models[name], calls[name], compile_s[name] = compiled_train_step(name, widths[name][0], config)
    print(f"{name}: width {widths[name][0]}, compiled in {compile_s[name]:.1f} s", flush=True)
  results = time_alternating(calls, config.rounds)
  peaks.append(timing.matmul_peak(size=config.peak_size))
  load_after = os.getloadavg()
  peak = statistics.mean(peaks)
  tokens_per_step = config.batch * config.context
  peer = results[PEER]
  rows, data = [], []
  for name in names:
    r = results[name]
    tokens_per_s = tokens_per_step / r["median_s"]
    flops = charlm.flops_per_token(models[name], config.context)
    record = {
      "model": name,
      "architecture": charlm.ARCHITECTURES[name][0],
      "width": widths[name][0],
      "parameters": zoo.count_params(models[name]),
      "compile_s": compile_s[name],
      **r,
      "tokens_per_s": tokens_per_s,
      "flops_per_token": flops,
      "fraction_of_peak": flops * tokens_per_s / peak,
      "vs_lstm": peer["median_s"] / r["median_s"],  # tokens/s over the LSTM's (exactly 1 for the LSTM)
      "vs_lstm_per_round": per_round(peer, r),  # the LSTM's time over this model's, round by round
    }
    data.append(record)
    rows.append(
      {
        "model": name,
        "width": record["width"],
        "parameters": f"{record['parameters']:,}",
        "step ms, median [fastest-slowest]": timing.spread(r),
        "tokens/s": f"{tokens_per_s:,.0f}",
        "nominal MFLOP/token": f"{flops / 1e6:.3g}",
        "fraction of matmul peak": f"{100 * record['fraction_of_peak']:.1f}%",
        f"tokens/s vs {PEER}": f"{record['vs_lstm']:.2f}x",
        f"vs {PEER}, per round (median)": f"{record['vs_lstm_per_round']:.2f}x",
        "CPU s per step, median": f"{statistics.median(r['cpu_s']):.2f}",
        "compile s": f"{compile_s[name]:.1f}",
      }
    )
  load = f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} cores"
  peak_text = ", ".join(f"{p / 1e9:.0f}" for p in peaks)
  train = charlm.TRAIN
  report.write(
    "charlm_speed",
    f"charlm's character language models, one training step each in one process, {timing.device_name()}",
    [
      (
        f"~{config.params:,} parameters each (charlm's matched widths), B={config.batch}, T={config.context}, "
        f"vocabulary {config.vocab}, float32; charlm's training step ({train.optimizer}, weight decay "
        f"{train.weight_decay:g} on {train.weight_decay_mask}, clip norm {train.clip_norm:g}) on random tokens; "
        f"{config.rounds} interleaved rounds after a compile and a warm-up step of each; {load}",
        report.markdown_table(rows),
      ),
      (
        "How to read it",
        f"float32 {config.peak_size}^3 matmul peak measured in this run: {peak_text} GFLOP/s (start, end). "
        "Nominal MFLOP/token: charlm.flops_per_token (6 per matmul parameter, plus attention's 12 x layers x "
        "context x width). Fraction of matmul peak = nominal FLOPs/token x tokens/s / the mean peak. "
        f"Tokens/s vs {PEER}: the ratio of the medians; per round: the median over rounds of the {PEER}'s step "
        "time over the model's in the same round. These replace the speed columns of results/charlm.md, "
        "whose runs were trained in different processes under different load.",
      ),
    ],
    {
      "device": timing.device_name(),
      "matmul_peak_flops": peaks,
      "load_average": {"before": load_before, "after": load_after},
      "tokens_per_step": tokens_per_step,
      "train": dataclasses.asdict(dataclasses.replace(train, batch_size=config.batch)),
      "rows": data,
      "table": rows,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
