"""benchmarks.charlm_speed: its smoke run times every charlm architecture in one process and writes
one row per model, each number positive and finite, the LSTM the peer at exactly 1; bad settings
are refused before any work, by name."""

import json
import math

import pytest

from benchmarks import charlm_speed
from experiments import charlm
from harness import cli

NUMBERS = ("width", "parameters", "compile_s", "median_s", "min_s", "tokens_per_s", "flops_per_token",
           "fraction_of_peak", "vs_lstm", "vs_lstm_per_round")  # fmt: skip


def test_smoke_writes_one_row_per_architecture(tmp_path):
  charlm_speed.main(["smoke", "--out", str(tmp_path)])
  data = json.loads((tmp_path / "charlm_speed.json").read_text())
  rows = data["rows"]
  assert [row["model"] for row in rows] == list(charlm.ARCHITECTURES)
  for row in rows:
    for key in NUMBERS:
      assert isinstance(row[key], int | float) and math.isfinite(row[key]) and row[key] > 0, (row["model"], key)
    assert len(row["times_s"]) == len(row["cpu_s"]) == data["config"]["rounds"] == 1
    assert all(math.isfinite(t) and t > 0 for t in row["times_s"]), row["model"]
    assert row["tokens_per_s"] == pytest.approx(data["tokens_per_step"] / row["median_s"])
  (lstm,) = [row for row in rows if row["model"] == charlm_speed.PEER]
  assert lstm["vs_lstm"] == 1.0 and lstm["vs_lstm_per_round"] == 1.0
  peaks = data["matmul_peak_flops"]
  assert len(peaks) == 2 and all(math.isfinite(p) and p > 0 for p in peaks)
  markdown = (tmp_path / "charlm_speed.md").read_text()
  table = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line][1:]
  assert [line.split(" | ")[0].removeprefix("| ") for line in table] == list(charlm.ARCHITECTURES)
  lstm_line = next(line for line in table if line.startswith(f"| {charlm_speed.PEER} |"))
  assert "| 1.00x | 1.00x |" in lstm_line


@pytest.mark.parametrize(
  "args,message",
  [
    (["--rounds", "0"], "rounds must be an integer >= 1, got 0"),
    (["--vocab", "1"], "vocab must be an integer >= 2, got 1"),
    (["--params", "10"], "params must be an integer >= 1000, got 10"),
    (["--out", "/proc/no/such"], "out must be a writable folder"),
  ],
)
def test_bad_settings_are_refused_by_name(args, message):
  with pytest.raises(ValueError, match=message):
    cli.parse(charlm_speed.CONFIGS, ["smoke", *args])
