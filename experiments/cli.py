"""Every experiment's command line: a named shipped config, then overrides of any field.

python -m experiments.<name> default                     # the config the README's numbers use
python -m experiments.<name> smoke                       # tiny: seconds, for CI and checks
python -m experiments.<name> default --train.steps 500   # any field, nested with dots
"""

from collections.abc import Mapping, Sequence
from typing import TypeVar

import tyro

T = TypeVar("T")


def parse(configs: Mapping[str, tuple[str, T]], argv: Sequence[str] | None = None, description: str = "") -> T:
  config = tyro.extras.overridable_config_cli(configs, args=argv, description=description)
  check = getattr(config, "check", None)
  return check() if check else config
