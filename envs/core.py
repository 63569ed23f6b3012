"""The kit's one functional environment protocol: gymnax 1.0's.

An environment is a stateless object with pure methods

    reset(key, params) -> (obs, state)
    step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)

that auto-resets: when ``terminated | truncated`` the returned ``obs``/``state`` already belong to
the next episode, and ``info["final_observation"]`` holds the observation the episode ended on, so
that a truncated transition can be bootstrapped from it while a terminated one is not.
Environments with levels also have ``reset_to_level(key, level, params)`` and
``sample_level(key, params)`` (``envs.levels``). Parameters are data: a pytree passed to every
call, which may differ per copy of a vectorised environment and per run.

Every environment in the kit (gymnax's, brax's through an adapter, our own) subclasses gymnax's
``Environment`` so that the protocol has exactly one definition.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import jax.numpy as jnp


class _ImportedOnUse(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports it."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if sys.modules.get(self.__name__) is self:  # pop: two threads may both get here
            sys.modules.pop(self.__name__, None)
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def _defer_rendering_imports() -> None:
    # gymnax imports every environment when it is imported, and its Pong and Catch import
    # seaborn (with scipy.stats and pandas) and matplotlib.pyplot at module level, only to draw
    # frames: about 2 s of a 3 s import on a 2-core CPU. They load on first use instead.
    for name in ("seaborn", "matplotlib.pyplot"):
        if name not in sys.modules:
            sys.modules[name] = _ImportedOnUse(name)


_defer_rendering_imports()

from gymnax.environments import spaces  # noqa: E402
from gymnax.environments.environment import Environment, EnvParams, EnvState  # noqa: E402

__all__ = [
    "Environment",
    "EnvParams",
    "EnvState",
    "spaces",
    "is_discrete",
    "action_size",
    "observation_shape",
    "gymnax_names",
]

# gymnax environments that need a data download at construction; they stay listed by gymnax but
# the kit cannot build them offline.
_NEEDS_DOWNLOAD = {"MNISTBandit-bsuite"}


def gymnax_names() -> list[str]:
    import gymnax

    return [n for n in gymnax.registered_envs if n not in _NEEDS_DOWNLOAD]


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
