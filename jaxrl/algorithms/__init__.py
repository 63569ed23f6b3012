"""Algorithms register themselves on import; ``get_algorithm(name)`` looks them up."""

from jaxrl.algorithms import ppo  # noqa: F401  (registers "ppo")
from jaxrl.algorithms.base import (
    Agent,
    Algorithm,
    ConfigError,
    apply_overrides,
    get_algorithm,
    list_algorithms,
    register,
)

__all__ = ["Agent", "Algorithm", "ConfigError", "apply_overrides", "get_algorithm", "list_algorithms", "register"]
