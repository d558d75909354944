"""Strict JAX for every test: no implicit dtype or rank promotion, 8 CPU devices.

The suite's time is XLA compiling on the CPU (tiny shapes run in microseconds, each new op or
shape compiles in tens of milliseconds): the flags below halve a compile (measured 2026-12-03:
tests/test_seq2seq.py and test_parallel.py 433 s -> 254 s) at no cost the tiny shapes notice, and
compiled programs are cached on disk across the suite (JAX's persistent compilation cache): many
tests build the same train step again, and the two pytest-xdist workers and the tests' subprocesses
run many of the same ops eagerly (model initializers above all), so even the one-op programs are
cached (read back about 2.5x faster than compiled, measured 2026-12-03 on this loaded machine).
Flags and cache go through the environment, so a test's subprocess (which inherits it) computes the
same numbers as the test and shares its cache."""

import os
import tempfile

FAST_COMPILE = (
  "--xla_force_host_platform_device_count=8"
  " --xla_cpu_use_fusion_emitters=false"  # the older fused-loop emitter: compiles about 1.6x faster
  " --xla_backend_optimization_level=0"  # no LLVM optimization passes
)
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " " + FAST_COMPILE
os.environ.setdefault("JAX_PLATFORMS", "cpu")
COMPILE_CACHE = os.path.join(tempfile.gettempdir(), f"seqjax-test-compile-cache-{os.getuid()}")
os.environ["JAX_COMPILATION_CACHE_DIR"] = COMPILE_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
