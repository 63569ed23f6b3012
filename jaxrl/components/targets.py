"""Value targets: how an on-policy agent turns a rollout into advantages (for its policy) and
value targets (for its critic), as functions it is given by name. GAE is the default; a learned
update rule (LPG's) would be another ``targets`` function whose weights are hyperparameters.

``targets(traj, value, next_value, hparams, progress) -> (advantages, value_targets)``, all
[num_steps, num_envs]: ``traj`` is the rollout (``jaxrl.components.rollout.Transition``: rewards,
termination and episode-end flags), ``value`` the critic's values of the observations the
transitions started from, ``next_value`` those of the (pre-reset) observations they reached.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from jaxrl.components.gae import gae as generalized_advantages
from jaxrl.components.rollout import Transition
from jaxrl.core.contract import ConfigError, Progress

Targets = Callable[[Transition, jax.Array, jax.Array, Any, Progress], tuple[jax.Array, jax.Array]]
_TARGETS: dict[str, Targets] = {}


def register_targets(name: str) -> Callable[[Targets], Targets]:
    """Decorator: makes ``targets`` available as ``targets=name`` to PPO's agent family."""

    def add(targets: Targets) -> Targets:
        _TARGETS[name] = targets
        return targets

    return add


def targets_names() -> list[str]:
    return sorted(_TARGETS)


def get_targets(name: str) -> Targets:
    if name not in _TARGETS:
        raise ConfigError(f"unknown targets {name!r}; choose one of {', '.join(targets_names())} (or register some)")
    return _TARGETS[name]


@register_targets("gae")
def gae(traj: Transition, value: jax.Array, next_value: jax.Array, hparams: Any, progress: Progress) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation with ``hparams.gamma`` and ``hparams.gae_lambda``;
    truncated episodes bootstrapped, terminated ones not (``jaxrl.components.gae``)."""
    return generalized_advantages(traj.reward, value, next_value, traj.terminated, traj.done, hparams.gamma, hparams.gae_lambda)
