"""``envs.make(name, **overrides)``: one registry for gymnax's environments, brax's (as
``brax/<name>``) and the kit's own."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable

import gymnax

from envs.core import Environment

# gymnax environments that need a data download at construction; they stay listed by gymnax but
# the kit cannot build them offline.
_NEEDS_DOWNLOAD = {"MNISTBandit-bsuite"}

BRAX_ENVS = (
    "ant",
    "fast",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")

_CUSTOM: dict[str, Callable[..., tuple[Environment, Any]]] = {}


class UnknownEnvironmentError(ValueError):
    """An environment name the registry does not know."""


def register(name: str, factory: Callable[..., tuple[Environment, Any]]) -> None:
    """Registers ``factory(**overrides) -> (env, params)`` under ``name``."""
    _CUSTOM[name] = factory


def list_envs() -> list[str]:
    """Every name ``make`` accepts."""
    gymnax_names = [n for n in gymnax.registered_envs if n not in _NEEDS_DOWNLOAD]
    return gymnax_names + [f"brax/{n}" for n in BRAX_ENVS] + sorted(_CUSTOM)


def _replace_params(name: str, params: Any, overrides: dict[str, Any]) -> Any:
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; it has: {', '.join(sorted(fields))}")
    return params.replace(**overrides)


def make(name: str, **overrides: Any) -> tuple[Environment, Any]:
    """Builds an environment and its default params, with ``overrides`` applied.

    Gymnax names take overrides of their ``EnvParams`` fields (e.g. ``max_steps_in_episode``);
    ``brax/<name>`` takes ``backend`` (one of generalized, positional, spring, mjx) and
    ``episode_length`` (alias ``max_steps_in_episode``).

    >>> env, params = make("CartPole-v1")
    >>> env, params = make("brax/inverted_pendulum", backend="spring", episode_length=500)
    """
    if name in _CUSTOM:
        return _CUSTOM[name](**overrides)
    if name.startswith("brax/") and name[5:] in BRAX_ENVS:
        from envs.brax_adapter import BraxEnv

        kwargs = dict(overrides)
        if "max_steps_in_episode" in kwargs:
            kwargs["episode_length"] = kwargs.pop("max_steps_in_episode")
        unknown = sorted(set(kwargs) - {"backend", "episode_length"})
        if unknown:
            raise ValueError(f"{name} has no option {', '.join(unknown)}; it has: backend, episode_length")
        backend = kwargs.get("backend", "positional")
        if backend not in BRAX_BACKENDS:
            raise ValueError(f"unknown brax backend {backend!r}; choose one of {', '.join(BRAX_BACKENDS)}")
        env = BraxEnv(name[5:], **kwargs)
        return env, env.default_params
    if name in gymnax.registered_envs and name not in _NEEDS_DOWNLOAD:
        from envs.gymnax_adapter import GymnaxEnv

        env = GymnaxEnv(name)
        return env, _replace_params(name, env.default_params, overrides)
    close = difflib.get_close_matches(name, list_envs(), n=4, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `jaxrl list` shows them all"
    raise UnknownEnvironmentError(f"unknown environment {name!r}{hint}")
