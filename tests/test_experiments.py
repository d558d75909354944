"""Every experiment's shipped configs parse, and each runs end to end in its smoke variant."""

import importlib
import json
import pkgutil

import pytest

import experiments
from experiments import cli

MODULES = [
  importlib.import_module(f"experiments.{info.name}")
  for info in pkgutil.iter_modules(experiments.__path__)
  if info.name not in ("cli", "report")
]


def test_every_experiment_ships_a_smoke_config():
  assert MODULES
  for module in MODULES:
    assert {"default", "smoke"} <= set(module.CONFIGS), module.__name__


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_shipped_config_parses(module):
  for name, (_, config) in module.CONFIGS.items():
    assert cli.parse(module.CONFIGS, [name]) == config


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_smoke_run_writes_results(module, tmp_path):
  module.main(["smoke", "--out", str(tmp_path)])
  (written,) = tmp_path.glob("*.json")
  data = json.loads(written.read_text())
  assert data["provenance"]["command"].startswith("python -m experiments.")
