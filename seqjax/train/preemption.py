"""SIGTERM and SIGINT while `fit` trains on a workdir: stop after the current step, saved.

Cloud VMs send SIGTERM before they are reclaimed, Ctrl-C sends SIGINT. Acted on at once, either
one abandons the step and the checkpoint being written (and an interrupted orbax save can leave
its threads waiting forever at exit). While fit trains, `StopRequest` takes both over: a signal
only records itself; fit finishes the step, saves it, waits for the save, restores the handlers
it replaced, and then raises what the signal would have done: `SystemExit(128 + SIGTERM)` (the
exit status of a process the signal ended) or `KeyboardInterrupt`, after logging where the run
stands. A second signal while stopping exits at once (`os._exit`), like a kill -9: the run then
resumes from its newest complete checkpoint. A signal that was ignored (SIG_IGN, as for a job
started in the background by a shell) stays ignored.
"""

import logging
import os
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
  def __init__(self):
    self.signal: int | None = None  # the signal that asked fit to stop; None while none has
    self._replaced: dict = {}  # signal -> the handler it had before `install`

  def install(self) -> None:
    """Takes SIGTERM and SIGINT over, where Python can (in the main thread only) and where they
    are not ignored. A handler set from C (getsignal gives None) cannot be restored: left alone."""
    if threading.current_thread() is not threading.main_thread():
      return
    for number in SIGNALS:
      if signal.getsignal(number) not in (signal.SIG_IGN, None):
        self._replaced[number] = signal.signal(number, self._handle)

  def restore(self) -> None:
    """Puts back the handlers `install` replaced."""
    for number, handler in self._replaced.items():
      signal.signal(number, handler)
    self._replaced = {}

  def _handle(self, number: int, frame) -> None:
    name = signal.Signals(number).name
    if self.signal is not None:
      log.error("a second %s while stopping: exiting now; the run resumes from its newest complete checkpoint", name)
      os._exit(128 + number)
    self.signal = number
    log.warning("%s: finishing this step and saving it before stopping (a second one exits at once)", name)

  def stopped(self, step: int, workdir: Path) -> BaseException:
    """What fit raises once the step and its checkpoint are done, with a log line saying so."""
    name = signal.Signals(self.signal).name
    message = f"{name}: fit stopped at step {step}, saved in {workdir}; run fit on that workdir again to resume"
    log.warning("%s", message)
    return KeyboardInterrupt(message) if self.signal == signal.SIGINT else SystemExit(128 + self.signal)
