"""jaxrl: reinforcement learning where environment, agent and training loop compile to one XLA
program. See README.md for the architecture: the pure layer (``jaxrl.core``: ``make_train``), the
pieces it is built from (``jaxrl.components``, ``jaxrl.algorithms``), the host driver
(``jaxrl.driver``: ``train``, checkpoints, resume), sweeps (``jaxrl.sweeps``), meta-training by
evolution (``jaxrl.meta``: ``meta_train``, ``load_objective``, ``load_optimizer``) and analysis
(``jaxrl.analysis``: evaluation, statistics, plots)."""

from jaxrl import _platform  # noqa: F401  (must run before JAX starts a backend)

from jaxrl import algorithms  # noqa: F401  (registers the built-in algorithms' names)
from jaxrl.core.contract import ConfigError, get_algorithm, list_algorithms, register

__version__ = "0.2.0"

__all__ = [
    "ConfigError",
    "SweepResult",
    "Train",
    "TrainResult",
    "algorithms",
    "evaluate",
    "gae",
    "get_algorithm",
    "list_algorithms",
    "load_objective",
    "load_optimizer",
    "load_policy",
    "make_train",
    "meta_train",
    "register",
    "register_objective",
    "register_optimizer",
    "register_targets",
    "sweep",
    "train",
    "train_run",
    "__version__",
]

# Imported on first use, so that `import jaxrl` stays cheap: each pulls in what it needs (Orbax,
# pandas, matplotlib, an algorithm's dependencies) only when it is called.
_LAZY = {
    "make_train": "jaxrl.core.train",
    "Train": "jaxrl.core.train",
    "train": "jaxrl.driver.training",
    "TrainResult": "jaxrl.driver.training",
    "train_run": "jaxrl.driver.run",
    "load_policy": "jaxrl.analysis.evaluation",
    "evaluate": "jaxrl.analysis.evaluation",
    "sweep": "jaxrl.sweeps.run",
    "meta_train": "jaxrl.meta.run",
    "load_objective": "jaxrl.meta.run",
    "load_optimizer": "jaxrl.meta.run",
    "SweepResult": "jaxrl.sweeps.result",
    "gae": "jaxrl.components.gae",
    "register_objective": "jaxrl.components.objectives",
    "register_optimizer": "jaxrl.components.optim",
    "register_targets": "jaxrl.components.targets",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxrl' has no attribute {name!r}")
