"""One decoding step of a recurrent encoder-decoder per attention score and window (seed 000,
section 2: dot-product attention is "much faster because it's just a matrix multiply").

`Seq2Seq.step` (embedding, decoder LSTM, attention, output layer; vocabulary 64) as a jitted pure
function of the parameters, batch B, at source lengths S and widths H; ratios against Luong dot
at the same H and S in the same run. Additive's W1 h_j is computed once per source
(`Seq2Seq.init_state`), so its per-step cost is O(H^2 + S H) against dot's O(S H); concat has no
such split here and costs O(S H^2); local windows still score every position, then mask.

Commands:
    python -m benchmarks.seq2seq_step default    # B=32, H=64 and 256, S=16..1024
    python -m benchmarks.seq2seq_step smoke
"""

import dataclasses

import numpy as np
from flax import nnx

from harness import cli, figures, report, timing
from seqjax.seq2seq.model import NAMED_ATTENTIONS, Seq2Seq, Seq2SeqConfig

RESULTS = report.RESULTS / "bench"
PEER = "Luong dot"
VOCAB = 64

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"hiddens": "hidden_features"}


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 32
  hidden_features: tuple[int, ...] = (64, 256)  # the widths H timed, each a panel of the figure
  sources: tuple[int, ...] = (16, 64, 256, 1024)
  runs: int = 20
  out: str = str(RESULTS)

  def check(self) -> "Config":
    for name in ("hidden_features", "sources"):
      values = getattr(self, name)
      if not values or any(not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must name at least one integer >= 1, got {values}")
    cli.at_least("batch", self.batch, 1)
    cli.at_least("runs", self.runs, 1)
    return self


CONFIGS = {
  "default": ("B=32, H=64 and 256, S=16..1024", Config()),
  "gpu": ("as default", Config()),
  "smoke": ("tiny", Config(batch=2, hidden_features=(8,), sources=(8,), runs=1, out="/tmp/seqjax-smoke")),
}


def time_step(name: str, source_length: int, hidden: int, batch: int, runs: int) -> dict:
  """One decoding step of an untrained model (its cost does not depend on the weights' values)."""
  model_config = Seq2SeqConfig(VOCAB, VOCAB, embed_dim=hidden, hidden_features=hidden, **NAMED_ATTENTIONS[name])
  model = Seq2Seq(model_config, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(0)
  state = model.init_state(batch, src=rng.integers(4, VOCAB, (batch, source_length), dtype=np.int32))  # src [B, S]
  tokens = rng.integers(4, VOCAB, (batch,), dtype=np.int32)  # [B]
  graphdef, params = nnx.split(model)

  def step(params, state, tokens):
    return nnx.merge(graphdef, params).step(state, tokens)

  return timing.time_jax(step, params, state, tokens, runs=runs)


def draw(data: list[dict], config: Config, device: str):
  fig, axes = figures.figure(5.5 * len(config.hidden_features), 4.4, columns=len(config.hidden_features))
  for ax, hidden in zip(np.atleast_1d(axes), config.hidden_features, strict=True):
    for index, name in enumerate(NAMED_ATTENTIONS):
      mine = [r for r in data if r["variant"] == name and r["hidden"] == hidden]
      lengths = [r["source_length"] for r in mine]
      ax.plot(lengths, [1e3 * r["median_s"] for r in mine], marker="o", markersize=3, color=f"C{index}", label=name)
      low, high = [[1e3 * f(r["times_s"]) for r in mine] for f in (min, max)]
      ax.fill_between(lengths, low, high, color=f"C{index}", alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("source length S (tokens)")
    ax.set_ylabel("time per decoding step (ms)")
    ax.set_title(f"H={hidden}, batch {config.batch}", fontsize=9)
    ax.grid(alpha=0.3, which="both")
  np.atleast_1d(axes)[0].legend(fontsize=7)
  fig.suptitle(
    f"One decoding step of an LSTM encoder-decoder by attention score and window, {device}\n"
    f"(median of {config.runs} calls, band: fastest-slowest; where bands overlap, the difference is within timing "
    "noise)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "seq2seq_step")


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["rows"], config, record["device"])]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  data = [
    {"variant": name, "hidden": hidden, "source_length": S, **time_step(name, S, hidden, config.batch, config.runs)}
    for hidden in config.hidden_features
    for S in config.sources
    for name in NAMED_ATTENTIONS
  ]
  peers = {(r["hidden"], r["source_length"]): r for r in data if r["variant"] == PEER}
  rows = []
  for hidden in config.hidden_features:
    for name in NAMED_ATTENTIONS:
      mine = [r for r in data if r["variant"] == name and r["hidden"] == hidden]  # ascending S
      row = {"variant": name, "H": hidden}
      for r in mine:
        row[f"S={r['source_length']}: ms [range]"] = timing.spread(r, fmt=".3f")
        row[f"S={r['source_length']}: x dot"] = timing.ratio(r, peers[(hidden, r["source_length"])])
      row[f"compile s, S={mine[-1]['source_length']}"] = f"{mine[-1]['compile_s']:.2f}"
      rows.append(row)
  figure_path = draw(data, config, timing.device_name())
  report.write(
    "seq2seq_step",
    f"One decoding step by attention score and window, {timing.device_name()}",
    [
      (
        f"batch {config.batch}; median [fastest-slowest] of {config.runs} calls after one warm-up, each ended by "
        f"block_until_ready; the ratio is against {PEER} at the same H and S, in the same run; compile apart; "
        "where two variants' ranges overlap, their difference is within timing noise",
        report.markdown_table(rows) + f"\n\n![decoding-step time]({figure_path.name})",
      )
    ],
    {"device": timing.device_name(), "rows": data},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
