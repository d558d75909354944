"""Strict JAX for every test: no implicit dtype or rank promotion, 8 CPU devices.

Compiled programs are cached on disk across the suite (JAX's persistent compilation cache): many
tests build the same train step again, and recompiling it dominated their time."""

import os
import tempfile

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
COMPILE_CACHE = os.path.join(tempfile.gettempdir(), f"seqjax-test-compile-cache-{os.getuid()}")

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_compilation_cache_dir", COMPILE_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
