"""The tuning protocol: every architecture trained at its own learning rate, chosen on validation data.

Per architecture ("model"):
1. A grid of peak learning rates (`check_grid`, called by a config's check() before any work): at
   least MIN_RATES values, ascending, log-spaced (the ratios of neighbours agree within a factor
   SPACING_TOLERANCE) and spanning at least MIN_SPAN x (largest / smallest).
2. A pilot per grid point and variant (a choice made beside the rate, e.g. the Transformer's pre-
   or post-LN layout; "-" where there is none): a short run at the experiment's pilot budget, from
   the first seed's init and batches, scored on a validation split, never the test split (the
   experiment's own score, lower is better; None or not finite: diverged, never chosen).
3. While the best pilot sits on the grid's edge (the largest or smallest rate tried in its
   variant), up to `extend` pilots one grid step further out (the ratio of the two outermost rates
   on that side): the best rate is bracketed or the extension budget is spent.
4. The choice: the pilot of the lowest score (the first such in the order run).
5. Each seed (the protocol asks MIN_SEEDS or more) then trains at the chosen rate and variant at
   the full budget.
Pilots and seeds are journaled (harness.journal), so a killed sweep resumes where it stopped:
a pilot under the key "pilot|<model>|<variant>|<rate:g>", a seed's run under
"<model>|<seed>|<variant>|<rate:g>" (<model>: the model's key, by default its name).
`Tuning.record()` holds the grid, every pilot's record (its score included), the choice and
whether it is still on the edge of the rates tried (the extension budget spent), for the results
file; `Tuning.line()` says the same in one line, for a report or the log; `pilot_rows` one table
row per pilot. An experiment's config checks its pilots' budget by `check_pilots`; a run at a
rate given rather than tuned (a config without a grid) is journaled by `train_at` under the same
key as a tuned one at that rate.
"""

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence

from harness.journal import Journal
from harness.runs import Runs

MIN_RATES = 4  # learning rates in a grid, at least
MIN_SPAN = 10.0  # the largest rate / the smallest, at least
SPACING_TOLERANCE = 1.5  # the largest ratio of neighbouring rates / the smallest, at most
MIN_SEEDS = 3  # seeds trained at the chosen rate, at least, for a finding
NO_VARIANT = "-"


def check_grid(learning_rates: Sequence[float], name: str = "learning_rates") -> None:
  """A ValueError naming `name` unless the rates are a log-spaced grid as the protocol asks."""
  rates = tuple(learning_rates)
  if any(isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r < math.inf for r in rates):
    raise ValueError(f"{name} must be finite numbers > 0, got {rates!r}")
  if len(rates) < MIN_RATES:
    raise ValueError(f"{name} must hold at least {MIN_RATES} learning rates, got {len(rates)}: {rates!r}")
  ratios = [high / low for low, high in itertools.pairwise(rates)]
  if min(ratios) <= 1:
    raise ValueError(f"{name} must be strictly increasing, got {rates!r}")
  if rates[-1] / rates[0] < MIN_SPAN:
    raise ValueError(f"{name} must span at least {MIN_SPAN:g}x (largest / smallest), got {rates[-1] / rates[0]:.3g}x")
  if max(ratios) > SPACING_TOLERANCE * min(ratios):
    raise ValueError(
      f"{name} must be log-spaced (the ratios of neighbours within {SPACING_TOLERANCE:g}x of each other), "
      f"got ratios {', '.join(f'{q:.3g}' for q in ratios)}"
    )


def check_pilots(pilot_steps: int, extend_grid: int, train) -> None:
  """A ValueError naming the field unless pilot_steps is an integer in [max(2, train.warmup_steps
  + 1), train.steps] (past the warmup, at most a run: train is the runs' TrainConfig) and
  extend_grid an integer >= 0."""
  low, high = max(2, train.warmup_steps + 1), train.steps
  if isinstance(pilot_steps, bool) or not isinstance(pilot_steps, int) or not low <= pilot_steps <= high:
    raise ValueError(
      f"pilot_steps must be an integer in [{low}, {high}] (past train.warmup_steps, at most train.steps), "
      f"got {pilot_steps!r}"
    )
  if isinstance(extend_grid, bool) or not isinstance(extend_grid, int) or extend_grid < 0:
    raise ValueError(f"extend_grid must be an integer >= 0, got {extend_grid!r}")


def diverged(score) -> bool:
  return score is None or not math.isfinite(score)


def choose(scores: Sequence) -> int:
  """The index of the lowest score (the first of equals); a diverged one (None, NaN, inf) never."""
  finite = [index for index, score in enumerate(scores) if not diverged(score)]
  if not finite:
    raise FloatingPointError(f"every pilot diverged: scores {list(scores)}")
  return min(finite, key=lambda index: scores[index])


def beyond_edge(tried: Sequence[tuple[str, float]], best: tuple[str, float]) -> float | None:
  """The next rate past the grid's edge when the best pilot (variant, rate) sits on it (the
  largest or smallest rate tried in its variant): one grid step further (the ratio of the two
  outermost rates on that side). None when the best is inside the grid."""
  variant, rate = best
  rates = sorted(r for v, r in tried if v == variant)
  if len(rates) < 2 or rates[0] < rate < rates[-1]:
    return None
  if rate == rates[-1]:
    return rates[-1] * rates[-1] / rates[-2]
  return rates[0] * rates[0] / rates[1]


def grid(learning_rates: Sequence[float], variants: Sequence[str] = (NO_VARIANT,)) -> list[tuple[str, float]]:
  """(variant, rate) of each pilot before any extension, in the order they run."""
  return [(variant, rate) for variant in variants for rate in learning_rates]


@dataclasses.dataclass(frozen=True)
class Tuning:
  """The pilots of one model and its choice."""

  model: str  # the name in labels
  key: str  # the model's part of journal keys
  learning_rates: tuple[float, ...]  # the grid as configured
  variants: tuple[str, ...]  # as configured
  score: str  # the field of a pilot's record that holds its validation score (lower is better)
  tried: tuple[tuple[str, float], ...]  # (variant, rate) of each pilot, in the order run: the grid, then past it
  pilots: tuple[dict, ...]  # each pilot's record, in that order
  chosen: int  # the index of the chosen pilot

  @property
  def variant(self) -> str:
    return self.tried[self.chosen][0]

  @property
  def learning_rate(self) -> float:
    return self.tried[self.chosen][1]

  @property
  def choice(self) -> dict:
    """The chosen pilot's record."""
    return self.pilots[self.chosen]

  @property
  def past_the_grid(self) -> tuple[tuple[str, float], ...]:
    """(variant, rate) of the pilots added past the grid's edge."""
    return self.tried[len(self.learning_rates) * len(self.variants) :]

  @property
  def on_edge(self) -> bool:
    """The chosen rate is the largest or smallest tried in its variant (extensions included): the
    best rate may lie further out."""
    rates = [rate for variant, rate in self.tried if variant == self.variant]
    return self.learning_rate in (min(rates), max(rates))

  def seed_key(self, seed: int) -> str:
    return seed_key(self.key, seed, self.variant, self.learning_rate)

  def record(self) -> dict:
    """For the results file: the grid, the pilots past it, every pilot's record (its variant and
    rate as the sweep ran it) and the choice."""
    return {
      "grid": list(self.learning_rates),
      "variants": list(self.variants),
      "past_the_grid": [list(pair) for pair in self.past_the_grid],
      "score": self.score,
      "pilots": [{**p, "variant": v, "learning_rate": r} for (v, r), p in zip(self.tried, self.pilots, strict=True)],
      "chosen": {"variant": self.variant, "learning_rate": self.learning_rate},
      "on_edge": self.on_edge,
    }

  def line(self) -> str:
    """'LSTM: peak lr 0.003 (valid_bpc 2.41), chosen of 5 pilots over 0.0003-0.01, 1 past the grid'."""
    variant = "" if self.variant == NO_VARIANT else f" ({self.variant})"
    past = len(self.past_the_grid)
    return (
      f"{self.model}: peak lr {self.learning_rate:g}{variant} ({self.score} {self.choice[self.score]:.4g}), chosen of "
      f"{len(self.pilots)} pilots over {self.learning_rates[0]:g}-{self.learning_rates[-1]:g}"
      + (f", {past} past the grid" if past else "")
      + ("; on the edge of the rates tried: the best may lie further out" if self.on_edge else "")
    )


def tune(
  model: str,
  pilot: Callable[[str, float], dict],
  journal: Journal,
  plan: Runs,
  *,
  learning_rates: Sequence[float],
  seed: int,
  score: str,
  variants: Sequence[str] = (NO_VARIANT,),
  extend: int = 2,
  key: str | None = None,
) -> Tuning:
  """Every pilot of one model (pilot(variant, rate) -> its record, holding `score`; journaled,
  announced in plan as run with `seed`) and the choice; while the best rate is on the grid's edge,
  up to `extend` pilots one grid step further out (each adds one run to plan.total)."""
  check_grid(learning_rates)
  if not variants or len(set(variants)) < len(variants):
    raise ValueError(f"variants must name at least one variant, each once, got {tuple(variants)!r}")
  if isinstance(extend, bool) or not isinstance(extend, int) or extend < 0:
    raise ValueError(f"extend must be an integer >= 0, got {extend!r}")
  key = model if key is None else key
  tried, pilots = [], []

  def run(variant: str, rate: float) -> None:
    pilot_key = f"pilot|{key}|{variant}|{rate:g}"
    label = f"pilot of {model}" + ("" if variant == NO_VARIANT else f" ({variant})") + f" at peak lr {rate:g}"
    train = lambda: journal.run(pilot_key, lambda: pilot(variant, rate))  # noqa: E731
    record = plan.run(label, seed, train, reused=pilot_key in journal.done)
    if score not in record:
      raise KeyError(f"the record of pilot {pilot_key!r} holds no score {score!r}: {sorted(record)}")
    tried.append((variant, rate))
    pilots.append(record)

  for variant, rate in grid(learning_rates, variants):
    run(variant, rate)
  best = choose([p[score] for p in pilots])
  for _ in range(extend):
    rate = beyond_edge(tried, tried[best])
    if rate is None:
      break
    plan.total += 1
    run(tried[best][0], rate)
    best = choose([p[score] for p in pilots])
  return Tuning(model, key, tuple(learning_rates), tuple(variants), score, tuple(tried), tuple(pilots), best)


def seed_key(key: str, seed: int, variant: str, rate: float) -> str:
  """A seed's run of the model known as `key` in the journal: '<key>|<seed>|<variant>|<rate:g>'."""
  return f"{key}|{seed}|{variant}|{rate:g}"


def train_seed(tuning: Tuning, seed: int, train: Callable[[], dict], journal: Journal, plan: Runs) -> dict:
  """One seed's run at the chosen rate and variant at the full budget (train() -> its record),
  journaled under tuning.seed_key(seed) and announced in plan."""
  return train_at(tuning.model, tuning.key, seed, tuning.variant, tuning.learning_rate, train, journal, plan)


def train_at(
  model: str, key: str, seed: int, variant: str, rate: float, train: Callable[[], dict], journal: Journal, plan: Runs
) -> dict:
  """One seed's run of `model` (journaled as `key`) at a given rate and variant (train() -> its
  record), journaled under seed_key and announced in plan: a run at a configured rate and one
  tuned to the same rate share their journaled run."""
  run_key = seed_key(key, seed, variant, rate)
  return plan.run(model, seed, lambda: journal.run(run_key, train), reused=run_key in journal.done)


def pilot_rows(tunings: dict[str, Tuning], column: str) -> list[dict]:
  """One table row per pilot of each tuning (its name in `tunings`): the model, the variant where
  any was tuned, the peak rate, the validation score under `column` (4 significant digits, or
  "diverged") and whether it was chosen."""
  varied = any(tuning.variants != (NO_VARIANT,) for tuning in tunings.values())
  return [
    {
      "model": name,
      **({"variant": variant} if varied else {}),
      "peak lr": f"{rate:g}",
      column: "diverged" if diverged(record[tuning.score]) else f"{record[tuning.score]:.4g}",
      "chosen": "yes" if index == tuning.chosen else "",
    }
    for name, tuning in tunings.items()
    for index, ((variant, rate), record) in enumerate(zip(tuning.tried, tuning.pilots, strict=True))
  ]


def seeds_note(seeds: Sequence[int]) -> str:
  """'' with MIN_SEEDS seeds or more, else a note saying the protocol asks more."""
  if len(seeds) >= MIN_SEEDS:
    return ""
  return f" ({len(seeds)} seed{'s' * (len(seeds) > 1)}: the protocol asks {MIN_SEEDS})"
