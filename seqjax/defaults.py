"""Implementation choices that depend on the backend, each justified by a committed benchmark.

    hoist the RNN input projection out of the scan   results/bench/rnn.md        (CPU: slower hoisted, every case)
    lax.scan unroll factor of RNN                     results/bench/rnn.md        (CPU: 1. Unroll 4 is faster for
                                                      some cells and lengths and slower for others, at twice
                                                      the compile time)
    sequential or associative scan                    results/bench/scan.md       (CPU: associative slower, every T)
    dense or blockwise attention, and its block size  results/bench/attention.md  (CPU: blockwise with blocks of
                                                      512 is faster than dense and than blocks of 128 at every
                                                      T measured, causal fwd+bwd)

The measured ratios are quoted in docs/performance.md, next to the machine they ran on.
CPU entries were measured on the project's 2-core x86_64 machines. GPU and TPU entries follow
the expectation that wider parallel work pays there; they have not been measured yet (no
accelerator has been available to the project): run the benchmarks there and update.
"""

import jax

HOIST_INPUT_PROJECTION = {"cpu": False, "gpu": True, "tpu": True}
SCAN_UNROLL = {"cpu": 1, "gpu": 1, "tpu": 1}
SCAN_MODE = {"cpu": "sequential", "gpu": "associative", "tpu": "associative"}
ATTENTION_BLOCK = {"cpu": 512, "gpu": 128, "tpu": 128}


def hoist_input_projection() -> bool:
  return HOIST_INPUT_PROJECTION.get(jax.default_backend(), True)


def scan_unroll() -> int:
  """`lax.scan` unroll factor of `RNN` when the caller names none."""
  return SCAN_UNROLL.get(jax.default_backend(), 1)


def scan_mode() -> str:
  return SCAN_MODE.get(jax.default_backend(), "associative")


def attention_block() -> int:
  """Query and key block size of blockwise attention when the caller names none."""
  return ATTENTION_BLOCK.get(jax.default_backend(), 128)
