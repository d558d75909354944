"""A fit run in its own process, for the kill -9 test (test_workdir_faults.py).

argv: workdir, steps. Saves a checkpoint every step, so a save is nearly always in flight."""

import sys

from seqjax.train import fit
from tests import tiny_lm

workdir, steps = sys.argv[1], int(sys.argv[2])
fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(steps=steps, save_every=1), workdir=workdir)
