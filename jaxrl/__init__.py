"""jaxrl: reinforcement learning where environment, agent and training loop compile to one XLA
program. See README.md for the architecture."""

from jaxrl import algorithms
from jaxrl.algorithms import ConfigError, get_algorithm, list_algorithms
from jaxrl.gae import gae
from jaxrl.runner import TrainResult, train

__version__ = "0.1.0"

__all__ = ["ConfigError", "TrainResult", "algorithms", "gae", "get_algorithm", "list_algorithms", "train", "__version__"]
