"""Policy objectives: what an on-policy agent (PPO and the agents built on it) minimises for its
policy, as functions it is given by name, not branches inside it.

An objective is ``objective(terms, hparams, progress) -> (loss, metrics)``: ``terms`` holds, for a
minibatch, the log-probabilities of the taken actions under the current policy and under the
rollout policy, the advantages, and both policies' distributions (for a KL or an entropy);
``hparams`` is the agent's hyperparameter pytree (``hparams.objective_params`` holds a learned
objective's weights), ``progress`` the training progress n/N. A new objective is a new function::

    @register_objective("spo")
    def simple_policy_optimisation(terms, hparams, progress):
        # Xie et al. 2024: a quadratic penalty on the ratio's distance from 1 instead of a clip
        ratio, adv = terms.ratio, terms.advantage
        return -(ratio * adv - jnp.abs(adv) / (2 * hparams.clip_eps) * (ratio - 1) ** 2).mean(), {}

    jaxrl.train("ppo", "CartPole-v1", overrides={"objective": "spo"})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxrl.components.action_dists import Distribution
from jaxrl.components.losses import clipped_surrogate_loss, mdpo_policy_loss, mdpo_step_size
from jaxrl.core.contract import ConfigError, Progress, canonical_name


@dataclass(frozen=True)
class PolicyTerms:
    """One minibatch of what a policy objective is a function of (all [B])."""

    log_prob: jax.Array  # log pi_theta(a | s) of the taken actions, under the policy being learned
    old_log_prob: jax.Array  # log pi_old(a | s): the rollout policy's
    advantage: jax.Array  # normalised when the agent normalises advantages
    dist: Distribution  # pi_theta(. | s)
    old_dist: Distribution  # pi_old(. | s)

    @property
    def log_ratio(self) -> jax.Array:
        return self.log_prob - self.old_log_prob

    @property
    def ratio(self) -> jax.Array:
        """r = pi_theta(a | s) / pi_old(a | s)."""
        return jnp.exp(self.log_ratio)

    def kl(self) -> jax.Array:
        """KL(pi_theta(. | s) || pi_old(. | s)) per state, in closed form."""
        return self.dist.kl_divergence(self.old_dist)


Objective = Callable[[PolicyTerms, Any, Progress], tuple[jax.Array, dict[str, jax.Array]]]
_OBJECTIVES: dict[str, Objective] = {}


def register_objective(name: str) -> Callable[[Objective], Objective]:
    """Decorator: makes ``objective`` available as ``objective=name`` to PPO's agent family."""

    def add(objective: Objective) -> Objective:
        _OBJECTIVES[canonical_name(name)] = objective
        return objective

    return add


def _register_drifts() -> None:
    # The drift objectives (lpo, ta-lpo, dpo...) register themselves on import; their module
    # imports this one, so it is imported when a name is looked up, not at the top.
    import jaxrl.components.drifts  # noqa: F401


def objective_names() -> list[str]:
    _register_drifts()
    return sorted(_OBJECTIVES)


def get_objective(name: str) -> Objective:
    name = canonical_name(name)
    if name not in _OBJECTIVES:
        _register_drifts()
    if name not in _OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(objective_names())} (or register one)")
    return _OBJECTIVES[name]


@register_objective("clip")
def clip(terms: PolicyTerms, hparams: Any, progress: Progress) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped surrogate (Schulman et al., 2017, eq. 7), ``hparams.clip_eps``."""
    return clipped_surrogate_loss(terms.log_prob, terms.old_log_prob, terms.advantage, hparams.clip_eps), {}


@register_objective("mdpo")
def mdpo(terms: PolicyTerms, hparams: Any, progress: Progress) -> tuple[jax.Array, dict[str, jax.Array]]:
    """On-policy MDPO (Tomar et al., 2022, eq. 11): the unclipped surrogate minus
    KL(pi_theta || pi_old) / t_k, with t_k = 1 - k / K annealed over the run."""
    kl = terms.kl()
    step_size = mdpo_step_size(progress.step, progress.num_updates)
    loss = mdpo_policy_loss(terms.log_prob, terms.old_log_prob, terms.advantage, kl, step_size)
    return loss, {"kl": kl.mean(), "mdpo_step_size": step_size}


@register_objective("pg")
def policy_gradient(terms: PolicyTerms, hparams: Any, progress: Progress) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The plain policy gradient, -E[log pi_theta(a | s) A] (A2C: Mnih et al., 2016, Algorithm S3):
    no ratio, no clip, so its gradient is the score function times the advantage at any step."""
    return -(terms.log_prob * terms.advantage).mean(), {}
