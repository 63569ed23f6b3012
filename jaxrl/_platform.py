"""Process-wide XLA settings the kit needs, applied before JAX starts a backend.

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
import warnings

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
