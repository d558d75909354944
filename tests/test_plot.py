"""python -m harness.plot: a fit workdir's metrics.jsonl drawn against steps and training seconds."""

import json

import pytest

from harness import plot
from seqjax.train import fit
from tests import tiny_lm


def write_metrics(folder, records, tail=""):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
  return folder


def test_a_fit_workdir_is_drawn_to_a_png_beside_its_metrics(tmp_path, capsys):
  config = tiny_lm.config(steps=4, log_every=1, eval_every=2)
  fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, config, workdir=tmp_path, evaluate=lambda m: {"bleu": 2})
  out = plot.main([str(tmp_path)])
  assert out == tmp_path / "metrics.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert f"wrote {out}" in capsys.readouterr().out
  names = plot.metric_names(plot.read_records(tmp_path))
  assert names[0] == "loss" and "bleu" in names and not set(names) & set(plot.BOOKKEEPING)


def test_several_runs_go_to_one_named_png(tmp_path):
  a = write_metrics(
    tmp_path / "a", [{"step": 1, "loss": 2.0, "train_s": 0.1}, {"step": 2, "loss": 1.0, "train_s": 0.2}]
  )
  b = write_metrics(tmp_path / "b", [{"step": 1, "loss": 3.0, "train_s": 0.1, "accuracy": 0.5}])
  out = plot.main([str(a), str(b), "--out", str(tmp_path / "figs" / "both.png")])
  assert out.is_file()
  with pytest.raises(SystemExit):
    plot.main([str(a), str(b)])  # several runs: --out required


def test_seconds_add_up_over_the_calls_of_a_resumed_run():
  records = [{"step": 1, "train_s": 1.0}, {"step": 2, "train_s": 2.0}, {"step": 3, "train_s": 0.5}]
  assert plot.seconds(records) == [1.0, 2.0, 2.5]
  assert plot.seconds([*records, {"step": 4}]) == [None] * 4  # not fit's records: no time axis


def test_a_diverged_value_is_a_gap_not_a_point():
  steps, _, values = plot.curves([{"step": 1, "loss": 1.0}, {"step": 2, "loss": float("inf")}], "loss")
  assert steps == [1, 2] and values[0] == 1.0 and values[1] != values[1]  # NaN


def test_a_torn_last_line_is_left_out_and_a_bad_line_before_it_is_an_error(tmp_path, caplog):
  torn = write_metrics(tmp_path / "torn", [{"step": 1, "loss": 1.0}], tail='{"step": 2, "lo')
  assert plot.read_records(torn) == [{"step": 1, "loss": 1.0}]
  assert "dropping the torn last line" in caplog.text
  bad = write_metrics(tmp_path / "bad", [], tail='{"step": 1, "lo\n{"step": 2, "loss": 1.0}\n')
  with pytest.raises(ValueError, match=r"metrics.jsonl line 1 is not valid JSON"):
    plot.read_records(bad)
  wrong = write_metrics(tmp_path / "wrong", [{"loss": 1.0}])
  with pytest.raises(ValueError, match=r"metrics.jsonl line 1 is not a metrics record"):
    plot.read_records(wrong)


@pytest.mark.parametrize(
  "setup,args,message",
  [
    (lambda tmp: tmp, [], "must be a fit workdir holding metrics.jsonl"),
    (lambda tmp: write_metrics(tmp / "empty", []), [], "holds no records yet"),
    (lambda tmp: write_metrics(tmp / "run", [{"step": 1, "loss": 1.0}]), ["--out", "x.jpg"], "must name a .png"),
  ],
)
def test_bad_input_is_refused_by_name(tmp_path, capsys, setup, args, message):
  with pytest.raises(SystemExit):
    plot.main([str(setup(tmp_path)), *args])
  assert message in capsys.readouterr().err
