"""One process of a 2-process jax.distributed run on localhost (started by test_train.py).

argv: coordinator port, process id. Prints the logged losses as JSON on its last line. XLA_FLAGS
from the environment (the test's fast-compile flags) are kept; 2 CPU devices are added.
"""

import json
import os
import sys

port, process_id = sys.argv[1], sys.argv[2]
os.environ.update(
  JAX_PLATFORMS="cpu",
  XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2",  # after the test's flags
  JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
  JAX_NUM_PROCESSES="2",
  JAX_PROCESS_ID=process_id,
)

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from seqjax.train import distributed, fit  # noqa: E402
from tests import tiny_lm  # noqa: E402

distributed.initialize(True)  # before any array exists
result = fit(tiny_lm.make_model(), tiny_lm.loss_fn, tiny_lm.batch_fn, tiny_lm.config(steps=4, distributed=True))
assert jax.process_count() == 2 and jax.device_count() == 4, (jax.process_count(), jax.device_count())
print(json.dumps([record["loss"] for record in result.history]))
