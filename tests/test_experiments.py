"""Every experiment's and benchmark's shipped configs parse, and each runs end to end in its smoke variant."""

import ast
import functools
import importlib
import json
import pkgutil
import platform
import re

import pytest

import benchmarks
import experiments
from harness import cli, redraw, report, timing

HELPERS = {"__main__"}
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


def test_every_experiment_ships_a_large_config_that_writes_apart_from_the_defaults():
  from experiments.__main__ import SUITE

  assert {m.__name__ for m in SUITE} == {m.__name__ for m in MODULES if m.__name__.startswith("experiments.")}
  for module in SUITE:
    assert module.CONFIGS["large"][1].out != module.CONFIGS["default"][1].out, module.__name__
    assert module.CONFIGS["smoke"][1].out == "/tmp/seqjax-smoke", module.__name__


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_shipped_config_parses(module):
  for name, (_, config) in module.CONFIGS.items():
    assert cli.parse(module.CONFIGS, [name]) == config


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_smoke_run_writes_results(module, tmp_path, capsys, monkeypatch):
  from harness.runs import started

  # charlm measures the CPU's float32 matmul peak for its fraction-of-peak column (six 2048^3
  # products at its start and end: seconds), which nothing here reads: a 128^3 probe, the same code
  monkeypatch.setattr(timing, "matmul_peak", functools.partial(timing.matmul_peak, size=128))
  announced = len(started)
  module.main(["smoke", "--out", str(tmp_path)])
  for plan in started[announced:]:  # every run announced, as many as the headers counted
    assert plan.count == plan.total or (plan.at_most and plan.count <= plan.total), (plan.count, plan.total)
  (written,) = tmp_path.glob("*.json")
  data = json.loads(written.read_text())
  assert data["provenance"]["command"].startswith(("python -m experiments.", "python -m benchmarks."))
  printed = capsys.readouterr().out
  assert re.search(r"^(compared with|not compared|no committed results)", printed, re.MULTILINE)
  for path in tmp_path.iterdir():  # the script ends by naming every file it wrote
    assert str(path) in printed
    assert re.fullmatch(r"[a-z0-9_.-]+", path.name), path.name  # named by the script, not by a run's label
  for markdown in tmp_path.glob("*.md"):
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown.read_text()):
      assert (tmp_path / image).is_file(), image
  if module.__name__ in COUNTED:  # every model's parameter count is in the results file
    counts = COUNTED[module.__name__](data)
    assert counts and all(isinstance(n, int) and n > 0 for n in counts), counts
  drawn = {path.name: path.read_bytes() for path in tmp_path.glob("*.png")}
  if drawn and module.__name__ not in NOT_REDRAWN:  # the results file alone draws the same figures, bit for bit
    assert {path.name: path.read_bytes() for path in redraw.redraw(written, tmp_path / "redrawn")} == drawn


# scripts whose results record each model's parameter count -> the counts in a results file
COUNTED = {
  "experiments.bottleneck": lambda data: list(data["parameters"].values()),
  "experiments.attention_scores": lambda data: list(data["parameters"].values()),
  "experiments.contextual_embeddings": lambda data: [n for run in data["runs"] for n in run["parameters"].values()],
}

# scripts whose figures need more than their results file (harness.redraw refuses them by name)
NOT_REDRAWN = {"experiments.translation"}  # its attention figure labels the corpus's subwords


@pytest.mark.parametrize(
  "script,args,message",
  [
    ("bottleneck", ["--train-sentences", "4"], r"train_sentences \(4\) must be >= train.batch_size \(8\)"),
    ("contextual_embeddings", ["--train-sentences", "4"], r"train_sentences \(4\) must be >= train.batch_size \(8\)"),
    ("bahdanau_drill", ["--hidden-features", "0"], "hidden_features must be an integer >= 1, got 0"),
    ("bahdanau_drill", ["--train.steps", "0"], "steps must be"),
    ("tbptt", ["--train.learning-rate", "0"], "learning_rate must be a finite number > 0, got 0.0"),
    ("tbptt", ["--train.learning-rate", "-1"], "learning_rate must be a finite number > 0, got -1.0"),
    ("tbptt", ["--train.precision", "bf16"], "train.precision: the TBPTT loop here does not implement precision"),
    ("tbptt", ["--k2s", "1", "6"], r"k2s must name at least one window, each an integer >= k1 = 2"),
    ("tbptt", ["--cost-hidden-features", "0"], "cost_hidden_features must be an integer >= 1, got 0"),
    ("clipping", ["--time", "1"], "time must be an integer >= 2, got 1"),
    ("gradient_decay", ["--seeds", "-1"], "seeds must name at least one seed, each an integer >= 0"),
    ("gradient_decay", ["--num-layers", "0"], "num_layers must be an integer >= 1, got 0"),
    ("bottleneck", ["--seeds", "-1"], "seeds must name at least one seed, each an integer >= 0"),
    ("bottleneck", ["--attention-hidden-features", "0"], "attention_hidden_features must be an integer >= 1, got 0"),
    ("bottleneck", ["--fixed-hidden-features", "0"], "fixed_hidden_features must be an integer >= 1, got 0"),
    ("bottleneck", ["--out", "/proc/no/such"], "out must be a writable folder"),
    ("long_range", ["--distances", "8", "4"], "distances must be strictly increasing"),
    ("long_range", ["--models", "LSTM"], r"models: 'LSTM' is not one of \[.*\], nor unknown architecture 'LSTM'"),
    ("long_range", ["--tasks", "sort"], "tasks must name at least one of"),
    ("attention_scores", ["--variants", "Luong"], r"variants: unknown \['Luong'\]"),
    (
      "contextual_embeddings",
      ["--pretrained", "x", "--fillers", "50"],
      "with pretrained, cues_per_sense must be <= 10",
    ),
    ("attention_scores", ["--task.held-out-percent", "90"], r"held_out_percent must be an integer in \[1, 50\]"),
  ],
)
def test_bad_experiment_settings_are_refused_before_any_work(script, args, message):
  module = importlib.import_module(f"experiments.{script}")
  with pytest.raises(ValueError, match=message):
    cli.parse(module.CONFIGS, ["smoke", *args])


@pytest.mark.parametrize(
  "script,old,field",
  [
    ("experiments.tbptt", "--cost-hidden", "cost_hidden_features"),
    ("benchmarks.rnn", "--hidden", "hidden_features"),
    ("benchmarks.scan", "--hidden", "hidden_features"),
    ("benchmarks.attention", "--heads", "num_heads"),
    ("benchmarks.layers", "--heads", "num_heads"),
    ("benchmarks.layers", "--conv-layers", "conv_num_layers"),
    ("benchmarks.seq2seq_step", "--hiddens", "hidden_features"),
    ("experiments.bottleneck", "--fixed-hiddens", "fixed_hidden_features"),
    ("experiments.bottleneck", "--attention-hidden", "attention_hidden_features"),
    ("experiments.bottleneck", "--control-hidden", "control_hidden_features"),
    ("experiments.bottleneck", "--embed", "embed_dim"),
    ("experiments.translation", "--embed", "embed_dim"),  # its --heads and --dropout: tests/test_translation.py
    ("experiments.translation", "--hidden", "hidden_features"),
    ("experiments.translation", "--bahdanau-hidden", "bahdanau_hidden_features"),
    ("experiments.translation", "--rnn-layers", "rnn_num_layers"),
    ("experiments.translation", "--layers", "num_layers"),
  ],
)
def test_a_knob_renamed_to_the_librarys_name_is_refused_under_its_old_one(script, old, field, capsys):
  """Issue #29's renames (the scripts' RENAMED): the old flag is refused by name (tyro suggests
  today's where it finds it alike: all but seq2seq_step's --hiddens) and today's takes the value."""
  module = importlib.import_module(script)
  with pytest.raises(SystemExit):
    cli.parse(module.CONFIGS, ["smoke", old, "8"])
  assert f"Unrecognized options: {old}" in capsys.readouterr().err
  assert getattr(cli.parse(module.CONFIGS, ["smoke", "--" + field.replace("_", "-"), "8"]), field) in (8, (8,))


def test_workdir_only_train_flags_are_not_offered(capsys):
  module = importlib.import_module("experiments.bahdanau_drill")
  for flag in ("--train.keep", "--train.save-every", "--train.tensorboard"):
    with pytest.raises(SystemExit):
      cli.parse(module.CONFIGS, ["smoke", flag, "1"])


def test_results_hold_paths_relative_to_the_repository():
  inside = str(report.REPO / "results" / "bench")
  record = {"config": {"out": inside, "other": "/elsewhere"}, "argv": ["--out", inside]}
  assert report.portable(record) == {
    "config": {"out": "results/bench", "other": "/elsewhere"},
    "argv": ["--out", "results/bench"],
  }
  committed = [path.read_text() for path in (report.REPO / "results").rglob("*.json")]
  assert committed and not any(re.search(r'"/[^"]*"', text) for text in committed)  # no absolute path


def test_the_order_blind_ceiling_is_the_most_frequent_symbols_share():
  from experiments.positional_encodings import order_blind_ceiling

  assert order_blind_ceiling(1, samples=100) == 1.0  # one symbol: always the most frequent
  assert abs(order_blind_ceiling(8) - 0.324) < 0.005 and abs(order_blind_ceiling(32) - 0.220) < 0.005


def test_provenance_names_the_cpu_and_its_widest_vector_instructions(tmp_path):
  processor = "processor\t: {}\nmodel name\t: Some CPU 9000\nflags\t\t: fpu sse2 avx avx2 fma\n\n"
  (tmp_path / "cpuinfo").write_text(processor.format(0) + processor.format(1))
  assert report.cpu(tmp_path / "cpuinfo") == "Some CPU 9000 (avx2)"
  assert report.cpu(tmp_path / "absent") == (platform.processor() or "cpu unknown")  # no /proc: the platform's
  assert report.cpu() in report.provenance("experiments.x", [])["machine"]


def test_no_script_imports_the_librarys_private_checks():
  """Scripts check their configs through harness.cli's public checkers alone (issue #29)."""
  folders = (report.REPO / "experiments", report.REPO / "benchmarks")
  scripts = [path for folder in folders for path in sorted(folder.glob("*.py"))]
  private = [path.name for path in scripts if "_validate" in path.read_text()]
  assert not private, f"{private} import seqjax._validate; use harness.cli's checkers"


def test_no_experiment_imports_another():
  """Shared task code lives in seqjax.data or harness/, so each script stands alone (issue #29 item 4)."""
  importers = {}
  for path in sorted((report.REPO / "experiments").glob("*.py")):
    if path.name == "__main__.py":  # `python -m experiments all` runs every script: it imports them all
      continue
    tree = ast.parse(path.read_text())
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    found = [name for name in names if name.split(".")[0] == "experiments"]
    if found:
      importers[path.name] = found
  assert not importers, f"experiments import other experiments: {importers}"


def test_provenance_records_a_command_that_reruns_as_written():
  """An argument with spaces or quotes comes back whole from the recorded command (issue #29)."""
  import shlex

  argv = ["smoke", "--models", "LSTM, forget bias 1", "tests.test_zoo:build_indrnn", "--out", "it's here"]
  command = report.provenance("experiments.long_range", argv)["command"]
  assert shlex.split(command) == ["python", "-m", "experiments.long_range", *argv]
