"""Process-wide settings the kit needs, applied before JAX starts a backend: two XLA CPU flags
(below) and JAX's persistent compilation cache.

The compilation cache is on by default, in ``$XDG_CACHE_HOME/jaxrl/jax`` (``~/.cache/jaxrl/jax``):
a configuration run before skips XLA's compilation, most of a short run's start-up on a CPU.
``JAXRL_COMPILATION_CACHE=0`` (or ``jaxrl train --no-compile-cache``) turns it off, any other value
of it names the directory, and a ``JAX_COMPILATION_CACHE_DIR`` set by the user is left alone.

XLA's CPU backend in jaxlib 0.10 routes small dot products through XNNPACK, and with nested loops
(rollout scan inside an epoch scan inside the update loop) executions intermittently deadlock: every
thread idles and the execution never completes (seen here in about one run in ten on a 2-core
machine; JAX issue #25861 reports the same symptom). Disabling XNNPACK removed the hang in our
stress test (30 of 30 runs, against a hang within 6 runs for every other setting tried).

A second deadlock remains with XNNPACK off: the orthogonal initialiser's QR under ``vmap`` is a
batched LAPACK ``geqrf`` custom call that splits its batch over XLA's intra-op thread pool and
blocks until the pieces finish (``jax::ParallelBatchMap``). When the thunk executor runs two such
QRs at once (actor and critic layers are independent), they occupy both pool threads of a 2-core
machine and wait for each other forever (gdb: both ``tf_XLAEigen`` threads in
``BlockingCounter::Wait`` under ``lapack_sgeqrf_ffi``). Seen in about one ``train`` call in ten;
a minimal reproducer (vmapped ``orthogonal()`` of six 64x64 matrices, jitted, called in a loop)
hangs within seconds. XLA's concurrency-optimised scheduler is what lets those QRs overlap; with
it off the reproducer ran 2,000 calls and ``train`` 200 calls without a hang, and the numbers are
bit-identical (it changes the order of independent operations, not what they compute).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

_FLAGS = ("--xla_cpu_use_xnnpack=false", "--xla_cpu_enable_concurrency_optimized_scheduler=false")
_FLAG = " ".join(_FLAGS)


def configure_xla() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    # A flag the user set explicitly (either value) is left as they chose.
    missing = [f for f in _FLAGS if f.split("=")[0] not in flags]
    if not missing:
        return
    os.environ["XLA_FLAGS"] = " ".join([flags, *missing]).strip()
    try:
        from jax._src import xla_bridge

        started = bool(xla_bridge._backends)
    except (ImportError, AttributeError):
        started = False
    if started:
        warnings.warn(
            "jaxrl was imported after JAX started its CPU backend, so XLA_FLAGS=" + _FLAG
            + " could not take effect; import jaxrl (or envs) first or set it yourself.",
            RuntimeWarning,
            stacklevel=3,
        )


configure_xla()


# Programs that compile in under this many seconds are not worth a disk entry (evaluation's tiny
# episode programs); a PPO chunk takes several seconds on a 2-core CPU.
_CACHE_MIN_COMPILE_SECONDS = 0.3


def compilation_cache_dir() -> str | None:
    """Where the persistent compilation cache lives, or None when it is off."""
    choice = os.environ.get("JAXRL_COMPILATION_CACHE", "")
    if choice.strip().lower() in ("0", "false", "off", "no"):
        return None
    if choice:
        return choice
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "jaxrl" / "jax")


def configure_compilation_cache() -> None:
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # the user's own choice
    directory = compilation_cache_dir()
    if directory is None:
        return
    settings = {
        "jax_compilation_cache_dir": directory,
        "jax_persistent_cache_min_compile_time_secs": _CACHE_MIN_COMPILE_SECONDS,
    }
    if "jax" in sys.modules:
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)
    else:
        for name, value in settings.items():
            os.environ.setdefault(name.upper(), str(value))


def disable_compilation_cache() -> None:
    """Turns the persistent compilation cache off for this process (before anything compiles)."""
    import jax

    jax.config.update("jax_enable_compilation_cache", False)


configure_compilation_cache()
