"""The runs of an experiment, announced as each starts with one line:

    [run 3 of 24] GRU, seed 1 | 1m12s elapsed | about 10m05s left

(the time left is the mean of the runs trained so far times the runs not yet done), and the log
records raised while a run trains (seqjax.train's vanishing/exploding-gradient warnings) prefixed
with the run they belong to, printed through tqdm so they do not break a progress bar. A run read
back from a journal is counted, not timed. `started` lists this process's Runs in order, so that
`python -m experiments all` can report each experiment's reused runs.
"""

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tqdm.contrib.logging import logging_redirect_tqdm

T = TypeVar("T")

started: list["Runs"] = []


def duration(seconds: float) -> str:
  """'45s', '12m05s' or '3h07m'."""
  seconds = round(seconds)
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Runs:
  """total: the experiment's runs; at_most: total is an upper bound (an experiment that stops a
  series early, e.g. at the first distance no seed solves)."""

  def __init__(self, total: int, *, at_most: bool = False):
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
      raise ValueError(f"total must be an integer >= 1 (the experiment's runs), got {total!r}")
    self.total, self.at_most = total, at_most
    self.begun = time.perf_counter()
    self.count = 0  # runs started or read back so far
    self.reused = 0  # runs read back from a journal
    self.seconds: list[float] = []  # of each run trained
    started.append(self)

  def header(self, label: str) -> str:
    """The line announcing run number self.count: its label, the elapsed time and the time left."""
    of = f"at most {self.total}" if self.at_most else str(self.total)
    line = f"[run {self.count} of {of}] {label} | {duration(time.perf_counter() - self.begun)} elapsed"
    if self.seconds:
      left = sum(self.seconds) / len(self.seconds) * (self.total - self.count + 1)
      line += f" | {'at most ' if self.at_most else ''}about {duration(left)} left"
    return line

  def process_text(self, started: float) -> str:
    """A report's "This process: N minutes" since `started` (a perf_counter reading), naming how
    many of its runs and pilots were read back from the journal where any were."""
    text = f"This process: {(time.perf_counter() - started) / 60:.1f} minutes"
    if self.reused:
      text += f" ({self.reused} of {self.count} runs and pilots read back from the journal, not trained)"
    return text

  def run(self, model: str, seed: int, train: Callable[[], T], *, reused: bool = False) -> T:
    """train()'s result, announced as run `model`, `seed`; reused: train() reads the run back
    from a journal (announced as such, not timed)."""
    self.count += 1
    label = f"{model}, seed {seed}"
    if reused:
      self.reused += 1
      print(f"{self.header(label)} | read back from the journal", flush=True)
      return train()
    print(self.header(label), flush=True)
    begun = time.perf_counter()
    with labelled_logs(label):
      result = train()
    self.seconds.append(time.perf_counter() - begun)
    return result


@contextlib.contextmanager
def labelled_logs(label: str):
  """Inside: every log record's message starts with [label], and console logging goes through
  tqdm (a progress bar is redrawn below the message instead of being torn)."""
  factory = logging.getLogRecordFactory()
  prefix = f"[{label}] "

  def labelled(*args, **kwargs):
    record = factory(*args, **kwargs)
    record.msg = (prefix.replace("%", "%%") if record.args else prefix) + str(record.msg)
    return record

  logging.setLogRecordFactory(labelled)
  try:
    with logging_redirect_tqdm():
      yield
  finally:
    logging.setLogRecordFactory(factory)
