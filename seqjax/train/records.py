"""What a run leaves in its workdir: config.json, metrics.jsonl (one JSON object per logged step),
TensorBoard events (optional), checkpoints/."""

import json
import shutil
from pathlib import Path


def prepare_workdir(workdir: str | Path, config: dict, *, overwrite: bool = False) -> Path:
  """Creates workdir with config.json, or checks that the one there holds the same config (a run
  to resume). A workdir of a different config is refused unless overwrite, which empties it."""
  workdir = Path(workdir)
  saved = workdir / "config.json"
  text = json.dumps(config, indent=2, sort_keys=True, default=str) + "\n"
  if saved.exists() and saved.read_text() != text:
    if not overwrite:
      raise ValueError(
        f"workdir {workdir} holds a run of a different config (see {saved}); pass overwrite=True "
        "(--overwrite) to replace it, or choose another workdir"
      )
    shutil.rmtree(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  saved.write_text(text)
  return workdir


class MetricsLog:
  """Appends {"step": ..., **metrics} lines to metrics.jsonl; on resume from step s, drops lines
  logged after s (their steps are re-run), so the file reads as one uninterrupted run."""

  def __init__(self, workdir: Path, *, resume_step: int, tensorboard: bool):
    self.path = workdir / "metrics.jsonl"
    kept = []
    if self.path.exists():
      kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= resume_step]
    self.path.write_text("".join(line + "\n" for line in kept))
    self.writer = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # optional dependency, no TensorFlow needed

      self.writer = SummaryWriter(str(workdir / "tensorboard"))

  def write(self, step: int, metrics: dict) -> None:
    with self.path.open("a") as f:
      f.write(json.dumps({"step": step, **metrics}) + "\n")
    if self.writer is not None:
      for name, value in metrics.items():
        if isinstance(value, int | float):
          self.writer.add_scalar(name, value, step)

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
