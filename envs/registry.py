"""``envs.make(name, **overrides)``: one registry for gymnax's environments, brax's (as
``brax/<name>``), the suites behind optional extras (``craftax/<name>``, ``xminigrid/<name>``,
``navix/<name>``, ``jumanji/<name>``, ``playground/<name>``: ``envs.suites``) and the kit's own."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable

import numpy as np

from envs import suites
from envs.core import Environment, gymnax_names

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
_CUSTOM_OPTIONS: dict[str, Callable[[], dict[str, Any]]] = {}


class UnknownEnvironmentError(ValueError):
    """An environment name the registry does not know, or one of a suite whose optional extra
    is not installed (the message names the extra)."""


class InvalidEnvSetting(ValueError):
    """An environment option that does not exist or has a value of the wrong kind."""


def register(name: str, factory: Callable[..., tuple[Environment, Any]],
             options: Callable[[], dict[str, Any]] | None = None) -> None:
    """Registers ``factory(**overrides) -> (env, params)`` under ``name``; ``options() -> {name:
    default}`` lists its options when they are parameters (then they can be checked, parsed from
    text and randomised like gymnax's, ``jaxrl.core.environments``)."""
    _CUSTOM[name] = factory
    if options is not None:
        _CUSTOM_OPTIONS[name] = options


def list_envs() -> list[str]:
    """Every name ``make`` accepts, the suites' included whether or not their extras are
    installed (``envs.suites.installed`` tells)."""
    suite_names = [f"{s.prefix}/{n}" for s in suites.SUITES.values() for n in suites.names(s)]
    return gymnax_names() + [f"brax/{n}" for n in BRAX_ENVS] + suite_names + sorted(_CUSTOM)


def _suite_adapter(name: str):
    """The adapter module and inner name of a suite environment; ``UnknownEnvironmentError``
    for a name the suite lacks or a suite that is not installed."""
    suite = suites.suite_of(name)
    try:
        return suites.adapter(suite), suites.inner_name(name, suite)
    except suites.MissingExtraError as error:
        raise UnknownEnvironmentError(f"{name}: {error}") from None


def check_param_value(env_name: str, field: str, value: Any, default: Any) -> Any:
    """``value`` for the parameter ``field`` whose default is ``default``, checked to be of the
    same kind (a bool, an integer, a number, or an array of the default's shape)."""
    if isinstance(default, (bool, np.bool_)):
        ok = isinstance(value, (bool, np.bool_))
        kind = "true or false"
    elif isinstance(default, (int, np.integer)):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        kind = "an integer"
    elif isinstance(default, (float, np.floating)):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        value = float(value) if ok else value
        kind = "a number"
    else:
        ok = not isinstance(value, str) and np.shape(value) == np.shape(default)
        kind = f"an array of shape {np.shape(default)}"
    if not ok:
        raise InvalidEnvSetting(f"{env_name} parameter {field} must be {kind}, got {value!r}")
    return value


def replace_params(env_name: str, params: Any, overrides: dict[str, Any]) -> Any:
    """``params`` with ``overrides`` applied, each name and value checked."""
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(fields), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InvalidEnvSetting(f"{env_name} has no parameter {unknown[0]!r}{hint}; it has: {', '.join(sorted(fields))}")
    checked = {k: check_param_value(env_name, k, v, getattr(params, k)) for k, v in overrides.items()}
    return params.replace(**checked)


def _make_brax(name: str, overrides: dict[str, Any]) -> tuple[Environment, Any]:
    kwargs = dict(overrides)
    if "max_steps_in_episode" in kwargs:
        kwargs["episode_length"] = kwargs.pop("max_steps_in_episode")
    unknown = sorted(set(kwargs) - {"backend", "episode_length"})
    if unknown:
        raise InvalidEnvSetting(f"{name} has no option {unknown[0]!r}; it has: backend, episode_length")
    backend = kwargs.get("backend", "positional")
    if backend not in BRAX_BACKENDS:
        raise InvalidEnvSetting(f"unknown brax backend {backend!r}; choose one of {', '.join(BRAX_BACKENDS)}")
    length = kwargs.get("episode_length", 1000)
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise InvalidEnvSetting(f"{name} episode_length must be a positive integer, got {length!r}")
    from envs.brax_adapter import BraxEnv

    env = BraxEnv(name[5:], **kwargs)
    return env, env.default_params


def option_defaults(name: str) -> dict[str, Any] | None:
    """Every option ``make(name, ...)`` takes, with its default value (whose type is the option's);
    ``None`` for an environment registered with its own factory and no option list. ``UnknownEnvironmentError`` for a
    name the registry does not know. Builds nothing expensive (brax's systems are not loaded)."""
    if name in _CUSTOM:
        return _CUSTOM_OPTIONS[name]() if name in _CUSTOM_OPTIONS else None
    if suites.suite_of(name) is not None:
        module, inner = _suite_adapter(name)
        return module.option_defaults(inner)
    if name.startswith("brax/") and name[5:] in BRAX_ENVS:
        return {"backend": "positional", "episode_length": 1000, "max_steps_in_episode": 1000}
    if name in gymnax_names():
        import gymnax

        params = gymnax.make(name)[1]
        return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    close = difflib.get_close_matches(name, list_envs(), n=4, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `jaxrl list` shows them all"
    raise UnknownEnvironmentError(f"unknown environment {name!r}{hint}")


def make(name: str, **overrides: Any) -> tuple[Environment, Any]:
    """Builds an environment and its default params, with ``overrides`` applied.

    Gymnax names take overrides of their ``EnvParams`` fields (e.g. ``max_steps_in_episode``),
    each of the field's kind; ``brax/<name>`` takes ``backend`` (one of generalized, positional,
    spring, mjx) and ``episode_length`` (alias ``max_steps_in_episode``). Craftax takes
    overrides of its ``EnvParams``; xminigrid, navix and jumanji take their constructors'
    options (``max_steps``, ``time_limit``...). A name or value that does not fit raises
    ``InvalidEnvSetting``; a suite whose extra is missing, ``UnknownEnvironmentError``.

    >>> env, params = make("CartPole-v1")
    >>> env, params = make("brax/inverted_pendulum", backend="spring", episode_length=500)
    >>> env, params = make("navix/Navix-Empty-5x5-v0", max_steps=50)  # needs the navix extra
    """
    if name in _CUSTOM:
        return _CUSTOM[name](**overrides)
    if suites.suite_of(name) is not None:
        module, inner = _suite_adapter(name)
        return module.make(inner, overrides)
    if name.startswith("brax/") and name[5:] in BRAX_ENVS:
        return _make_brax(name, overrides)
    option_defaults(name)  # unknown names raise here, with suggestions
    from envs.gymnax_adapter import GymnaxEnv

    env = GymnaxEnv(name)
    return env, replace_params(name, env.default_params, overrides)
