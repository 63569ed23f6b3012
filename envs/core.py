"""The kit's one functional environment protocol: gymnax 1.0's.

An environment is a stateless object with pure methods

    reset(key, params) -> (obs, state)
    step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)

that auto-resets: when ``terminated | truncated`` the returned ``obs``/``state`` already belong to
the next episode, and ``info["final_observation"]`` holds the observation the episode ended on, so
that a truncated transition can be bootstrapped from it while a terminated one is not.

Every environment in the kit (gymnax's, brax's through an adapter, our own) subclasses gymnax's
``Environment`` so that the protocol has exactly one definition.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.environment import Environment, EnvParams, EnvState

__all__ = [
    "Environment",
    "EnvParams",
    "EnvState",
    "spaces",
    "is_discrete",
    "action_size",
    "observation_shape",
]


def is_discrete(space: Any) -> bool:
    """True for a ``Discrete`` action space, False for a ``Box``."""
    if isinstance(space, spaces.Discrete):
        return True
    if isinstance(space, spaces.Box):
        return False
    raise TypeError(f"unsupported action space {type(space).__name__}")


def action_size(space: Any) -> int:
    """Number of discrete actions, or the dimension of a continuous action."""
    if is_discrete(space):
        return int(space.n)
    return int(jnp.prod(jnp.asarray(space.shape))) if space.shape else 1


def observation_shape(env: Environment, params: Any) -> tuple[int, ...]:
    """Shape of one (unbatched) observation."""
    return tuple(env.observation_space(params).shape)
