"""Implementation choices that depend on the backend, each justified by a committed benchmark.

    hoist the RNN input projection out of the scan   results/bench/rnn.md        (CPU: 1.14-1.52x slower hoisted)
    sequential or associative scan                    results/bench/scan.md       (CPU: associative 1.2-4x slower)
    dense or blockwise attention                      results/bench/attention.md  (CPU: equal speed at T=4096,
                                                      blockwise 1/6 of the memory; `attention.blockwise.attention`)

CPU entries were measured on the project's 2-core x86_64 machine. GPU and TPU entries follow
the expectation that wider parallel work pays there; they have not been measured yet (no
accelerator has been available to the project): run the benchmarks there and update.
"""

import jax

HOIST_INPUT_PROJECTION = {"cpu": False, "gpu": True, "tpu": True}
SCAN_MODE = {"cpu": "sequential", "gpu": "associative", "tpu": "associative"}


def hoist_input_projection() -> bool:
  return HOIST_INPUT_PROJECTION.get(jax.default_backend(), True)


def scan_mode() -> str:
  return SCAN_MODE.get(jax.default_backend(), "associative")
