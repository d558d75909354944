"""Attention scores and windows for recurrent encoder-decoders (seed 000, section 2: "simple
dot-product attention works nearly as well as the more complex additive variant, and it's much
faster because it's just a matrix multiply"; global against local attention).

Quality: every variant trains the same way (`task`: the synthetic translation of
experiments/bottleneck.py, its held-out test partition, its seeds) with one unidirectional LSTM
encoder and decoder of width H, so only the attention differs:

    Bahdanau (additive)    e_j = v^T tanh(W1 h_j + W2 s_{i-1}), context fed into the decoder
    Luong dot              e_j = h_j^T h_t                      (global: every source position)
    Luong general          e_j = h_j^T W h_t
    Luong concat           e_j = v^T tanh(W [h_j; h_t])
    Luong general, local-m window [t - D, t + D]  (monotonic: the source position equals the step)
    Luong general, local-p window around p_t = S sigmoid(v^T tanh(W h_t)), Gaussian-weighted

The task reorders (SVO -> SOV, relative clauses before their verb), so the alignment is not
monotonic: local-m's assumption is wrong here by design, a test of what the window costs.

Speed: one decoding step (`Seq2Seq.step`: embedding, decoder LSTM, attention, output layer) as a
jitted pure function of the parameters, batch `timing_batch`, at source lengths
`timing_sources` and widths `timing_hiddens`: compile time apart, one warm-up call, the median of
`timing_runs` calls ended by block_until_ready (harness.timing); ratios against Luong dot in the
same run. Additive's W1 h_j is computed once per source (Seq2Seq.init_state), so its per-step
cost is O(H^2 + S H) against dot's O(S H); concat has no such split here and costs O(S H^2).

Commands:
    python -m experiments.attention_scores default   # 6 variants x 3 seeds, H=32; timing to S=1024
    python -m experiments.attention_scores smoke
    python -m experiments.attention_scores large     # H=128, 6000 steps: for an accelerator
"""

import dataclasses
import time

import numpy as np
from flax import nnx

from experiments import bottleneck
from harness import cli, figures, report, timing
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig
from seqjax.train import TrainConfig

VARIANTS = {
  "Bahdanau (additive)": {"attention": "bahdanau"},
  "Luong dot": {"attention": "luong", "score": "dot"},
  "Luong general": {"attention": "luong", "score": "general"},
  "Luong concat": {"attention": "luong", "score": "concat"},
  "Luong general, local-m": {"attention": "luong", "score": "general", "window": "local_m"},
  "Luong general, local-p": {"attention": "luong", "score": "general", "window": "local_p"},
}
PEER = "Luong dot"


@dataclasses.dataclass(frozen=True)
class Config:
  task: bottleneck.Config = bottleneck.Config(
    max_clauses=6,
    test_clauses=8,
    test_sentences=100,
    fixed_hiddens=(32,),  # unused here: every variant runs at task.attention_hidden
    attention_hidden=32,
    embed=32,
    train=TrainConfig(steps=1200, batch_size=64, learning_rate=3e-3, clip_norm=1.0, progress=False),
  )
  variants: tuple[str, ...] = ()  # () = all of VARIANTS
  window_half_width: int = 5  # D of the local windows
  timing_sources: tuple[int, ...] = (16, 64, 256, 1024)
  timing_hiddens: tuple[int, ...] = (64, 256)
  timing_batch: int = 32
  timing_runs: int = 20
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    self.task.check()
    unknown = [v for v in self.variants if v not in VARIANTS]
    if unknown:
      raise ValueError(f"variants: unknown {unknown}; known: {list(VARIANTS)}")
    if self.variants and PEER not in self.variants:
      raise ValueError(f"variants must include the timing peer {PEER!r}, got {self.variants}")
    cli.at_least("window_half_width", self.window_half_width, 0)
    for name in ("timing_sources", "timing_hiddens"):
      values = getattr(self, name)
      if not values or any(not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must name at least one integer >= 1, got {values}")
    cli.at_least("timing_batch", self.timing_batch, 1)
    cli.at_least("timing_runs", self.timing_runs, 1)
    return self


def options(name: str, config: Config) -> dict:
  return {**VARIANTS[name], "window_half_width": config.window_half_width}


def time_step(name: str, source_length: int, hidden: int, config: Config) -> dict:
  """One decoding step of an untrained model (the cost does not depend on the weights' values)."""
  vocab = 64
  model = Seq2Seq(
    Seq2SeqConfig(vocab, vocab, embed_dim=hidden, hidden=hidden, **options(name, config)), rngs=nnx.Rngs(0)
  )
  rng = np.random.default_rng(0)
  src = rng.integers(4, vocab, (config.timing_batch, source_length), dtype=np.int32)  # [B, S]
  state = model.init_state(config.timing_batch, src=src)
  tokens = rng.integers(4, vocab, (config.timing_batch,), dtype=np.int32)  # [B]
  graphdef, params = nnx.split(model)

  def step(params, state, tokens):
    return nnx.merge(graphdef, params).step(state, tokens)

  return timing.time_jax(step, params, state, tokens, runs=config.timing_runs)


def timings(names: list[str], config: Config) -> list[dict]:
  rows = []
  for hidden in config.timing_hiddens:
    for source_length in config.timing_sources:
      for name in names:
        result = time_step(name, source_length, hidden, config)
        rows.append({"variant": name, "hidden": hidden, "source_length": source_length, **result})
  return rows


def timing_rows(data: list[dict], config: Config) -> list[dict]:
  peers = {(r["hidden"], r["source_length"]): r for r in data if r["variant"] == PEER}
  rows = []
  for hidden in config.timing_hiddens:
    for name in dict.fromkeys(r["variant"] for r in data):
      row = {"variant": name, "H": hidden}
      for r in data:
        if r["variant"] == name and r["hidden"] == hidden:
          peer = peers[(hidden, r["source_length"])]
          row[f"S={r['source_length']}: ms [range], x dot"] = f"{timing.spread(r, 1e3, '.3f')}, {timing.ratio(r, peer)}"
      row["compile (s), S=" + str(config.timing_sources[-1])] = next(
        f"{r['compile_s']:.2f}"
        for r in data
        if r["variant"] == name and r["hidden"] == hidden and r["source_length"] == config.timing_sources[-1]
      )
      rows.append(row)
  return rows


def plot(quality: dict, speed: list[dict], config: Config):
  fig, (exact_ax, bleu_ax, time_ax) = figures.figure(16, 4.6, columns=3)
  bottleneck.draw_quality(exact_ax, bleu_ax, quality, config.task)
  hidden = config.timing_hiddens[-1]
  for index, name in enumerate(quality):
    mine = [r for r in speed if r["variant"] == name and r["hidden"] == hidden]
    lengths = [r["source_length"] for r in mine]
    time_ax.plot(lengths, [1e3 * r["median_s"] for r in mine], marker="o", markersize=3, color=f"C{index}", label=name)
    time_ax.fill_between(
      lengths, [1e3 * min(r["times_s"]) for r in mine], [1e3 * max(r["times_s"]) for r in mine], color=f"C{index}",
      alpha=0.15,
    )  # fmt: skip
  time_ax.set_xscale("log", base=2)
  time_ax.set_yscale("log")
  time_ax.set_xlabel("source length S (tokens)")
  time_ax.set_ylabel("time per decoding step (ms, median of runs)")
  time_ax.set_title(f"one step, H={hidden}, batch {config.timing_batch}, {timing.device_name()}", fontsize=9)
  time_ax.grid(alpha=0.3, which="both")
  time_ax.legend(fontsize=7)
  fig.suptitle(
    f"Attention scores and windows: quality on the same task at H={config.task.attention_hidden} (mean, band: "
    f"lowest-highest of {len(config.task.seeds)} seeds; test sentences never trained on) and decoding-step time",
    fontsize=10,
  )
  return figures.save(fig, config.out, "attention_scores")


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  names = list(config.variants or VARIANTS)
  started = time.perf_counter()
  vocab, train_pairs, test, overlap = bottleneck.datasets(config.task)
  quality, rows = {}, []
  hidden, steps = config.task.attention_hidden, config.task.train.steps
  for name in names:
    variant = (name, options(name, config), hidden, steps)
    runs = [bottleneck.evaluate(variant, vocab, train_pairs, test, config.task, seed) for seed in config.task.seeds]
    quality[name] = runs
    rows.append({"variant": name, **bottleneck.summary_cells(runs, config.task)})
  trained_minutes = (time.perf_counter() - started) / 60
  speed = timings(names, config)
  counts = {b["lengths"]: b["sentences"] for b in quality[names[0]][0]["buckets"]}
  figure_path = plot(quality, speed, config)
  task = config.task
  report.write(
    "attention_scores",
    "Attention scores (additive, dot, general, concat) and windows (global, local-m, local-p)",
    [
      (
        f"Quality: BLEU / exact match by source length, mean over seeds {list(task.seeds)} [lowest-highest seed]",
        f"LSTM encoder and decoder, H={hidden}, embeddings {task.embed}; {task.train_sentences} training sentences "
        f"of 5-{5 + 4 * task.max_clauses} words († = longer than any), {steps} Adam steps of "
        f"{task.train.batch_size}, learning rate {task.train.learning_rate:g}, greedy decoding; local windows "
        f"D={config.window_half_width}. Test sentences per bucket {counts}, {overlap} of them in the training set. "
        f"Training and testing: {trained_minutes:.1f} minutes.\n\n"
        + report.markdown_table(rows)
        + f"\n\n![quality and decoding-step time]({figure_path.name})",
      ),
      (
        f"Speed: one decoding step, batch {config.timing_batch}, on {timing.device_name()}",
        f"Median [fastest-slowest] of {config.timing_runs} calls after one warm-up, ended by block_until_ready; "
        f"the ratio is against {PEER} at the same H and S, measured in the same run; compile time apart.\n\n"
        + report.markdown_table(timing_rows(speed, config)),
      ),
    ],
    {
      "seeds": len(task.seeds),
      "train_test_overlap": overlap,
      "test_sentences": counts,
      "models": quality,
      "timings": speed,
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


CONFIGS = {
  "default": ("6 variants x 3 seeds at H=32, 1200 steps; timing at S=16..1024 (the README's numbers)", Config()),
  "smoke": (
    "tiny",
    Config(
      task=bottleneck.CONFIGS["smoke"][1],
      variants=("Luong dot", "Luong general, local-p"),
      timing_sources=(8,),
      timing_hiddens=(8,),
      timing_batch=2,
      timing_runs=2,
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: H=128, 6000 steps, 500 test sentences per bucket",
    Config(
      task=dataclasses.replace(
        Config().task,
        attention_hidden=128,
        embed=128,
        test_sentences=500,
        train=dataclasses.replace(Config().task.train, steps=6000),
      ),
      timing_hiddens=(256, 1024),
      timing_sources=(64, 256, 1024, 4096),
      out=str(report.LARGE),
    ),
  ),
}


if __name__ == "__main__":
  main()
