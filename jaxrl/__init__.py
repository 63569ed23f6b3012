"""jaxrl: reinforcement learning where environment, agent and training loop compile to one XLA
program. See README.md for the architecture."""

from jaxrl import _platform  # noqa: F401  (must run before JAX starts a backend)

from jaxrl import algorithms
from jaxrl.algorithms import ConfigError, get_algorithm, list_algorithms
from jaxrl.gae import gae
from jaxrl.runner import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "SweepResult",
    "TrainResult",
    "algorithms",
    "evaluate",
    "gae",
    "get_algorithm",
    "list_algorithms",
    "load_policy",
    "sweep",
    "train",
    "train_run",
    "__version__",
]

# Imported on first use: they pull in Orbax, which `import jaxrl` should not pay for.
_LAZY = {"load_policy": "jaxrl.evaluation", "evaluate": "jaxrl.evaluation", "train_run": "jaxrl.session"}
# Sweeps pull in pandas; their module is ``jaxrl.sweeps`` so the function can be ``jaxrl.sweep``.
_LAZY.update(sweep="jaxrl.sweeps", SweepResult="jaxrl.sweeps")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxrl' has no attribute {name!r}")
