"""Algorithms register themselves on import; ``get_algorithm(name)`` looks them up."""

from jaxrl.algorithms import dqn, dsac_t, mdpo_off, ppo, pqn, sac, td3  # noqa: F401  (register "dqn", "dsac-t", "mdpo", "mdpo-off", "ppo", "pqn", "sac", "td3")
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
