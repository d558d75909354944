"""`fit`'s console output (TrainConfig.progress): where a workdir's metrics and TensorBoard
events go, and a progress bar of the steps done out of config.steps with the latest logged loss,
gradient norm, tokens/s and evaluation numbers. The bar's rate and ETA count only the steps after
the compiling first step of a call: while that step compiles a transient "compiling" bar stands
in for it, then the bar starts its clock."""

from pathlib import Path

from tqdm import tqdm


def announce(workdir: Path, tensorboard: bool) -> None:
  """Prints where fit writes a workdir's metrics (and TensorBoard events) and how to view them."""
  where = f"fit: metrics in {workdir / 'metrics.jsonl'}"
  if tensorboard:
    events = workdir / "tensorboard"
    where += f", TensorBoard events in {events} (to view: pip install tensorboard; tensorboard --logdir {events})"
  tqdm.write(where)


def postfix(latest: dict, evaluation: dict) -> str:
  """'loss 0.5123 | grad 0.91 | 9,310 tok/s | valid_bpc 2.31 (step 250)' from the latest training
  record and the latest evaluation (its numbers and the step it ran at); absent entries left out."""
  parts = []
  if "loss" in latest:
    parts.append(f"loss {latest['loss']:.4g}")
  if "grad_norm" in latest:
    parts.append(f"grad {latest['grad_norm']:.3g}")
  if latest.get("tokens_per_s") is not None:
    parts.append(f"{latest['tokens_per_s']:,.0f} tok/s")
  if evaluation:
    step = evaluation["step"]
    parts += [f"{name} {value:.4g}" for name, value in evaluation["numbers"].items()]
    parts[-1] += f" (step {step})"
  return " | ".join(parts)


class Progress:
  """The bar of one fit call that trains steps start+1 .. end of `total`; `enabled` False shows nothing."""

  def __init__(self, total: int, start: int, end: int, *, enabled: bool):
    self.total = total
    self.enabled = enabled and start < end
    self.latest, self.evaluation = {}, {}
    self.compiling = True
    self.bar = tqdm(total=total, initial=start, desc="compiling", unit="step", leave=False, disable=not self.enabled)

  def logged(self, step: int, record: dict, evaluation: dict) -> None:
    """A logged training record; evaluation: the numbers evaluate returned at this step ({} when it did not run)."""
    self.latest = record
    if evaluation:
      self.evaluation = {"step": step, "numbers": evaluation}
    self.bar.set_postfix_str(postfix(self.latest, self.evaluation), refresh=False)

  def advance(self) -> None:
    """One step done. After the first (compiling) one the bar is replaced by one whose clock starts now."""
    if self.compiling:
      done = self.bar.n + 1
      self.bar.close()
      self.bar = tqdm(total=self.total, initial=done, unit="step", disable=not self.enabled)
      self.bar.set_postfix_str(postfix(self.latest, self.evaluation))
      self.compiling = False
    else:
      self.bar.update(1)

  def close(self) -> None:
    self.bar.close()
