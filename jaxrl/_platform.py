"""Process-wide XLA settings the kit needs, applied before JAX starts a backend.

XLA's CPU backend in jaxlib 0.10 routes small dot products through XNNPACK, and with nested loops
(rollout scan inside an epoch scan inside the update loop) executions intermittently deadlock: every
thread idles and the execution never completes (seen here in about one run in ten on a 2-core
machine; JAX issue #25861 reports the same symptom). Disabling XNNPACK removed the hang in our
stress test (30 of 30 runs, against a hang within 6 runs for every other setting tried).
"""

from __future__ import annotations

import os
import warnings

_FLAG = "--xla_cpu_use_xnnpack=false"


def configure_xla() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_xnnpack" in flags:
        return  # the user chose explicitly
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}".strip()
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
