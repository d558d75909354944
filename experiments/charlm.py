"""Character-level language models on real text: the recurrent road against attention, at equal
parameters and equal tokens (seed 000, "The Hardware Reality": LSTM ~8,000 tokens/s at 15-25%
GPU utilization, ConvSeq2Seq ~25,000 at 50-60%, Transformer ~50,000+ at 80-95%, on a V100).

The text: the English side of the prepared Bible corpus (`seqjax.data.bible`, World English
Bible) in book order, 4.0 MB of characters; every `valid_every`-th book (2 Samuel, Proverbs,
Amos, Matthew, Philippians, 1 Peter with 10) is held out whole for validation, so no verse is
in both parts (the windows of valid text found verbatim in the training text are counted and
reported: the Bible repeats itself). Or any UTF-8 text file (`--text FILE`, the corpus then
unread): its last 1/`valid_every` held out, its characters the vocabulary (`seqjax.data.char_text`);
its report is charlm-<file stem>, its runs under <workdir>/<file stem>.

Architectures at matched parameter count (`params`; each width chosen to come nearest it):
Elman tanh, LSTM (forget bias 1) and GRU language models of two layers (`RNNLanguageModel`,
`lax.scan` over time, embedding N(0, 1): benchmarks/lstm_vs_torch measured flax's N(0, 1/D) to
cost the LSTM 0.67 bits/char); minGRU and LRU (`seqjax.parallel`, four residual blocks, scanned in
parallel); a GPT of four pre-LN layers with rotary positions; and a causal dilated CNN
(`seqjax.conv`, WaveNet's gated units, receptive field = the context). Every model trains on
the same windows of `context` + 1 characters in the same order (the seed draws init and data
order) with the same optimizer and steps; validation bits per character on fixed windows of the
held-out books every `train.eval_every` steps. AdamW decays weight matrices and tables only
(`weight_decay_mask="matrices"`, nanoGPT's groups), the anchor's recipe too. Learning rates:
`train.learning_rate` for every model, or, with `learning_rates` (a grid; the default's), each
model's own, chosen first by harness.sweep's
protocol: pilots of `pilot_steps` steps trained on the training text less its last 1/`valid_every`
and scored on windows of that last part (never on the held-out text), then every seed at the
chosen rate (the anchor keeps its recipe's); the grid, each pilot and the choice are in the results.

Reported: validation bits/char against steps and against training seconds (compilation and
evaluation excluded), training tokens/s, and the fraction of this machine's float32 matmul peak
(measured in the same run) the model's nominal FLOPs reach (6 per matmul parameter per token,
plus attention's 12 x layers x context x width, nanoGPT's count). Beside it, an external
anchor: nanoGPT's shakespeare-char CPU recipe (GPT, 4 layers, 4 heads, width 128, context 64,
batch 12, 2,000 iterations, lr 1e-3 cosine, dropout 0), which reaches validation loss ~1.88
nats/char on Shakespeare, run here on this text.

Every model is a language model of `seqjax.zoo` (ARCHITECTURES below); `--models` also takes any
architecture of the zoo, by its name or as "package.module:builder" (your own: README, "Your own
model"). Trained models are kept as `fit` workdirs under `workdir`, one per run config
(<model>-seed<k>-<8 hex digits>, harness.workdirs: a changed config never empties another run's
checkpoints; each run prints its workdir); sample from any of them through
the one decoding API (one compiled loop; the GPT and the recurrent models by their own caches, the
others by rerunning the model, `seqjax.decoding.Uncached`):

    python -m experiments.charlm sample --checkpoint runs/charlm/lstm-seed0-<hex> --prompt "In the" --tokens 200

Commands (the corpus first: `python -m seqjax.data.bible prepare`, see that module):
    python -m experiments.charlm default   # ~1M parameters, 7 models + the anchor, each model's lr tuned, 3 seeds
    python -m experiments.charlm long      # the same 4x longer (1,600 steps)
    python -m experiments.charlm default --text notes.txt --models "GPT (RoPE)" --seeds 0 --no-anchor
    python -m experiments.charlm smoke
    python -m experiments.charlm large     # for an accelerator: ~10M parameters, context 256, 3 seeds
"""

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import budget, cli, figures, report, sweep, timing, workdirs
from harness.journal import Journal
from harness.runs import Runs
from seqjax import decoding, zoo
from seqjax.data import bible_text, char_text
from seqjax.train import TrainConfig, fit, make_eval_step, split_model, token_cross_entropy
from seqjax.train.records import cumulative_train_seconds, read_metrics
from seqjax.transformer import GPT

SEED_TABLE = {  # seed 000's V100 figures: (GPU utilization, tokens/s)
  "LSTM": ("15-25% (LSTM, seq); 30-40% optimized", "~8,000; ~15,000 optimized"),
  "dilated CNN": ("50-60% (ConvSeq2Seq)", "~25,000"),
  "GPT (RoPE)": ("80-95% (Transformer)", "~50,000+"),
}
GPT_LAYERS, GPT_HEADS, SCAN_LAYERS, RNN_LAYERS = 4, 4, 4, 2
SAMPLE_LENGTH = 4096  # the GPT's max_length: positions a sample may reach (RoPE has no table to size)
ANCHOR = "nanoGPT shakespeare-char CPU recipe"


TRAIN = TrainConfig(
  steps=400,
  batch_size=16,
  learning_rate=2e-3,
  optimizer="adamw",
  schedule="warmup_cosine",
  warmup_steps=20,
  weight_decay=0.01,
  weight_decay_mask="matrices",  # kernels and tables, not biases or norm scales (nanoGPT's configure_optimizers)
  clip_norm=1.0,
  log_every=25,
  eval_every=50,
)
GRID = (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)  # the default's peak learning rates tried per model (harness.sweep)


@dataclasses.dataclass(frozen=True)
class Config:
  models: tuple[str, ...] = ()  # of ARCHITECTURES, or seqjax.zoo's: a name or "package.module:builder"; () = all
  params: int = 1_000_000  # each model's width is chosen to come nearest to this count
  context: int = 128  # characters a model reads per window (and the CNN's receptive field)
  train: TrainConfig = TRAIN
  valid_windows: int = 128  # fixed windows of the held-out text, evaluated each time
  valid_every: int = 10  # every n-th book is held out (with `text`: the file's last 1/n)
  anchor: bool = True  # also run nanoGPT's recipe (below) on this text
  anchor_train: TrainConfig = TrainConfig(
    steps=2000,
    batch_size=12,
    learning_rate=1e-3,
    optimizer="adamw",
    schedule="warmup_cosine",
    warmup_steps=100,
    weight_decay=0.1,
    weight_decay_mask="matrices",  # as nanoGPT: 2-D parameters decay, biases and norm scales do not
    clip_norm=1.0,
    log_every=50,
    eval_every=250,
  )
  anchor_context: int = 64
  anchor_width: int = 128  # the recipe's (4 heads of 32)
  seeds: tuple[int, ...] = (0, 1, 2)
  learning_rates: tuple[float, ...] = GRID  # a grid: each model's peak rate tuned (harness.sweep); (): train's for all
  pilot_steps: int = 400  # with learning_rates: each pilot's steps (train's schedule over them), seed seeds[0]
  extend_grid: int = 2  # with learning_rates: pilots added past the grid's edge while the best rate is on it
  converged_below: float = 0.01  # bits/char: a run is `converged` if it improved less (harness.budget)
  corpus: str = ""  # the prepared corpus folder ("": seqjax.data.bible's default)
  text: str = ""  # a UTF-8 text file to train on in place of the corpus ("": the corpus)
  workdir: str = "runs/charlm"  # each run's fit workdir (checkpoint for `sample`) goes here ("": <out>/charlm-runs)
  out: str = report.default_out("charlm")

  def check(self) -> "Config":
    for name in self.models:
      architecture(name)  # a ValueError naming it unless it is known
    cli.at_least("params", self.params, 1000)
    cli.at_least("context", self.context, 2)
    cli.at_least("anchor_context", self.anchor_context, 2)
    if (
      not isinstance(self.anchor_width, int) or self.anchor_width < 2 * GPT_HEADS or self.anchor_width % (2 * GPT_HEADS)
    ):
      raise ValueError(f"anchor_width must be a positive multiple of {2 * GPT_HEADS}, got {self.anchor_width!r}")
    for train in (self.train, self.anchor_train):
      train.check()
    cli.at_least("valid_windows", self.valid_windows, 1)
    cli.at_least("valid_every", self.valid_every, 2)
    cli.check_seeds(self.seeds)
    if self.learning_rates:
      self.check_tuning()
    if isinstance(self.converged_below, bool) or not 0 <= self.converged_below < math.inf:
      raise ValueError(f"converged_below must be a finite number >= 0 (bits/char), got {self.converged_below!r}")
    return self

  def check_tuning(self) -> None:
    """learning_rates is a grid as harness.sweep asks; a pilot is shorter than a run, past the warmup."""
    sweep.check_grid(self.learning_rates)
    sweep.check_pilots(self.pilot_steps, self.extend_grid, self.train)


# ---------------------------------------------------------------------------------------- models


# name -> (a seqjax.zoo architecture, its options): each a language model through zoo.build
ARCHITECTURES = {
  "Elman RNN (tanh)": ("elman_tanh", {"num_layers": RNN_LAYERS}),
  "LSTM": ("lstm", {"num_layers": RNN_LAYERS, "forget_bias": 1.0}),
  "GRU": ("gru", {"num_layers": RNN_LAYERS}),
  "minGRU": ("mingru", {"num_layers": SCAN_LAYERS}),
  "LRU": ("lru", {"num_layers": SCAN_LAYERS}),
  "GPT (RoPE)": ("gpt", {"num_layers": GPT_LAYERS, "num_heads": GPT_HEADS, "max_length": SAMPLE_LENGTH}),
  "dilated CNN": ("dilated_cnn", {"gated": True}),  # WaveNet's units, receptive field >= the context
}
ANCHOR_ARCHITECTURE = ("gpt", {"num_layers": GPT_LAYERS, "num_heads": GPT_HEADS, "position": "learned"})


def architecture(name: str) -> tuple[str, dict]:
  """(zoo spec, options) of a model's name: ARCHITECTURES', the anchor's, or a zoo spec's own (no options)."""
  if name == ANCHOR:
    return ANCHOR_ARCHITECTURE
  return cli.model_choice(name, ARCHITECTURES, lambda spec: (spec, {}))


def slug(name: str) -> str:
  return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def lookup_params(model: nnx.Module) -> int:
  """Parameters only looked up, never multiplied: the input tables (token, unless reused as the
  readout; learned positions)."""
  if not isinstance(model, GPT):
    return model.embed.embedding.size
  positions = 0 if model.embed.positions is None else zoo.count_params(model.embed.positions)
  return positions + (0 if model.head is None else model.embed.tokens.embedding.size)


def flops_per_token(model: nnx.Module, context: int) -> float:
  """Nominal training FLOPs per token: 6 per matmul parameter, plus attention's 12 L T D (nanoGPT)."""
  flops = 6.0 * (zoo.count_params(model) - lookup_params(model))
  if isinstance(model, GPT):
    flops += 12.0 * model.config.num_layers * context * model.config.dim
  return flops


# ------------------------------------------------------------------------------------------ data


def load_text(config: Config) -> char_text.CharSplit:
  if config.text:
    text = char_text.read_text(config.text)
    return char_text.split_tail(text, config.valid_every, name=Path(config.text).name)
  return bible_text.split_by_book(bible_text.books(config.corpus or None), config.valid_every)


def names_of(config: Config) -> tuple[str, str, str]:
  """-> (the text's name in titles, the name of its report and journal, the folder in `workdir` of its runs)."""
  if not config.text:
    return "the World English Bible", "charlm", ""
  file = Path(config.text)
  return file.name, f"charlm-{slug(file.stem)}", slug(file.stem)


def overlap(windows: np.ndarray, vocabulary: str, train_text: str) -> int:
  """How many held-out windows occur verbatim in the training text."""
  return sum(char_text.decode(w, vocabulary) in train_text for w in windows)


def loss_fn(model, batch, rng):
  del rng
  tokens = batch["tokens"]  # [B, T + 1]
  loss, count = token_cross_entropy(model(tokens[:, :-1]), tokens[:, 1:])
  return loss, {"tokens": count}


# -------------------------------------------------------------------------------------- training


def train_one(name, model, train_ids, windows, train: TrainConfig, context: int, workdir: Path, run: dict) -> dict:
  """Trains one model through `fit` (workdir: its checkpoint), evaluating as it goes -> its record."""
  draw = char_text.window_sampler(train_ids, context, train.batch_size, train.seed)

  def batch_fn(step: int, rows: slice) -> dict:
    return {"tokens": draw(step)[rows]}  # [B, T + 1]

  graphdef, _, rest = split_model(model)
  valid_nats = make_eval_step(graphdef, rest, lambda m, tokens: loss_fn(m, {"tokens": tokens}, None)[0])
  windows = jnp.asarray(windows)
  evaluate = lambda m: {"valid_bpc": valid_nats(nnx.state(m, nnx.Param), windows) / math.log(2)}  # noqa: E731
  flops = flops_per_token(model, context)
  result = fit(model, loss_fn, batch_fn, train, workdir=workdir, run_config=run, evaluate=evaluate)
  history = read_metrics(workdir)  # resumes included
  elapsed = cumulative_train_seconds(history)
  curve = [(h["step"], s, h["valid_bpc"], h["loss"]) for h, s in zip(history, elapsed, strict=True) if "valid_bpc" in h]
  seconds = elapsed[-1]
  tokens = (train.steps - 1) * train.batch_size * context  # the compiling first step is not timed
  return {
    "model": name,
    "seed": train.seed,
    "parameters": zoo.count_params(result.model),
    "width": run["width"],
    "valid_bpc": curve[-1][2],
    "curve": curve,  # (step, training seconds, valid bits/char, train loss in nats)
    "train_seconds": seconds,
    "compile_seconds": result.compile_seconds,
    "tokens_per_s": tokens / seconds,
    "flops_per_token": flops,
  }


def budget_and_convergence(record: dict, train: TrainConfig, context: int, threshold: float) -> dict:
  """A run's budget and `converged` flag (harness.budget) from its record, so journaled runs get them too."""
  return budget.budget_and_convergence(
    parameters=record["parameters"],
    tokens=train.steps * train.batch_size * context,
    flops_per_token=record["flops_per_token"],
    train_seconds=record["train_seconds"],
    curve=[(step, bpc) for step, _, bpc, _ in record["curve"]],
    train=train,
    threshold=threshold,
  )


def run_config(name: str, width: int, config: Config, train: TrainConfig, context: int, vocabulary: str) -> dict:
  """What a workdir's config.json records: enough for `sample` to rebuild the model (its zoo
  architecture, the builder that spec names as "module:qualname", its options), here or elsewhere."""
  spec, options = architecture(name)
  return {
    "model": name,
    "architecture": spec,
    "builder": zoo.resolve(spec).source,
    "options": options,
    "width": width,
    "context": context,
    "vocabulary": vocabulary,
    "params": config.params,
    "train": dataclasses.asdict(train),
  }


def language_model(name: str, width: int, vocab: int, context: int, rngs: nnx.Rngs) -> nnx.Module:
  spec, options = architecture(name)
  return zoo.build(spec, width=width, vocab=vocab, context=context, rngs=rngs, **options)


def build(name: str, width: int, vocab: int, context: int, seed: int) -> nnx.Module:
  return language_model(name, width, vocab, context, nnx.Rngs(seed))


def width_multiple(name: str) -> int:
  return zoo.resolve(architecture(name)[0]).width_multiple


def model_key(name: str, width: int, vocab: int, context: int) -> str:
  """What the journal knows a model by: its name, its builder ("module:qualname") and the
  fingerprint of its parameters at seed 0 (names, shapes and initial values), so a changed
  architecture or init is trained again, not read back."""
  source = zoo.resolve(architecture(name)[0]).source
  return f"{name}|{source}|{zoo.fingerprint(build(name, width, vocab, context, 0))}"


# -------------------------------------------------------------------------------- learning rates


def tuning_split(train_ids: np.ndarray, valid_every: int) -> tuple[np.ndarray, np.ndarray]:
  """The pilots' own split of the training text: (all but its last 1/valid_every, what they train
  on; that last part, what they are scored on). No pilot reads the held-out text the results report."""
  cut = len(train_ids) - len(train_ids) // valid_every
  return train_ids[:cut], train_ids[cut:]


def pilot(name: str, width: int, rate: float, ids: tuple, config: Config, vocabulary: str, pilots_dir: Path) -> dict:
  """One grid point: pilot_steps steps (train's schedule over them) at peak rate `rate` from the
  first seed's init, on the pilots' training part; scored in bits/char on the tuning windows.
  ids: (the pilots' training ids, the tuning windows); its fit workdir in pilots_dir (harness.workdirs)."""
  train = dataclasses.replace(
    config.train, seed=config.seeds[0], learning_rate=rate, steps=config.pilot_steps, eval_every=0
  )
  run = run_config(name, width, config, train, config.context, vocabulary)
  model = build(name, width, len(vocabulary), config.context, config.seeds[0])
  workdir = workdirs.run_workdir(pilots_dir, f"{slug(name)}-lr{rate:g}", run)
  try:
    record = train_one(name, model, *ids, train, config.context, workdir, run)
  except FloatingPointError as error:  # fit stops a run whose updates stay non-finite
    return {"learning_rate": rate, "tuning_bpc": None, "diverged": str(error)}
  bpc = record["valid_bpc"]
  return {"learning_rate": rate, "tuning_bpc": bpc if math.isfinite(bpc) else None,
          "train_loss": record["curve"][-1][3], "seconds": record["train_seconds"]}  # fmt: skip


def tune_models(widths: dict, train_ids: np.ndarray, vocabulary: str, config: Config, journal: Journal,
                plan: Runs, runs_dir: Path, same_text: str) -> dict[str, sweep.Tuning]:  # fmt: skip
  """Each model's peak rate by harness.sweep's protocol (pilots journaled, announced in plan),
  or {} when config.learning_rates names no grid (every model at train.learning_rate)."""
  if not config.learning_rates:
    return {}
  pilot_ids, tuning_ids = tuning_split(train_ids, config.valid_every)
  ids = (pilot_ids, char_text.fixed_windows(tuning_ids, config.valid_windows, config.context))
  tunings = {}
  for name, (width, _) in widths.items():
    key = model_key(name, width, len(vocabulary), config.context) + same_text
    key += f"|pilots of {config.pilot_steps} steps, seed {config.seeds[0]}"  # not in the journal's fingerprint

    def one(_variant, rate, name=name, width=width):
      return pilot(name, width, rate, ids, config, vocabulary, runs_dir / "pilots")

    tunings[name] = sweep.tune(
      name, one, journal, plan, learning_rates=config.learning_rates, seed=config.seeds[0], score="tuning_bpc",
      extend=config.extend_grid, key=key,
    )  # fmt: skip
    print(tunings[name].line(), flush=True)
  return tunings


def pilots_text(tunings: dict[str, sweep.Tuning], config: Config) -> str:
  """The report's pilots section: how the rates were chosen, one line per model, every pilot."""
  return (
    f"Each model's peak rate is chosen by harness.sweep's protocol: pilots of {config.pilot_steps} steps (the same "
    f"schedule over them) at {', '.join(f'{r:g}' for r in config.learning_rates)}, up to {config.extend_grid} more "
    f"past the grid's edge while the best sits on it, from seed {config.seeds[0]}'s init; each trains on the training "
    f"text less its last 1/{config.valid_every} and is scored in bits/char on {config.valid_windows} windows of that "
    "last part (never on the held-out text above). The anchor keeps its recipe's rate.\n\n"
    + "\n".join(f"- {tuning.line()}" for tuning in tunings.values())
    + "\n\n"
    + report.markdown_table(pilot_table(tunings))
  )


def pilot_table(tunings: dict[str, sweep.Tuning]) -> list[dict]:
  """One row per pilot: its model, peak rate, bits/char on the tuning windows, and the choice."""
  return [
    {
      "model": name,
      "peak lr": f"{rate:g}",
      "tuning bits/char": "diverged" if sweep.diverged(record["tuning_bpc"]) else f"{record['tuning_bpc']:.3f}",
      "chosen": "yes" if index == tuning.chosen else "",
    }
    for name, tuning in tunings.items()
    for index, ((_, rate), record) in enumerate(zip(tuning.tried, tuning.pilots, strict=True))
  ]


# ---------------------------------------------------------------------------------------- report


def characters_per_step(model: str, config: Config) -> int:
  """The characters one training step reads: batch x context (the anchor's recipe has its own)."""
  if model == ANCHOR:
    return config.anchor_train.batch_size * config.anchor_context
  return config.train.batch_size * config.context


def draw(runs: list[dict], names: list[str], config: Config, peak: float):
  paths = []
  for axis, index, label, name in (
    ("characters", 0, "training characters, millions (steps x batch x context)", "charlm"),
    ("seconds", 1, "training time (s, compilation and evaluation excluded)", "charlm_wallclock"),
  ):
    fig, ax = figures.figure(7.5, 4.8)
    for colour, model in enumerate(names):
      mine = [r for r in runs if r["model"] == model]
      if not mine:
        continue
      x = np.array([[point[index] for point in r["curve"]] for r in mine])  # [seeds, evals]
      x = x * characters_per_step(model, config) / 1e6 if axis == "characters" else x  # the anchor's steps: smaller
      y = np.array([[point[2] for point in r["curve"]] for r in mine])
      style = ":" if model == ANCHOR else "-"
      ax.plot(x.mean(0), np.median(y, 0), style, marker="o", ms=3, color=f"C{colour}", label=model)
      ax.fill_between(x.mean(0), y.min(0), y.max(0), color=f"C{colour}", alpha=0.15)
    ax.set_xlabel(label)
    if axis == "seconds":
      ax.set_xscale("log")
    ax.set_ylabel("validation bits per character (held-out text)")
    ax.set_title(
      f"Character LMs on {names_of(config)[0]}, ~{config.params / 1e6:g}M parameters each: "
      f"held-out bits/char\nagainst {axis} (median, band: {len(config.seeds)} seeds; "
      f"{config.train.steps} steps x {config.train.batch_size} x {config.context} characters"
      + (
        f"; the anchor {config.anchor_train.steps} x {config.anchor_train.batch_size} x {config.anchor_context}"
        if ANCHOR in names
        else ""
      )
      + ")",
      fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(figures.save(fig, config.out, name.replace("charlm", names_of(config)[1], 1)))  # a file's own names
  return paths


def redraw(record: dict, config: Config) -> list:
  """The figures of a results file (harness.redraw)."""
  shown = list(config.models or ARCHITECTURES) + ([ANCHOR] if config.anchor else [])
  return draw(record["runs"], shown, config, record["matmul_peak_flops"])


def table(runs: list[dict], names: list[str], peak: float) -> list[dict]:
  rows = []
  for model in names:
    mine = [r for r in runs if r["model"] == model]
    if not mine:
      continue
    seed_utilization, seed_rate = SEED_TABLE.get(model, ("", ""))
    fraction = [r["flops_per_token"] * r["tokens_per_s"] / peak for r in mine]
    rows.append(
      {
        "model": model,
        "width": mine[0]["width"],
        "parameters": f"{mine[0]['parameters']:,}",
        "peak lr": f"{mine[0]['learning_rate']:g}",
        "valid bits/char, mean [range]": report.spread([r["valid_bpc"] for r in mine], ".3f"),
        "training tokens/s, mean [range]": report.spread([r["tokens_per_s"] for r in mine], ",.0f"),
        "fraction of matmul peak": report.spread([100 * f for f in fraction], ".1f") + "%",
        "compile s": report.spread([r["compile_seconds"] for r in mine], ".1f"),
        "nominal TFLOP": report.spread([r["budget"]["nominal_flops"] / 1e12 for r in mine], ".2f"),
        "converged": budget.converged_count([r["convergence"]["converged"] for r in mine]),
        "the seed (V100): utilization": seed_utilization,
        "the seed (V100): tokens/s": seed_rate,
      }
    )
  return rows


class Data(NamedTuple):
  """The text as every run reads it."""

  split: char_text.CharSplit
  train_ids: np.ndarray  # the training characters' ids
  windows: np.ndarray  # the fixed held-out windows of context + 1 characters
  anchor_windows: np.ndarray  # of anchor_context + 1
  text_key: str  # what journal keys add for a text file: its content's hash ("" for the corpus)


def load_data(config: Config) -> Data:
  """The corpus or text file, split, encoded and cut into the fixed held-out windows; announced."""
  split = load_text(config)
  train_ids = char_text.encode(split.train, split.vocabulary)
  valid_ids = char_text.encode(split.valid, split.vocabulary)
  held_out = ", ".join(split.held_out)
  print(f"text: {len(split.train):,} training and {len(split.valid):,} held-out characters ({held_out})")
  text_key = ""  # with a text file, journal keys name its content: an edited file's runs are trained again
  if config.text:
    text_key = f"|text sha256 {hashlib.sha256((split.train + split.valid).encode()).hexdigest()[:16]}"
  windows = char_text.fixed_windows(valid_ids, config.valid_windows, config.context)
  anchor_windows = char_text.fixed_windows(valid_ids, config.valid_windows, config.anchor_context)
  return Data(split, train_ids, windows, anchor_windows, text_key)


def matched_widths(config: Config, names: list[str], vocab: int) -> dict[str, tuple[int, int]]:
  """name -> (the width whose model comes nearest `params` parameters, its count)."""
  return {
    name: zoo.matched_width(
      lambda w, r, n=name: language_model(n, w, vocab, config.context, r), config.params, width_multiple(name)
    )
    for name in names
  }


def journaled_trainer(config: Config, data: Data, journal: Journal, plan: Runs, runs_dir: Path, tunings: dict):
  """trained(name, seed, width, context, train, windows) -> the run's record with its learning
  rate, budget and convergence: at its model's tuned peak rate where `tunings` holds one,
  journaled (by the model's key: builder and initial parameters, the seed, the text), announced as
  one of `plan`'s runs, its fit workdir runs_dir/<model>-seed<k>-<hash of its run config> (harness.workdirs)."""
  vocab = len(data.split.vocabulary)

  def trained(name: str, seed: int, width: int, context: int, train: TrainConfig, windows: np.ndarray) -> dict:
    train = dataclasses.replace(train, seed=seed)
    if name in tunings:  # at its chosen peak rate
      train = dataclasses.replace(train, learning_rate=tunings[name].learning_rate)
    run = run_config(name, width, config, train, context, data.split.vocabulary)
    workdir = workdirs.run_workdir(runs_dir, f"{slug(name)}-seed{seed}", run)
    model = lambda: build(name, width, vocab, context, seed)  # noqa: E731
    key = f"{model_key(name, width, vocab, context)}|{seed}" + data.text_key
    key += f"|{json.dumps(run, sort_keys=True)}" if name == ANCHOR else ""
    key += f"|peak lr {train.learning_rate:g}" if name in tunings else ""
    record = plan.run(
      name,
      seed,
      lambda: journal.run(key, lambda: train_one(name, model(), data.train_ids, windows, train, context, workdir, run)),
      reused=key in journal.done,
    )
    record = {**record, "learning_rate": train.learning_rate}
    record |= budget_and_convergence(record, train, context, config.converged_below)
    print(
      f"seed {seed} {name}: {record['valid_bpc']:.3f} bits/char, {record['tokens_per_s']:,.0f} tokens/s, "
      f"converged {record['convergence']['converged']}",
      flush=True,
    )
    return record

  return trained


def train_all(trained, config: Config, names: list[str], widths: dict, data: Data) -> list[dict]:
  """Every model at its matched width for each seed, then the anchor's recipe (if `anchor`)."""
  runs = []
  for seed in config.seeds:
    runs += [trained(name, seed, widths[name][0], config.context, config.train, data.windows) for name in names]
  if config.anchor:
    runs += [
      trained(ANCHOR, s, config.anchor_width, config.anchor_context, config.anchor_train, data.anchor_windows)
      for s in config.seeds
    ]
  return runs


def anchor_text(runs: list[dict]) -> str:
  """The report's external anchor: nanoGPT's recipe here against the number its README reports."""
  anchor_runs = [r for r in runs if r["model"] == ANCHOR]
  if not anchor_runs:
    return "not run (anchor=False)."
  return (
    f"nanoGPT's recipe here: {report.spread([r['valid_bpc'] * math.log(2) for r in anchor_runs], '.3f')} nats/char "
    f"({report.spread([r['valid_bpc'] for r in anchor_runs], '.3f')} bits/char) on the held-out text, against "
    "~1.88 nats/char (2.71 bits) that nanoGPT's README reports on Shakespeare. Differences from nanoGPT's script: "
    "biases in every layer (nanoGPT: none), Adam beta2 0.999 (0.99), cosine decay to 0 (to 1e-4)."
  )


def setup_text(config: Config, data: Data, overlap_count: int, peaks: list[float], tunings: dict) -> str:
  """The report's Setup: the text and its windows, the training, the matmul peak, the convergence rule."""
  split = data.split
  rates = (
    f"each its own peak lr (pilots below), {config.train.schedule}; seeds {list(config.seeds)}"
    + sweep.seeds_note(config.seeds)
    if tunings
    else f"lr {config.train.learning_rate:g} {config.train.schedule}; seeds {list(config.seeds)}"
  )
  return (
    f"Text: {len(split.train):,} training characters, {len(split.valid):,} held out "
    f"({', '.join(split.held_out)}); vocabulary {len(split.vocabulary)} characters. {config.valid_windows} fixed "
    f"held-out windows of {config.context + 1} characters, {overlap_count} of them found verbatim in the training "
    f"text. Each model: {config.train.steps} steps of {config.train.batch_size} windows of {config.context} "
    f"characters ({config.train.steps * config.train.batch_size * config.context:,} tokens), "
    f"{config.train.optimizer} {rates} (init and data order), weight decay {config.train.weight_decay:g} on "
    f"{'weight matrices and tables only' if config.train.weight_decay_mask == 'matrices' else 'every parameter'}. "
    "Embeddings: N(0, 1) in the Elman, LSTM and GRU models (RNNLanguageModel's init, chosen by "
    "benchmarks/lstm_vs_torch), flax's N(0, 1/width) in the others (not tuned). "
    f"Matmul peak (float32 2048^3, measured at the start and end of this run): "
    f"{', '.join(f'{p / 1e9:.0f}' for p in peaks)} GFLOP/s. Fraction of peak = nominal model FLOPs/token x "
    "tokens/s / peak; nominal TFLOP = FLOPs/token x training tokens. Converged: the mean held-out bits/char "
    f"improved by less than {config.converged_below:g} from one window of 20% of the steps to the next, in the "
    "latest two over which the learning rate stays at least half its largest value there (harness.budget): with "
    "the cosine decay to 0 they end halfway through the decay, where an unconverged curve still falls."
  )


def speed_note(resumed: int) -> str:
  """'' when this process trained every run, else a warning that the speed columns mix processes."""
  if not resumed:
    return ""
  return (
    f"\n\n{resumed} runs and pilots were read back from the journal: each run's tokens/s and compile s were "
    "measured in the process that trained it, under that process's load, and its share of peak is taken against "
    "this process's matmul peak; so the speed columns and the wall-clock figure compare runs timed apart. The "
    "speed comparison is `python -m benchmarks.charlm_speed` (every model timed in one process, interleaved)."
  )


def write_report(config: Config, names: list[str], runs: list[dict], peaks: list[float], data: Data, tunings: dict,
                 bookkeeping: dict, argv) -> None:  # fmt: skip
  """The table, figures and sections of the runs, written as the text's report (harness.report).
  bookkeeping: the results' seconds and runs_resumed_from_journal; argv: the command, for provenance."""
  shown = names + ([ANCHOR] if config.anchor else [])
  peak = float(np.mean(peaks))
  rows = table(runs, shown, peak)
  paths = draw(runs, shown, config, peak)
  split = data.split
  overlap_count = overlap(data.windows, split.vocabulary, split.train)
  sections = [
    (
      "Validation bits per character and training speed",
      report.markdown_table(rows) + speed_note(bookkeeping["runs_resumed_from_journal"]),
    ),
    ("Setup", setup_text(config, data, overlap_count, peaks, tunings)),
    ("External anchor", anchor_text(runs)),
    *([("Learning-rate pilots", pilots_text(tunings, config))] if tunings else []),
    ("Figures", "\n\n".join(f"![{p.stem}]({p.name})" for p in paths)),
  ]
  record = {
    "runs": runs,
    "table": rows,
    "matmul_peak_flops": peaks,
    "held_out": split.held_out,
    "vocabulary": split.vocabulary,
    "train_characters": len(split.train),
    "valid_characters": len(split.valid),
    "valid_windows_in_train": overlap_count,
    "seeds": list(config.seeds),
    "tuning": {name: tuning.record() for name, tuning in tunings.items()},
    **bookkeeping,
  }
  text_name, report_name, _ = names_of(config)
  title = f"Character-level language models on {text_name}"
  report.write(report_name, title, sections, record, config=config, script=__spec__.name, argv=argv)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv[:1] == ["sample"]:
    return sample_main(argv[1:])
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  names = list(config.models or ARCHITECTURES)
  started = time.perf_counter()
  data = load_data(config)
  peaks = [timing.matmul_peak()]
  _, report_name, runs_folder = names_of(config)
  journal = Journal(
    report_name, config, fields=("params", "context", "train", "valid_windows", "valid_every", "corpus")
  )
  widths = matched_widths(config, names, len(data.split.vocabulary))
  runs_dir = Path(config.workdir or Path(config.out) / "charlm-runs") / runs_folder
  plan = Runs(len(config.seeds) * (len(names) + bool(config.anchor)) + len(config.learning_rates) * len(names))
  tunings = tune_models(widths, data.train_ids, data.split.vocabulary, config, journal, plan, runs_dir, data.text_key)
  runs = train_all(journaled_trainer(config, data, journal, plan, runs_dir, tunings), config, names, widths, data)
  peaks.append(timing.matmul_peak())
  bookkeeping = {"seconds": time.perf_counter() - started, "runs_resumed_from_journal": journal.resumed}
  write_report(config, names, runs, peaks, data, tunings, bookkeeping, argv)
  print(f"trained models (sample with --checkpoint {runs_dir}/<model>-seed<k>): {runs_dir}")


# -------------------------------------------------------------------------------------- sampling


def restore(checkpoint: str | Path) -> tuple[nnx.Module, dict]:
  """The trained model of a charlm workdir (through `fit`, which verifies and resumes its newest
  checkpoint: a finished run trains no further) and its recorded run config."""
  path = Path(checkpoint) / "config.json"
  if not path.exists():
    raise ValueError(f"checkpoint must be a charlm run's workdir holding config.json, got {str(checkpoint)!r}")
  run = json.loads(path.read_text())["config"]
  train = TrainConfig(**{**run["train"], "progress": False})
  # the architecture the run recorded, not today's ARCHITECTURES (runs written before it was recorded: by name)
  spec, options = (run["architecture"], run["options"]) if "architecture" in run else architecture(run["model"])
  model = zoo.build(
    spec, width=run["width"], vocab=len(run["vocabulary"]), context=run["context"], rngs=nnx.Rngs(train.seed), **options
  )
  result = fit(model, loss_fn, lambda step, rows: None, train, workdir=checkpoint, run_config=run, stop_after=0)
  if result.step != train.steps:
    raise ValueError(
      f"{checkpoint} holds no finished run: its newest valid checkpoint is at step {result.step} of {train.steps}"
    )
  return result.model, run


def sample_main(argv) -> str:
  parser = argparse.ArgumentParser(
    prog="python -m experiments.charlm sample", description="Sample from a trained model."
  )
  parser.add_argument("--checkpoint", required=True, help="a run's workdir, e.g. runs/charlm/lstm-seed0-1a2b3c4d")
  parser.add_argument("--prompt", default="In the beginning")
  parser.add_argument("--tokens", type=int, default=200, help="characters to generate")
  parser.add_argument("--temperature", type=float, default=0.8)
  parser.add_argument("--top-k", type=int, default=None)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  cli.at_least("tokens", args.tokens, 1)
  model, run = restore(args.checkpoint)
  vocabulary = run["vocabulary"]
  unknown = sorted(set(args.prompt) - set(vocabulary))
  if not args.prompt or unknown:
    raise ValueError(f"prompt must be non-empty text in the model's vocabulary; unknown characters: {unknown}")
  prompt = jnp.asarray(char_text.encode(args.prompt, vocabulary))[None, :]  # [1, P]
  options = {"temperature": args.temperature, "top_k": args.top_k}
  tokens, _ = decoding.sample(model, prompt, key=jax.random.key(args.seed), max_new_tokens=args.tokens, **options)
  text = args.prompt + char_text.decode(tokens[0], vocabulary)
  print(text)
  return text


CONFIGS = {
  "default": (
    "~1M parameters, each model's peak lr tuned (5 rates, 400-step pilots), 400 steps x 16 x 128 characters, "
    "7 models + the anchor, 3 seeds",
    Config(),
  ),
  "smoke": (
    "tiny: two models and the anchor, a few steps",
    Config(
      models=("LSTM", "dilated CNN"),
      params=3000,
      context=8,
      train=TrainConfig(steps=4, batch_size=8, learning_rate=3e-3, log_every=2, eval_every=2),
      valid_windows=4,
      valid_every=2,
      anchor_train=TrainConfig(steps=3, batch_size=8, learning_rate=1e-3, log_every=1, eval_every=2),
      anchor_context=8,
      anchor_width=8,
      seeds=(0,),
      learning_rates=(),  # one rate; with --learning-rates (tests/test_charlm.py) the tuned path on tiny shapes
      pilot_steps=2,
      corpus=str(report.REPO / "tests" / "fixtures" / "bible"),
      workdir="",
      out="/tmp/seqjax-smoke",
    ),
  ),
  "long": (
    "the default trained 4x longer (1,600 steps, 400-step pilots): toward convergence, beyond 2 cores' 2 hours",
    Config(
      train=dataclasses.replace(TRAIN, steps=1600, warmup_steps=80, eval_every=100),
      pilot_steps=400,
      workdir="runs/charlm-long",
      out=report.default_out("charlm", "long"),
    ),
  ),
  "large": (
    "for an accelerator: ~10M parameters, context 256, 5000 steps x 64, 3 seeds",
    Config(
      params=10_000_000,
      context=256,
      train=dataclasses.replace(
        TRAIN,
        steps=5000,
        batch_size=64,
        learning_rate=1e-3,
        warmup_steps=200,
        weight_decay=0.1,
        log_every=100,
        eval_every=500,
      ),
      valid_windows=1024,
      seeds=(0, 1, 2),
      pilot_steps=500,
      workdir="runs/charlm-large",
      out=report.default_out("charlm", "large"),
    ),
  ),
}

if __name__ == "__main__":
  main()
