"""Every experiment's and benchmark's shipped configs parse, and each runs end to end in its smoke variant."""

import importlib
import json
import pkgutil

import pytest

import benchmarks
import experiments
from experiments import cli

HELPERS = {"cli", "report", "timing", "__main__"}
MODULES = [
  importlib.import_module(f"{package.__name__}.{info.name}")
  for package in (experiments, benchmarks)
  for info in pkgutil.iter_modules(package.__path__)
  if info.name not in HELPERS
]


def test_every_script_ships_a_smoke_config():
  assert len(MODULES) >= 8
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
  assert data["provenance"]["command"].startswith(("python -m experiments.", "python -m benchmarks."))


@pytest.mark.parametrize(
  "script,args,message",
  [
    ("bottleneck", ["--train-sentences", "4"], r"train_sentences \(4\) must be >= train.batch_size \(8\)"),
    ("contextual_embeddings", ["--train-sentences", "4"], r"train_sentences \(4\) must be >= train.batch_size \(8\)"),
    ("bahdanau_drill", ["--hidden", "0"], "hidden must be >= 1, got 0"),
    ("bahdanau_drill", ["--train.steps", "0"], "steps must be"),
  ],
)
def test_bad_experiment_settings_are_refused_before_any_work(script, args, message):
  module = importlib.import_module(f"experiments.{script}")
  with pytest.raises(ValueError, match=message):
    cli.parse(module.CONFIGS, ["smoke", *args])
