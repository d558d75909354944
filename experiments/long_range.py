"""How far back can each architecture reach? (seed 000, section 1.5: gated RNNs' "effective
context window is limited (typically 100-300 tokens)"; section 3: "a 512-token dependency
requires ~9 layers of dilated convolutions vs. a single attention layer").

Three tasks whose dependency distance D is set exactly (`seqjax.data.long_range`); the answer
is read at the last step:

    copy     a symbol (of 8), D - 1 random symbols, a "go" marker: emit the first symbol.
    recall   random symbols, one marked (second channel) after 8 others and D before the answer.
    adding   values and two markers (first tenth, second half): emit the sum of the marked values.

Architectures at matched parameter count (`params`; each width is chosen to come nearest to
it, the counts are reported): Elman tanh, IRNN (ReLU, identity recurrence; Le et al. 2015),
LSTM (forget bias 1), GRU, BiLSTM (adding only, answering from both directions' final states;
on copy and recall its backward direction would read the answer within 8 steps), minGRU and LRU (two
residual blocks, each with a feed-forward layer), a causal Transformer (two pre-LN layers,
RoPE), and causal dilated CNNs of receptive field 64 (6 layers) and 1024 (10 layers). All train
with the same optimizer, batch and steps (`train`), each at its own learning rate (below); each
seed draws init and data. `caps` bounds the distances of a model too costly on a CPU beyond them
(one Transformer step at T = 1024 costs ~1.5 s here, 10x an LSTM's): the default, to fit about an
hour on 2 CPU cores, runs copy and adding with the Transformer and LRU to D = 64 and minGRU to
256; `full` adds the recall task, the Transformer to 128 and LRU and minGRU to wherever they fail
(into runs/long_range/full/; the committed numbers are in results/full/). Both committed configs
are tuned (below), and the default's runs are full's (one journal). Finished
runs and pilots are journaled (harness.journal, `<out>/long_range.runs.jsonl`): a killed run
resumes where it stopped, and configs that differ only in tasks, models, distances, caps or the
grid share their runs and pilots (copy the journal into the other config's `out` to reuse it).

Learning rates: with `learning_rates` (a grid; the default's and full's: 1e-3, 3e-3, 1e-2, 3e-2),
each architecture's rate on each task is chosen by harness.sweep's protocol before its runs: a
pilot per rate of `pilot_steps` steps (the default's: the full 500, since under Adam's constant
rate a shorter pilot favours rates that learn fast and then stall) from the first seed's init and
training batches at one distance, `pilot_distance` (64: the middle octave of the default's 16-512,
where the untuned runs at 3e-3 went from solved to unsolved for most recurrent models; a model
capped below it pilots at its cap), and up to `extend_grid` more past the grid's edge while the
best sits on it. A pilot is scored by the task's loss (cross-entropy; squared error on adding) on
`test_size` validation sequences, drawn by a generator of their own: the seed's data stream at
draw 10^9 + 1, where the test sequences are draw 10^9 and the training batches draw their step
(harness.long_range_runs.HELD_OUT), so no pilot is scored on a test sequence. The chosen rate then
trains every seed at every distance of that architecture on that task. The depth sweep's models
are tuned the same way on copy (the 10-layer CNN shares its pilots with the series); the LSTM
control trains at the LSTM's copy rate at its own width (chosen for `train.steps`, run for
control_factor x them; at `control_params` the wider LSTM has pilots of its own).
A distance each model can reach (`pilot_shorter`, on by default): where no pilot solves the task
at pilot_distance, the grid is piloted again at the next shorter distance of `distances`, and so
on down to the first; the rate chosen at the longest distance where a pilot solves (or at the
shortest) trains, and the report and results list every distance's pilots. A model piloted only
where it fails pilots near chance, and its choice rests on small differences of loss: in `full`
at D=64 the Elman, IRNN and LSTM recall pilots chose 3.3e-4 and learned less than at 3e-3
(results/full/recall-pilots-d16). Not every distance: that would multiply the pilots' cost by
the distances run. Without a grid (learning_rates=(), smoke's) every model trains at
train.learning_rate, as before the protocol. Time, an unmeasured estimate: the default's 92 pilots
of the grid (23 models and tasks, the depth sweep's included) train ~14 minutes at the speed of the
committed untuned runs' seed runs at D = 64 (scaled linearly in D where a model stopped shorter),
~2 more for building and scoring, and up to 46 more past the grid's edge (~7 minutes); so ~15-25
minutes of pilots and ~60-70 minutes for the default in all on 2 idle CPU cores (the untuned runs
took 45), more where a tuned rate solves longer distances. Three pilots timed at D = 64 on this
machine while it ran other training (load ~7 on 2 cores) took 3-5x the committed runs' seconds.

Budget and convergence of each run (harness.budget), computed from its record when the report is
built, so journaled runs get them too (harness.long_range_runs.budget_and_convergence):
parameters; training tokens, steps x batch x sequence length (D + 1 on copy, D + 9 on recall, D
on adding); nominal FLOPs, 6 per parameter every step passes through plus the readout's spread
over the sequence and, for the Transformer, 12 x length x width per attention layer
(harness.budget.predictor_flops_per_token; elementwise work, a scan's recurrence included, not
counted); training seconds, the compiling step excluded; and `converged` by the log10 training
loss at `converged_below` decades per window (harness.budget.decades_criterion states the rule;
the report prints it). 0.05 decades, because the losses span 1e-6 to 2 nats (chance on copy:
2.08) and a quarter decade more, what a run still falling that fast would lose in as many steps
again, can move adding across its solved line (a decade below the mean predictor). The tables
give them at each series' longest distance run, for the depth sweep and for the control.

Solved: accuracy >= 0.95 (copy, recall; chance 1/8) or MSE below 10% of the mean predictor's
(adding: variance explained >= 0.9), on `test_size` fresh sequences. Distances run in
ascending order; after a distance no seed solves, an architecture's longer distances are not
run. The longest solved distance is per seed: the largest D solved with every shorter D
solved too (">= D" where D was the longest run).

The seed's "~9 layers for 512 tokens" is measured on copy at D = `depth_distance`: dilated
stacks of `depth_layers` layers (kernel 2, receptive field 2^L) beside one attention layer.
The control: the LSTM at the first copy distance no seed solved, with `control_factor` x the
steps (slow learning, or a limit more steps do not move?), at the series' width, or at
`control_params` parameters where set (`full`: 4x the width's parameters and 4x the steps, the
seed's "100-300 steps" asked of a larger LSTM too, at a rate its own pilots choose at its width).
depth_layers=() leaves the depth sweep out (a run of the control alone).

Commands:
    python -m experiments.long_range default    # copy and adding, D = 16 ... 512, 3 seeds, each model's lr tuned
    python -m experiments.long_range full       # the default plus recall and the capped distances (~4 hours)
    python -m experiments.long_range smoke
    python -m experiments.long_range large      # for an accelerator: D up to 4096, ~200k parameters, 5 seeds
"""

import dataclasses
import math
import textwrap
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from flax import nnx
from matplotlib import ticker

from harness import budget, cli, figures, report, sweep
from harness.journal import Journal
from harness.long_range_runs import (
  SOLVED_ACCURACY,
  SOLVED_EXPLAINED,
  budget_and_convergence,
  run_text,
  score_text,
  solved,
  train_and_test,
)
from harness.runs import Runs
from seqjax import zoo
from seqjax.data.long_range import SYMBOLS, TASKS, shape
from seqjax.heads import SequencePredictor
from seqjax.train import TrainConfig

FLOOR = -0.3  # the figure's lowest score
DODGE = 0.07  # octaves between neighbouring models' points in the figure
MARKERS = "osD^vP*Xhp"  # one per model (cycled)
GRID = (1e-3, 3e-3, 1e-2, 3e-2)  # the default's learning rates tried per architecture and task (harness.sweep)


@dataclasses.dataclass(frozen=True)
class Config:
  distances: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
  tasks: tuple[str, ...] = ("copy", "adding")  # the `full` config adds recall
  models: tuple[str, ...] = ()  # of ARCHITECTURES, or seqjax.zoo's: a name or "package.module:builder"; () = all
  caps: tuple[tuple[str, int], ...] = (  # (model, longest distance run): the CPU cost of longer ones
    ("Transformer (causal, RoPE)", 64),
    ("LRU", 64),
    ("minGRU", 256),
  )
  params: int = 20_000  # each model's width is chosen to come nearest to this count
  train: TrainConfig = TrainConfig(steps=500, batch_size=32, learning_rate=3e-3, clip_norm=1.0)
  learning_rates: tuple[float, ...] = GRID  # a grid: each model's rate tuned per task (harness.sweep); (): train's
  pilot_steps: int = 500  # with learning_rates: each pilot's steps (at most train.steps), from seed seeds[0]'s init
  pilot_distance: int = 64  # with learning_rates: the distance the pilots train and are scored at (a cap if shorter)
  pilot_shorter: bool = True  # with learning_rates: where no pilot solves, pilot again at the next shorter distance
  extend_grid: int = 2  # with learning_rates: pilots added past the grid's edge while the best rate is on it
  test_size: int = 512
  seeds: tuple[int, ...] = (0, 1, 2)
  depth_distance: int = 512
  depth_layers: tuple[int, ...] = (7, 8, 9, 10)
  control_factor: int = 3  # the LSTM control: this many times the steps
  control_params: int = 0  # the LSTM control's parameter count: 0 for `params` (the series' width)
  converged_below: float = 0.05  # decades of training loss: a run is `converged` if it fell less (harness.budget)
  out: str = report.default_out("long_range")

  def check(self) -> "Config":
    if not self.distances or any(not isinstance(d, int) or d < 2 for d in self.distances):
      raise ValueError(f"distances must name at least one distance, each an integer >= 2, got {self.distances}")
    if list(self.distances) != sorted(set(self.distances)):
      raise ValueError(f"distances must be strictly increasing, got {self.distances}")
    if not self.tasks or any(t not in TASKS for t in self.tasks):
      raise ValueError(f"tasks must name at least one of {TASKS}, got {self.tasks}")
    for name in (*self.models, *dict(self.caps)):
      choice(name)  # a ValueError naming it unless it is known
    for name, cap in self.caps:
      cli.at_least(f"caps[{name!r}]", cap, self.distances[0])
    cli.at_least("params", self.params, 100)
    self.train.check()
    cli.at_least("test_size", self.test_size, 1)
    cli.check_seeds(self.seeds)
    cli.at_least("depth_distance", self.depth_distance, 2)
    if any(not isinstance(n, int) or n < 1 for n in self.depth_layers):
      raise ValueError(f"depth_layers must be integers >= 1, got {self.depth_layers}")
    cli.at_least("control_factor", self.control_factor, 1)
    if self.control_params:
      cli.at_least("control_params", self.control_params, 100)
    cli.positive_number("converged_below", self.converged_below)
    if self.learning_rates:
      self.check_tuning()
    return self

  def check_tuning(self) -> None:
    """learning_rates is a grid as harness.sweep asks; a pilot is no longer than a run, past the warmup."""
    sweep.check_grid(self.learning_rates)
    sweep.check_pilots(self.pilot_steps, self.extend_grid, self.train)
    cli.at_least("pilot_distance", self.pilot_distance, 2)


# ---------------------------------------------------------------------------------------- models


class Choice(NamedTuple):
  """A compared model: an architecture of `seqjax.zoo` (a registered name or
  "package.module:builder") with its builder's options, between a projection of the task's inputs
  (none where the builder reads them itself) and a readout pooled as `pool`
  (`seqjax.heads.SequencePredictor`), on `tasks`."""

  spec: str
  options: tuple[tuple[str, object], ...] = ()
  causal: bool = True
  pool: str = "last"
  tasks: tuple[str, ...] = TASKS


def cnn_name(layers: int) -> str:
  return f"dilated CNN, {layers} layers (receptive field {2**layers})"


# name -> the model; one recurrent layer each, two scan blocks, two Transformer layers of two heads
ARCHITECTURES = {
  "Elman tanh": Choice("elman_tanh"),
  "IRNN": Choice("irnn"),
  "LSTM, forget bias 1": Choice("lstm", (("forget_bias", 1.0),)),
  "GRU": Choice("gru"),
  # adding only, answering from both final states: on copy and recall the backward direction would read the answer
  "BiLSTM": Choice("bilstm", causal=False, pool="ends", tasks=("adding",)),
  "minGRU": Choice("mingru"),
  "LRU": Choice("lru"),
  "Transformer (causal, RoPE)": Choice("transformer"),
  cnn_name(6): Choice("dilated_cnn", (("num_layers", 6),)),
  cnn_name(10): Choice("dilated_cnn", (("num_layers", 10),)),
}
CONTROL_MODEL = "LSTM, forget bias 1"


def choice(name: str) -> Choice:
  """ARCHITECTURES[name], else the zoo architecture `name` (causal, read at the last step, every task)."""
  return cli.model_choice(name, ARCHITECTURES, Choice)


def predictor(model: Choice, task: str) -> Callable[[int, nnx.Rngs], SequencePredictor]:
  """build(width, rngs): `model` on `task`'s inputs and outputs."""
  features, outputs = shape(task)
  builder = zoo.resolve(model.spec).builder
  options = dict(model.options)
  return lambda width, rngs: SequencePredictor(
    outputs, width, builder, causal=model.causal, in_features=features, pool=model.pool, rngs=rngs, **options
  )


def width_for(model: Choice, task: str, params: int) -> tuple[int, int]:
  """The width (a multiple of the architecture's width step) nearest `params` parameters on `task`, and its count."""
  return zoo.matched_width(predictor(model, task), params, zoo.resolve(model.spec).width_multiple)


def model_key(name: str, model: Choice, task: str, width: int) -> str:
  """What the journal knows a model by: its name, its builder ("module:qualname") and the
  fingerprint of its parameters at seed 0 (names, shapes and initial values), so a changed
  architecture or init is trained again, not read back."""
  built = predictor(model, task)(width, nnx.Rngs(0))
  return f"{name}|{zoo.resolve(model.spec).source}|{zoo.fingerprint(built)}"


# -------------------------------------------------------------------------------------- training


def drawn(run: dict) -> float:
  """A run's score as the figures draw it: a diverged run, or adding's worse-than-the-mean, at FLOOR."""
  return FLOOR if run["score"] is None else max(run["score"], FLOOR)


def longest_solved(runs: list[dict], distances: tuple[int, ...]) -> int:
  """One seed's longest distance solved with every shorter one solved too (0: none)."""
  by_distance = {r["distance"]: r["solved"] for r in runs}
  longest = 0
  for d in distances:
    if not by_distance.get(d, False):
      break
    longest = d
  return longest


def distances_text(values: list[int], distances: tuple[int, ...], longest_run: int) -> str:
  """median [lowest to highest] of the seeds' longest solved distances; ">= D" where D was the longest run."""
  words = [(f">= {v}" if v == longest_run else str(v)) if v else f"< {distances[0]}" for v in sorted(values)]
  return f"{words[len(words) // 2]} [{words[0]} to {words[-1]}]"


# ---------------------------------------------------------------------------------------- report


SEED_CLAIMS = {
  "LSTM, forget bias 1": "100-300 (gated RNNs' effective context)",
  "GRU": "100-300 (gated RNNs' effective context)",
  cnn_name(6): "its receptive field, 64",
  cnn_name(10): "its receptive field, 1024",
  "Transformer (causal, RoPE)": "any (one attention layer reaches every position)",
}


def draw(runs: list[dict], config: Config, names: list[str]):
  fig, axes = figures.figure(6.0 * len(config.tasks), 4.8, columns=len(config.tasks))
  axes = np.atleast_1d(axes)
  for ax, task in zip(axes, config.tasks, strict=True):
    for index, name in enumerate(names):
      rows = [r for r in runs if r["model"] == name and r["task"] == task and r["steps"] == config.train.steps]
      ds = sorted({r["distance"] for r in rows})
      if not ds:
        continue
      scores = np.array([[drawn(r) for r in rows if r["distance"] == d] for d in ds])  # [D, seeds]
      style, below = ("--", 1.5) if "CNN" in name else ("-", 2)  # the CNNs' long lines under the others
      x = np.array(ds) * 2.0 ** (DODGE * (index - (len(names) - 1) / 2))  # equal scores stay visible side by side
      marker = MARKERS[index % len(MARKERS)]
      ax.plot(x, np.median(scores, 1), style, marker=marker, ms=5, mfc="none", lw=1.2, zorder=below,
              color=f"C{index % 10}", label=name)  # fmt: skip
      ax.fill_between(x, scores.min(1), scores.max(1), color=f"C{index % 10}", alpha=0.12)
    threshold, chance = (SOLVED_EXPLAINED, 0.0) if task == "adding" else (SOLVED_ACCURACY, 1 / SYMBOLS)
    ax.axhline(threshold, color="black", lw=0.8, ls=":", label=f"solved ({threshold:g})")
    ax.axhline(chance, color="gray", lw=0.8, ls="-.", label="chance" if task != "adding" else "mean predictor")
    ax.set_xscale("log", base=2)
    ax.set_xticks(config.distances, [str(d) for d in config.distances])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlabel("dependency distance D (steps)")
    ax.set_ylabel(f"variance explained, 1 - MSE / Var (drawn >= {FLOOR})" if task == "adding" else "test accuracy")
    ax.set_ylim(FLOOR - 0.05, 1.05)
    ax.set_title(f"{task}: score against distance", fontsize=10)
    ax.grid(alpha=0.3)
  legend = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
  fig.legend(legend.values(), legend.keys(), fontsize=7, loc="outside right center")
  fig.suptitle(
    f"How far back each architecture reaches (~{config.params // 1000}k parameters each, "
    f"{config.train.steps} steps; median, band: {len(config.seeds)} seeds)\n"
    "a line ends where no seed solved or at a cost cap; diverged runs are drawn at the bottom; each model's points\n"
    f"are shifted sideways by up to {DODGE * (len(names) - 1) / 2:.2f} octave so that equal scores do not hide "
    "each other",
    fontsize=10,
  )
  return figures.save(fig, config.out, "long_range")


def draw_depth(depth_runs: list[dict], config: Config):
  """Copy accuracy at depth_distance per model: the seeds' mean (the table's number) as a bar, their lowest-highest
  as a whisker and each seed as a dot."""
  fig, ax = figures.figure(6.5, 4.4)
  names = list(dict.fromkeys(r["model"] for r in depth_runs))
  labels = [textwrap.fill(name.replace("dilated CNN, ", "CNN ").replace("receptive field", "RF"), 14) for name in names]
  for index, name in enumerate(names):
    scores = np.array([max(drawn(r), 0.0) for r in depth_runs if r["model"] == name])
    mean = scores.mean()
    ax.bar(index, mean, yerr=[[mean - scores.min()], [scores.max() - mean]], color=f"C{index}", capsize=3)
    ax.plot(np.full(len(scores), index), scores, "o", color="black", ms=3, label="one seed" if index == 0 else None)
  ax.axhline(SOLVED_ACCURACY, color="black", lw=0.8, ls=":", label=f"solved ({SOLVED_ACCURACY:g})")
  ax.axhline(1 / SYMBOLS, color="gray", lw=0.8, ls="-.", label="chance")
  ax.set_xticks(range(len(labels)), labels, fontsize=7)
  ax.set_ylabel("test accuracy on copy")
  ax.set_ylim(0, 1.05)
  ax.set_title(
    f"Copy at distance {config.depth_distance}: dilated depth against one attention layer\n"
    f"(bar: mean of {len(config.seeds)} seeds, whisker: lowest-highest; D steps back needs receptive field > D)",
    fontsize=9,
  )
  ax.legend(fontsize=7)
  return figures.save(fig, config.out, "long_range_depth")


def redraw(record: dict, config: Config) -> list:
  """The figures of a results file (harness.redraw)."""
  paths = [draw(record["runs"], config, list(config.models or ARCHITECTURES))]
  return paths + ([draw_depth(record["depth_runs"], config)] if record["depth_runs"] else [])


def most_runs(config: Config, names: list[str]) -> int:
  """The runs main may train: each model's distances up to its cap on each of its tasks (a series
  stops early at the first distance no seed solves), the depth sweep and the LSTM control; with
  learning_rates, a pilot per rate of the grid for each model and task trained, and for the
  control at control_params (harness.sweep adds those past the grid's edge as it runs them)."""
  caps = dict(config.caps)
  pairs = [(name, task) for task in config.tasks for name in names if task in choice(name).tasks]
  series = sum(sum(distance <= caps.get(name, distance) for distance in config.distances) for name, task in pairs)
  depth = [(name, "copy") for name, _ in depth_models(config)] if has_depth_sweep(config) else []
  control = 1 if has_control(config, names) else 0
  control_pilots = control if config.control_params else 0  # tuned at its own width
  pilots = len(config.learning_rates) * (len(set(pairs + depth)) + control_pilots)
  return (series + len(depth) + control) * len(config.seeds) + pilots


def pilot_distances(name: str, config: Config) -> list[int]:
  """The distances `name`'s pilots may train at, longest first: pilot_distance (or the model's cap
  where shorter), then with pilot_shorter each shorter one of `distances`, tried while no pilot solves."""
  first = min(config.pilot_distance, dict(config.caps).get(name, config.pilot_distance))
  shorter = sorted((d for d in config.distances if d < first), reverse=True) if config.pilot_shorter else []
  return [first, *shorter]


def pilot(name: str, model: Choice, width: int, task: str, distance: int, rate: float, config: Config) -> dict:
  """One grid point: pilot_steps steps at `rate` from the first seed's init and training batches at
  `distance`, scored by the task's loss on validation sequences (never the test's)."""
  seed = config.seeds[0]
  train = dataclasses.replace(config.train, learning_rate=rate, steps=config.pilot_steps)
  build = predictor(model, task)
  run = train_and_test(
    name, lambda rngs: build(width, rngs), task, distance, seed, train, config.test_size, split="validation"
  )
  loss = run.get("held_out_loss")  # none where fit stopped the run: diverged
  return {
    "distance": distance,
    "steps": config.pilot_steps,
    "valid_loss": loss if loss is not None and math.isfinite(loss) else None,
    "valid_score": run["score"],
    "diverged": run["diverged"],
    "train_valid_overlap": run["train_test_overlap"],
    "train_seconds": run.get("train_seconds", 0.0),
  }


def journaled_trainer(config: Config, journal: Journal, plan: Runs):
  """(trained, tunings). trained(name, model, width, task, distance, seed, steps) -> its record
  with its learning rate: train.learning_rate, or with learning_rates the rate the model's pilots
  on `task` at `width` chose (harness.sweep; tuned at its first run, into tunings[label, task]:
  the label is the name at the first width the model trains at on that task, the series', and
  "name, width W" at another, full's wider LSTM control); journaled (by the model's key: builder
  and initial parameters, so its width, and a tuned rate), announced as one of `plan`'s runs, as
  the pilots are. tunings[label, task] holds one sweep.Tuning per pilot distance tried
  (pilot_distances: the next only where no pilot of the last solved); the last one's rate trains."""
  model_keys, tunings = {}, {}  # (name, task, width) -> model_key; (label, task) -> (sweep.Tuning, ...)
  first_widths = {}  # (name, task) -> the first width trained: the one whose tuning bears the bare name

  def key_of(name: str, model: Choice, task: str, width: int) -> str:
    if (name, task, width) not in model_keys:
      model_keys[name, task, width] = model_key(name, model, task, width)
    return model_keys[name, task, width]

  def tuned(name: str, model: Choice, width: int, task: str) -> sweep.Tuning:
    label = name if first_widths.setdefault((name, task), width) == width else f"{name}, width {width}"
    if (label, task) in tunings:
      return tunings[label, task][-1]
    ladder = []
    for distance in pilot_distances(name, config):
      key = f"{key_of(name, model, task, width)}|{task}|pilots at D={distance}, "
      key += f"{config.pilot_steps} steps, seed {config.seeds[0]}"  # not in the journal's fingerprint
      plan.total += len(config.learning_rates) if ladder else 0  # most_runs counts one distance's grid
      ladder.append(
        sweep.tune(
          f"{label} ({task}, D={distance})",
          lambda _variant, rate, distance=distance: pilot(name, model, width, task, distance, rate, config),
          journal,
          plan,
          learning_rates=config.learning_rates,
          seed=config.seeds[0],
          score="valid_loss",
          extend=config.extend_grid,
          key=key,
        )
      )
      print(ladder[-1].line(), flush=True)
      if solved(task, ladder[-1].choice["valid_score"]):
        break
    tunings[label, task] = tuple(ladder)
    return ladder[-1]

  def trained(name: str, model: Choice, width: int, task: str, distance: int, seed: int, steps: int) -> dict:
    key = f"{key_of(name, model, task, width)}|{task}|{distance}|{seed}|{steps}"
    rate = config.train.learning_rate
    if config.learning_rates:
      rate = tuned(name, model, width, task).learning_rate
      key += f"|lr {rate:g}"
    build, run_train = predictor(model, task), dataclasses.replace(config.train, steps=steps, learning_rate=rate)
    train = lambda: train_and_test(  # noqa: E731
      name, lambda rngs: build(width, rngs), task, distance, seed, run_train, config.test_size
    )
    label = f"{name}, {task} D={distance}"
    record = plan.run(label, seed, lambda: journal.run(key, train), reused=key in journal.done)
    record = {**record, "learning_rate": rate}
    return record | budget_and_convergence(record, lambda rngs: build(width, rngs), run_train, config.converged_below)

  return trained, tunings


def distance_series(trained, config: Config, names: list[str]) -> tuple[list[dict], dict, list[dict]]:
  """Each model on each of its tasks at increasing distances (up to its cap), stopping after the
  first distance no seed solves -> (runs, {(name, task): (width, parameters)}, table rows)."""
  runs, widths, rows = [], {}, []
  for task in config.tasks:
    for name in names:
      model = choice(name)
      if task not in model.tasks:
        continue
      width, count = widths[name, task] = width_for(model, task, config.params)
      for distance in config.distances:
        if distance > dict(config.caps).get(name, distance):
          break  # capped: the CPU cost of longer distances
        batch = [trained(name, model, width, task, distance, seed, config.train.steps) for seed in config.seeds]
        runs += batch
        print(f"{task} D={distance} {name}: " + ", ".join(run_text(r) for r in batch), flush=True)
        if not any(r["solved"] for r in batch):
          break  # longer distances not run
      mine = [r for r in runs if r["model"] == name and r["task"] == task]
      rows.append(series_row(name, task, width, count, mine, config))
  return runs, widths, rows


def series_row(name: str, task: str, width: int, count: int, mine: list[dict], config: Config) -> dict:
  """The table row of one model's series on one task."""
  reach = [longest_solved([r for r in mine if r["seed"] == s], config.distances) for s in config.seeds]
  ran = sorted({r["distance"] for r in mine})
  return {
    "task": task,
    "model": name,
    "width": width,
    "parameters": count,
    "learning rate": f"{mine[0]['learning_rate']:g}",
    "longest solved D, median [range over seeds]": distances_text(reach, config.distances, ran[-1]),
    "score at the longest D run, mean [range]": score_text([r for r in mine if r["distance"] == ran[-1]])
    + f" at D={ran[-1]}",
    **budget.run_cells([r for r in mine if r["distance"] == ran[-1]], parameters=False),
    "the seed's claim": SEED_CLAIMS.get(name, ""),
  }


def depth_models(config: Config) -> list[tuple[str, Choice]]:
  """(name, model) of the depth sweep: a dilated stack of each of depth_layers, and one attention layer."""
  models = [
    (cnn_name(n), ARCHITECTURES.get(cnn_name(n), Choice("dilated_cnn", (("num_layers", n),))))
    for n in config.depth_layers
  ]
  return [*models, ("Transformer, 1 layer (causal, RoPE)", Choice("transformer", (("num_layers", 1),)))]


def has_depth_sweep(config: Config) -> bool:
  """Whether the run has a depth sweep: it runs on copy, with depth_layers to compare."""
  return "copy" in config.tasks and bool(config.depth_layers)


def has_control(config: Config, names: list[str]) -> bool:
  """Whether the run may have the LSTM control (on copy, the LSTM among the models; it runs only
  where some copy distance is not solved)."""
  return "copy" in config.tasks and CONTROL_MODEL in names


def depth_sweep(trained, config: Config) -> tuple[list[dict], list[dict]]:
  """Copy at depth_distance: dilated stacks of each of depth_layers beside one attention layer ->
  (runs, table rows); none without a depth sweep (has_depth_sweep)."""
  if not has_depth_sweep(config):
    return [], []
  depth_runs = []
  for name, model in depth_models(config):
    width, _ = width_for(model, "copy", config.params)
    depth_runs += [
      trained(name, model, width, "copy", config.depth_distance, s, config.train.steps) for s in config.seeds
    ]

  def row(name: str, mine: list[dict]) -> dict:  # mine: the seeds' runs of one depth model
    return {
      "model": name,
      "learning rate": f"{mine[0]['learning_rate']:g}",
      f"copy accuracy at D={config.depth_distance}, mean [range]": score_text(mine),
      "solved seeds": f"{sum(r['solved'] for r in mine)} of {len(config.seeds)}",
      **budget.run_cells(mine),
    }

  names = dict.fromkeys(r["model"] for r in depth_runs)
  depth_rows = [row(name, [r for r in depth_runs if r["model"] == name]) for name in names]
  return depth_runs, depth_rows


def lstm_control(trained, config: Config, names: list[str], runs: list[dict], widths: dict) -> tuple[list[dict], str]:
  """The LSTM at the first copy distance no seed solved, with control_factor x the steps -> (runs,
  the report's text)."""
  not_run = "not run (the LSTM or copy is not in this run, or some seed solved every distance run)"
  if not has_control(config, names):
    return [], not_run
  lstm = [r for r in runs if r["model"] == CONTROL_MODEL and r["task"] == "copy"]
  failed = sorted({r["distance"] for r in lstm} - {r["distance"] for r in lstm if r["solved"]})
  if not failed:
    return [], not_run
  distance, model = failed[0], ARCHITECTURES[CONTROL_MODEL]
  steps = config.control_factor * config.train.steps
  width, count = widths[CONTROL_MODEL, "copy"]
  if config.control_params:
    width, count = width_for(model, "copy", config.control_params)
  control_runs = [trained(CONTROL_MODEL, model, width, "copy", distance, s, steps) for s in config.seeds]
  rate_width = f", tuned at width {width}" if config.learning_rates else ""
  before = [r for r in lstm if r["distance"] == distance]
  return control_runs, (
    f"LSTM on copy at D={distance} (its first distance no seed solved), learning rate "
    f"{control_runs[0]['learning_rate']:g} (its copy rate{rate_width}): accuracy "
    f"{score_text(before)} after {config.train.steps} steps at width {widths[CONTROL_MODEL, 'copy'][0]}, "
    f"{score_text(control_runs)} after {steps} steps at width {width} ({count:,} parameters); solved by "
    f"{sum(r['solved'] for r in control_runs)} of {len(config.seeds)} seeds with the longer budget. Converged "
    f"(harness.budget): {budget.converged_count(r['convergence']['converged'] for r in before)} at "
    f"{config.train.steps} steps, {budget.converged_count(r['convergence']['converged'] for r in control_runs)} at "
    f"{steps}; nominal GFLOP per run {budget.budget_cells([r['budget'] for r in control_runs])['nominal GFLOP']}."
  )


def pilots_text(tunings: dict[tuple[str, str], tuple[sweep.Tuning, ...]], config: Config) -> str:
  """The report's pilots section: how the rates were chosen, one line per model, task and pilot
  distance, every pilot."""
  shorter = (
    "; where no pilot solves the task there, the pilots run again at the next shorter distance of the series "
    "(down to its first), and the rate chosen at the longest distance where one solves, or at the shortest, trains"
    if config.pilot_shorter
    else ""
  )
  return (
    f"Each architecture's learning rate on each task is chosen by harness.sweep's protocol: pilots of "
    f"{config.pilot_steps} steps at {', '.join(f'{r:g}' for r in config.learning_rates)}, up to {config.extend_grid} "
    f"more past the grid's edge while the best sits on it, from seed {config.seeds[0]}'s init and training batches at "
    f"D={config.pilot_distance} (a model capped below it: at its cap){shorter}; each scored by the task's loss "
    f"(cross-entropy; squared error on adding) on {config.test_size} validation sequences drawn apart from the test "
    "sequences. The chosen rate trains every seed and distance of that model on that task.\n\n"
    + "\n".join(f"- {tuning.line()}" for ladder in tunings.values() for tuning in ladder)
    + "\n\n"
    + report.markdown_table(pilot_table(tunings))
  )


def pilot_table(tunings: dict[tuple[str, str], tuple[sweep.Tuning, ...]]) -> list[dict]:
  """One row per pilot (harness.sweep's): its model, task and distance, rate, validation loss and
  score (accuracy, or variance explained), and the choice at that distance."""
  named = {
    f"{name} ({task}, D={t.pilots[0]['distance']})": t for (name, task), ladder in tunings.items() for t in ladder
  }
  records = [record for tuning in named.values() for record in tuning.pilots]
  rows = sweep.pilot_rows(named, "validation loss")
  for row, record in zip(rows, records, strict=True):
    row["validation score"] = run_text({"score": record["valid_score"]})
    row["chosen"] = row.pop("chosen")  # the last column
  return rows


def tuning_record(ladder: tuple[sweep.Tuning, ...]) -> dict:
  """The results file's tuning of one model on one task: the record of the pilots whose choice
  trains, their distance, and the records at the longer distances where no pilot solved."""
  return {
    **ladder[-1].record(),
    "pilot_distance": ladder[-1].pilots[0]["distance"],
    "unsolved_longer": [{"pilot_distance": t.pilots[0]["distance"], **t.record()} for t in ladder[:-1]],
  }


def setup_text(config: Config, all_runs: list[dict], tunings: dict) -> str:
  """The first section's setup: seeds, training, learning rates, test sequences, distances and caps."""
  overlap = sum(r["train_test_overlap"] for r in all_runs)
  rates = (
    "each model's own learning rate per task (the table's column; pilots below)" + sweep.seeds_note(config.seeds)
    if tunings
    else f"learning rate {config.train.learning_rate:g}"
  )
  return (
    f"Seeds {list(config.seeds)} (init and data order); {config.train.steps} Adam steps of batch "
    f"{config.train.batch_size}, {rates}, clip {config.train.clip_norm}; "
    f"test: {config.test_size} fresh sequences per run; training and test sequences "
    f"shared: {overlap}. Distances tried: {list(config.distances)}; capped for CPU cost (longest distance run): "
    f"{dict(config.caps) or 'none'}. Budget at each series' longest distance run (harness.budget): training tokens "
    "= steps x batch x sequence length; nominal FLOPs = 6 per parameter every step passes through, the readout's "
    "spread over the sequence, plus 12 x length x width per attention layer, times the tokens (elementwise work "
    "and a scan's recurrence not counted); train s: fit's, the compiling step excluded. "
    + budget.decades_criterion(config.converged_below, fresh_batches=True)
  )


def write_report(config: Config, names: list[str], results: dict, tunings: dict, journal: Journal, argv) -> None:
  """The tables, figures and sections of the runs (harness.report). results: runs, depth_runs,
  control_runs, rows, depth_rows, control_text, widths and total_seconds."""
  runs, depth_runs, control_runs = results["runs"], results["depth_runs"], results["control_runs"]
  all_runs = runs + depth_runs + control_runs
  figure_path = draw(runs, config, names)
  sections = [
    (
      "Longest solved distance per architecture",
      setup_text(config, all_runs, tunings)
      + "\n\n"
      + report.markdown_table(results["rows"])
      + f"\n\n![score against distance]({figure_path.name})",
    ),
  ]
  if results["depth_rows"]:
    depth_path = draw_depth(depth_runs, config)
    sections.append(
      (
        f"Dilated depth for a {config.depth_distance}-step dependency (copy)",
        report.markdown_table(results["depth_rows"]) + f"\n\n![depth against distance]({depth_path.name})",
      )
    )
  sections.append(("Control: more steps for the LSTM", results["control_text"]))
  if tunings:
    sections.append(("Learning-rate pilots", pilots_text(tunings, config)))
  resumed = f" (resumed from {journal.path.name}: {journal.resumed} runs read back)" if journal.resumed else ""
  trained_seconds = sum(r.get("train_seconds", 0.0) for r in all_runs)
  pilot_seconds = sum(p.get("train_seconds", 0.0) for ladder in tunings.values() for t in ladder for p in t.pilots)
  sections.append(
    (
      "Cost",
      f"This process: {results['total_seconds'] / 60:.1f} minutes on this machine{resumed}; the runs' training "
      f"together: {trained_seconds / 60:.1f} minutes"
      + (f", the pilots': {pilot_seconds / 60:.1f} minutes" if tunings else "")
      + " (fit's time, the compiling first step included; building and testing apart).",
    )
  )
  report.write(
    "long_range",
    "How far back each architecture reaches: copy, recall and adding at controlled distances",
    sections,
    {
      "seeds": len(config.seeds),
      "widths": {f"{n} / {t}": {"width": w, "parameters": c} for (n, t), (w, c) in results["widths"].items()},
      "runs": runs,
      "depth_runs": depth_runs,
      "control_runs": control_runs,
      "tuning": {f"{name} / {task}": tuning_record(ladder) for (name, task), ladder in tunings.items()},
      "total_seconds": results["total_seconds"],
    },
    config=config,
    script=__spec__.name,
    argv=argv,
  )


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  names = list(config.models or ARCHITECTURES)
  started = time.perf_counter()
  journal = Journal("long_range", config, fields=("params", "train", "test_size"))  # what one run depends on
  trained, tunings = journaled_trainer(config, journal, Runs(most_runs(config, names), at_most=True))
  runs, widths, rows = distance_series(trained, config, names)
  depth_runs, depth_rows = depth_sweep(trained, config)
  control_runs, control_text = lstm_control(trained, config, names, runs, widths)
  results = {
    "runs": runs,
    "depth_runs": depth_runs,
    "control_runs": control_runs,
    "rows": rows,
    "depth_rows": depth_rows,
    "control_text": control_text,
    "widths": widths,
    "total_seconds": time.perf_counter() - started,
  }
  write_report(config, names, results, tunings, journal, argv)


CONFIGS = {
  "default": (
    "copy and adding, D = 16 ... 512, ~20k parameters, 500 steps, 3 seeds; each model's learning rate tuned per task "
    "(grid 1e-3, 3e-3, 1e-2, 3e-2; 500-step pilots at D = 64 on validation sequences)",
    Config(),
  ),
  "full": (
    "the default plus recall, the Transformer to D = 128, LRU and minGRU uncapped, the rates tuned as the default's; "
    "the LSTM control at ~80k parameters and 4x the steps (~4 hours of training on 2 CPU cores, its pilots included)",
    Config(
      tasks=TASKS,
      caps=(("Transformer (causal, RoPE)", 128),),
      control_factor=4,
      control_params=80_000,  # the control's LSTM ~4x the series' parameters
      out=report.default_out("long_range", "full"),
    ),
  ),
  "smoke": (
    "two distances, the LSTM (the control's model; the depth sweep adds a CNN and a Transformer), tiny",
    Config(
      distances=(4, 8),
      models=("LSTM, forget bias 1",),
      params=500,  # widths 4-8: a short search of matched widths
      train=TrainConfig(steps=4, batch_size=8, learning_rate=3e-3),
      learning_rates=(),  # one rate; with --learning-rates (tests/test_long_range.py) the tuned path on tiny shapes
      pilot_steps=2,
      pilot_distance=8,
      test_size=16,
      seeds=(0,),
      depth_distance=8,
      depth_layers=(2,),
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: D up to 4096, ~200k parameters, 2000 steps, 5 seeds; rates tuned (2000-step pilots, D = 256)",
    Config(
      distances=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
      params=200_000,
      train=TrainConfig(steps=2000, batch_size=64, learning_rate=1e-3, clip_norm=1.0),
      pilot_steps=2000,
      pilot_distance=256,  # the middle octave of its distances, as the default's 64
      test_size=2048,
      seeds=(0, 1, 2, 3, 4),
      out=report.default_out("long_range", "large"),
    ),
  ),
}


if __name__ == "__main__":
  main()
