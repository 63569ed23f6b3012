"""Shared test setup: JAX's persistent compilation cache, so programs compiled by one test (or one
CLI subprocess) are reused by the next."""

import gc
import os
from pathlib import Path

CACHE_DIR = Path(os.environ.get("JAXRL_TEST_CACHE", Path(__file__).resolve().parent.parent / ".jax_cache"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE_DIR))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jaxrl  # noqa: E402,F401  (first: applies the kit's XLA settings before any backend starts)
import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Each test module's compiled programs are dropped when it ends. Otherwise a worker keeps every
    program of every module it ran (6 GB a worker by the end of the suite, measured in CI), and
    the last, largest compiles (Craftax's) happen under that pressure; one crashed there once.
    The persistent cache above still spares recompiling what a later module shares."""
    yield
    jax.clear_caches()
    gc.collect()
