"""A fit run in its own process, for the tests that kill, signal or restore one
(test_workdir_faults.py, test_preemption.py).

argv: workdir, steps, then optionally save_every (default 1: a save is nearly always in flight),
seconds the batch_fn call of each step from step 3 on waits (default 0; a slow step 3 can be
signalled once step 2 is logged) and stop_after (default none; 0 restores the run without
training). Prints the step the model has reached. Ctrl-C is the terminal's default here (a
KeyboardInterrupt) even when the tests were started in the background, which leaves SIGINT ignored
in every process they start (and fit keeps an ignored signal ignored)."""

import signal
import sys
import time

from seqjax.train import fit
from tests import tiny_lm

workdir, steps = sys.argv[1], int(sys.argv[2])
save_every, delay = (int(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 3 else (1, 0.0)
stop_after = int(sys.argv[5]) if len(sys.argv) > 5 else None
signal.signal(signal.SIGINT, signal.default_int_handler)


def batch_fn(step, rows):
  if step >= 2:  # (0-based) steps 1 and 2 run at full speed
    time.sleep(delay)
  return tiny_lm.batch_fn(step, rows)


config = tiny_lm.config(steps=steps, save_every=save_every)
result = fit(tiny_lm.make_model(), tiny_lm.loss_fn, batch_fn, config, workdir=workdir, stop_after=stop_after)
print(f"step {result.step}")
