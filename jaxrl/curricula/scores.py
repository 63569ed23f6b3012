"""Level scores from one rollout on each level (Jiang et al., 2021, "Prioritized Level Replay",
section 3; "Replay-Guided Adversarial Environment Design", section 4), computed from what an
on-policy agent's ``update`` reports per environment (``metrics["per_env"]``, [T, num_envs]):
each environment played one level for the whole rollout (auto-replay), so a level's score is a
mean over the rollout's steps.

* ``pvl``, positive value loss: mean_t max(A_t, 0) with A_t the GAE advantages;
* ``l1``, L1 value loss: mean_t |A_t|;
* ``maxmc``: mean_t (R_max - V(s_t)), R_max the best return ever seen on the level (this
  rollout's episodes, and for a replayed level the best kept in the buffer);

SFL's learnability is scored from its own longer rollouts (``jaxrl.curricula.sfl``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SCORES = ("pvl", "l1", "maxmc")


def best_returns(per_env: dict[str, jax.Array]) -> jax.Array:
    """[num_envs] the best return of an episode that ended in the rollout (-inf if none did)."""
    done = per_env["done"]
    return jnp.where(done, per_env["episode_return"], -jnp.inf).max(axis=0)


def level_scores(kind: str, per_env: dict[str, jax.Array], prior_best: jax.Array) -> jax.Array:
    """[num_envs] score of each environment's level; ``prior_best`` [num_envs] is the best
    return already known for it (MaxMC; 0 for new levels of a non-negative-reward env)."""
    advantage = per_env["advantage"]
    if kind == "pvl":
        return jnp.maximum(advantage, 0.0).mean(axis=0)
    if kind == "l1":
        return jnp.abs(advantage).mean(axis=0)
    if kind == "maxmc":
        best = jnp.maximum(best_returns(per_env), prior_best)
        return (best[None] - per_env["value"]).mean(axis=0)
    raise ValueError(f"unknown score {kind!r}; choose one of {', '.join(SCORES)}")


def paired_regret(protagonist: dict[str, jax.Array], antagonist: dict[str, jax.Array]) -> jax.Array:
    """PAIRED's regret estimate per environment (Dennis et al., 2020, section 3): the
    antagonist's best episode return on the level minus the protagonist's mean episode return
    there (a policy with no finished episode counts as return 0)."""
    done = protagonist["done"].astype(jnp.float32)
    mean = (protagonist["episode_return"] * done).sum(axis=0) / jnp.maximum(done.sum(axis=0), 1.0)
    best = best_returns(antagonist)
    return jnp.where(jnp.isfinite(best), best, 0.0) - mean
