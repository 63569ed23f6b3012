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


RELEASE_ABOVE = 3 << 30  # bytes resident


def _resident_bytes() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return RELEASE_ABOVE + 1  # unknown: release


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """A worker keeps every compiled program of every module it ran (6 GB a worker by the end of
    the suite, measured in CI), and the last, largest compiles (Craftax's) then happen under that
    pressure; one crashed there once. So when a module ends with the worker above 3 GiB resident,
    its compiled programs are dropped (the persistent cache above spares most recompiles).
    Dropping them after every module instead held workers to 3.6 GB but cost 8 of the suite's
    41 minutes in recompiles."""
    yield
    if _resident_bytes() > RELEASE_ABOVE:
        jax.clear_caches()
        gc.collect()
