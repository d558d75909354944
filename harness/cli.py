"""Every experiment's and benchmark's command line: a named shipped config, then overrides of any field.

python -m experiments.<name> default                     # the config the README's numbers use
python -m experiments.<name> smoke                       # tiny: seconds, for CI and checks
python -m experiments.<name> default --train.steps 500   # any field, nested with dots
python -m experiments.<name> default --out results       # maintainers: over the committed numbers

An experiment writes into its config's `out`: runs/<name>/ (git-ignored) for default, runs/<name>/large/
for large, /tmp/seqjax-smoke for smoke (harness.report.default_out).

Every field is checked (the config's `check()`, one message per field) and `out` is checked
writable before any work. The TrainConfig fields that act only with a workdir (tensorboard,
save_every, keep) are not offered on these command lines (`WorkdirOnly` in seqjax.train.config):
the experiments train without one.
"""

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import tyro

from seqjax import _validate, zoo  # _validate: the library's checks, offered to the scripts below

T = TypeVar("T")


def at_least(name: str, value, low: int) -> None:
  """An integer >= low (the scripts' one integer check)."""
  if not isinstance(value, int) or isinstance(value, bool) or value < low:
    raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def positive_number(name: str, value) -> None:
  """A finite real number > 0."""
  _validate.finite_number(name, value, low=0.0, inclusive=False)


def number_at_least(name: str, value, low: float) -> None:
  """A finite real number >= low."""
  _validate.finite_number(name, value, low=low)


def probability(name: str, value) -> None:
  """A number in [0, 1)."""
  _validate.probability(name, value)


def check_seeds(seeds) -> None:
  if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
    raise ValueError(f"seeds must name at least one seed, each an integer >= 0, got {seeds!r}")


def known(name: str, values, choices) -> None:
  """Every entry of `values` (a config's selection: variants, ...; empty for all) one of `choices`."""
  unknown = [value for value in values if value not in choices]
  if unknown:
    raise ValueError(f"{name}: unknown {unknown}; known: {list(choices)}")


def model_choice(name: str, named: Mapping[str, T], of_zoo: Callable[[str], T]) -> T:
  """An entry of a config's `models`: named[name] (the script's own compared models), else
  of_zoo(name) where `name` is an architecture of seqjax.zoo (a registered name or
  "package.module:builder"); a ValueError naming it, the script's names and the zoo's otherwise."""
  if name in named:
    return named[name]
  try:
    zoo.resolve(name)
  except ValueError as error:
    raise ValueError(f"models: {name!r} is not one of {list(named)}, nor {error}") from None
  return of_zoo(name)


def check_writable(out: str) -> None:
  """`out` must be a folder this process can create and write into."""
  path = Path(out)
  try:
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path):
      pass
  except OSError as error:
    raise ValueError(f"out must be a writable folder, got {out!r} ({error.strerror})") from None


def parse(configs: Mapping[str, tuple[str, T]], argv: Sequence[str] | None = None, description: str = "") -> T:
  config = tyro.extras.overridable_config_cli(configs, args=argv, description=description)
  check = getattr(config, "check", None)
  config = check() if check else config
  check_writable(config.out)
  return config
