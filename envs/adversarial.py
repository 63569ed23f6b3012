"""Two-player environments for robust adversarial RL: a protagonist and an adversary that
perturbs its environment, with zero-sum rewards (RARL, Pinto et al., 2017; QARL, Reddi et al.,
ICLR 2024, "Robust Adversarial Reinforcement Learning via Bounded Rationality Curricula").

``TwoPlayer(env, kind, ...)`` turns any continuous environment of the kit into one whose action is
the two players' actions side by side, ``[protagonist (d_p), adversary (d_a)]``, so that the kit's
stack (episode statistics, action rescaling, vectorisation, replay) carries it unchanged. The
reward is the protagonist's; ``info["adversary_reward"]`` is its negative. Two kinds of
perturbation, both bounded by ``strength``:

* ``"force"``: the adversary pushes named bodies with an external force (MuJoCo's
  ``xfrc_applied``, a world-frame force at each body's centre of mass), ``strength`` newtons per
  component on the chosen ``axes`` (the paper's adversary). The inner environment must offer
  ``body_names()`` and ``push(state, body_ids, forces)``: the Playground DM Control Suite (MJX,
  ``impl=jax``), brax with ``backend=mjx``, and the kit's ``point_mass_wind``.
* ``"action"``: the adversary's action is added to the protagonist's, scaled by ``strength`` times
  half the width of the action range, and the sum clipped to the range (a perturbation of the
  actuators). Every continuous environment has it: gymnax's Pendulum, brax on any backend.

``strength`` is data (``TwoPlayerParams``): a robustness sweep over perturbation magnitudes is a
``vmap`` over parameters, not a recompile per magnitude.

``TemperatureContext(env)`` is QARL's: it draws the adversary's temperature tau for every episode
from ``Gamma(concentration, rate)`` (or takes ``fixed`` when ``use_fixed``) and appends tau to the
observation as its last entry, where both players read it. The distribution is data: the
parameters' for a reset, then the state's, which the training algorithm moves with its curriculum
(``set_temperature_distribution``). The parameters' defaults (tau = 0, fixed) are the paper's
evaluation setting.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, is_discrete, spaces
from envs.wrappers import Wrapper

KINDS = ("auto", "action", "force")
AXES = {"x": 0, "y": 1, "z": 2}
_TAU_STREAM = 0x7A0  # folded into the reset key: tau never changes the inner env's random stream

# The paper's adversaries (its reference code's bodies, axes and bounds) where the kit has the task;
# other force-capable environments push their first body on x and z with 1 N.
FORCE_DEFAULTS: dict[str, tuple[tuple[str, ...], str, float]] = {
    "playground/CartpoleBalance": (("pole_1",), "xz", 2.0),
    "playground/CartpoleBalanceSparse": (("pole_1",), "xz", 2.0),
    "playground/CartpoleSwingup": (("pole_1",), "xz", 2.0),
    "playground/CartpoleSwingupSparse": (("pole_1",), "xz", 2.0),
    "playground/CheetahRun": (("torso", "bfoot", "ffoot"), "xz", 1.0),
    "playground/HopperHop": (("foot",), "xz", 1.0),
    "playground/HopperStand": (("foot",), "xz", 1.0),
    "playground/WalkerStand": (("right_foot", "left_foot"), "xz", 1.0),
    "playground/WalkerWalk": (("right_foot", "left_foot"), "xz", 1.0),
    "playground/WalkerRun": (("right_foot", "left_foot"), "xz", 1.0),
    "playground/PendulumSwingup": (("pole",), "xz", 1.0),
    "playground/AcrobotSwingup": (("upper_arm",), "xz", 1.0),
    "playground/AcrobotSwingupSparse": (("upper_arm",), "xz", 1.0),
    "playground/ReacherEasy": (("arm",), "xy", 0.1),
    "playground/ReacherHard": (("arm",), "xy", 0.1),
    "playground/BallInCup": (("ball",), "xz", 0.005),
    "brax/hopper": (("foot",), "xz", 1.0),
    "brax/inverted_pendulum": (("pole",), "xz", 1.0),
    "brax/halfcheetah": (("torso", "bfoot", "ffoot"), "xz", 1.0),
    "brax/walker2d": (("foot", "foot_left"), "xz", 1.0),
    "point_mass_wind": (("mass",), "x", 2.0),
}
ACTION_STRENGTH = 0.3  # the default actuator perturbation: 30 % of half the action range


def can_push(env: Environment) -> bool:
    """Whether ``env`` takes an external force (``push``) in its present configuration."""
    # A wrapper (parameters drawn per episode, for one) keeps the inner state in its own: the
    # force would not reach it.
    return not isinstance(env, Wrapper) and bool(getattr(env, "supports_push", lambda: False)())


@struct.dataclass
class TwoPlayerParams:
    env: Any  # the inner environment's parameters
    strength: Any = 1.0  # the perturbation's bound (newtons for a force, a fraction of the range for actions)

    def __getattr__(self, name: str) -> Any:
        # Read-only view of the inner parameters (``max_steps_in_episode`` for evaluation horizons).
        if name.startswith("__") or name in ("env", "strength"):
            raise AttributeError(name)
        return getattr(self.env, name)


class TwoPlayer(Wrapper):
    """See the module docstring. ``kind``: "action", "force" or "auto" (force where the
    environment can be pushed, else action); ``bodies`` (names) and ``axes`` (a subset of
    "xyz") for a force; ``strength`` the default bound. ``ValueError`` for a discrete
    environment, an unknown kind, body or axis, or a force on an environment without one."""

    reset_transparent = True  # the key and the inner reset pass through unchanged (envs.VectorEnv)

    def __init__(self, env: Environment, kind: str = "auto", strength: float | None = None,
                 bodies: tuple[str, ...] | None = None, axes: str | None = None, name: str | None = None):
        super().__init__(env)
        params = env.default_params
        space = env.action_space(params)
        if is_discrete(space):
            raise ValueError(f"{env.name} has discrete actions; an adversary perturbs continuous ones")
        if kind not in KINDS:
            raise ValueError(f"perturbation must be one of {', '.join(KINDS)}, got {kind!r}")
        name = name or env.name
        if kind == "auto":
            kind = "force" if can_push(env) else "action"
        if kind == "force" and not can_push(env):
            raise ValueError(f"{name} takes no external force (Playground's DM Control Suite with impl=jax, "
                             "brax with backend=mjx and point_mass_wind do); use perturbation=action")
        self.kind = kind
        self._low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape)
        self._high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape)
        self.protagonist_dim = int(self._low.size)
        if kind == "force":
            default_bodies, default_axes, default_strength = FORCE_DEFAULTS.get(name, ((env.body_names()[1],), "xz", 1.0))
            bodies = tuple(bodies or default_bodies)
            axes = axes or default_axes
            known = list(env.body_names())
            missing = [b for b in bodies if b not in known]
            if missing:
                raise ValueError(f"{name} has no body {missing[0]!r}; it has: {', '.join(known[1:])}")
            if not axes or any(a not in AXES for a in axes) or len(set(axes)) != len(axes):
                raise ValueError(f"perturbation_axes must be distinct letters of xyz, got {axes!r}")
            self.body_ids = tuple(known.index(b) for b in bodies)
            self.axes = tuple(AXES[a] for a in axes)
            self.adversary_dim = len(bodies) * len(axes)
        else:
            default_strength = ACTION_STRENGTH
            self.body_ids, self.axes = (), ()
            self.adversary_dim = self.protagonist_dim
        self.strength = float(default_strength if strength is None else strength)
        if not self.strength >= 0:
            raise ValueError(f"perturbation_strength must be >= 0, got {strength!r}")

    @property
    def default_params(self) -> TwoPlayerParams:
        return TwoPlayerParams(self.env.default_params, self.strength)

    def action_space(self, params=None):
        low = jnp.concatenate([self._low.reshape(-1), -jnp.ones(self.adversary_dim)])
        high = jnp.concatenate([self._high.reshape(-1), jnp.ones(self.adversary_dim)])
        return spaces.Box(low=low, high=high, shape=(self.protagonist_dim + self.adversary_dim,), dtype=jnp.float32)

    def split(self, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(protagonist's action in the environment's range, adversary's in [-1, 1])."""
        protagonist = action[..., : self.protagonist_dim]
        return protagonist, jnp.clip(action[..., self.protagonist_dim :], -1.0, 1.0)

    def forces(self, adversary: jax.Array, strength: jax.Array) -> jax.Array:
        """The adversary's action as world-frame forces [bodies, 3] of at most ``strength``."""
        per_body = (strength * adversary).reshape(len(self.body_ids), len(self.axes))
        return jnp.zeros((len(self.body_ids), 3), jnp.float32).at[:, jnp.asarray(self.axes)].set(per_body)

    def reset(self, key, params=None):
        params = self.default_params if params is None else params
        return self.env.reset(key, params.env)

    def reset_to_level(self, key, level, params=None):
        params = self.default_params if params is None else params
        return self.env.reset_to_level(key, level, params.env)

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        protagonist, adversary = self.split(action)
        protagonist = protagonist.reshape(self._low.shape)
        if self.kind == "force":
            state = self.env.push(state, self.body_ids, self.forces(adversary, params.strength))
            applied = protagonist
        else:
            half_range = 0.5 * (self._high - self._low)
            perturbed = protagonist + params.strength * half_range * adversary.reshape(self._low.shape)
            applied = jnp.clip(perturbed, self._low, self._high)
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, applied, params.env)
        info = dict(info, adversary_reward=-reward)
        return obs, state, reward, terminated, truncated, info

    def observation_space(self, params=None):
        return self.env.observation_space(None if params is None else params.env)


@struct.dataclass
class TemperatureParams:
    env: Any  # the inner (two-player) environment's parameters
    concentration: Any = 1.0  # Gamma(concentration, rate) when not use_fixed
    rate: Any = 1000.0
    fixed: Any = 0.0
    use_fixed: Any = True  # the defaults (tau = 0) are the paper's evaluation setting

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("env", "concentration", "rate", "fixed", "use_fixed"):
            raise AttributeError(name)
        return getattr(self.env, name)


@struct.dataclass
class TemperatureState:
    env_state: Any
    temperature: jax.Array  # this episode's tau
    # the distribution the next episode's tau is drawn from (TemperatureParams' fields), in the
    # state so that a run's curriculum can move it: the parameters are shared by every run of a
    # program (jaxrl.driver.runner), a curriculum's state is not
    concentration: jax.Array
    rate: jax.Array
    fixed: jax.Array
    use_fixed: jax.Array


DISTRIBUTION = ("concentration", "rate", "fixed", "use_fixed")


def set_temperature_distribution(env_state: Any, **fields: Any) -> Any:
    """``env_state`` (of any wrapper stack over a ``TemperatureContext``, batched or not) with the
    distribution of the next episodes' tau replaced: ``concentration``, ``rate``, ``fixed``,
    ``use_fixed``, each broadcast to every copy."""
    def replace(node):
        if not isinstance(node, TemperatureState):
            return node
        shape = node.temperature.shape
        return node.replace(**{k: jnp.broadcast_to(jnp.asarray(v, getattr(node, k).dtype), shape) for k, v in fields.items()})

    return jax.tree.map(replace, env_state, is_leaf=lambda node: isinstance(node, TemperatureState))


class TemperatureContext(Wrapper):
    """QARL's per-episode adversary temperature, drawn at every reset and appended to the
    observation (see the module docstring). A reset draws from the parameters' distribution, an
    episode that follows another from the one in the state (``set_temperature_distribution``)."""

    @property
    def default_params(self) -> TemperatureParams:
        return TemperatureParams(self.env.default_params)

    @staticmethod
    def draw(key: jax.Array, source: Any) -> jax.Array:
        drawn = jax.random.gamma(jax.random.fold_in(key, _TAU_STREAM), jnp.asarray(source.concentration, jnp.float32))
        return jnp.where(source.use_fixed, jnp.asarray(source.fixed, jnp.float32), drawn / source.rate)

    @staticmethod
    def with_temperature(obs: jax.Array, temperature: jax.Array) -> jax.Array:
        return jnp.concatenate([obs, temperature[None].astype(obs.dtype)], axis=-1)

    def reset(self, key, params=None):
        params = self.default_params if params is None else params
        obs, state = self.env.reset(key, params.env)
        temperature = self.draw(key, params)
        distribution = {k: jnp.asarray(getattr(params, k), jnp.float32 if k != "use_fixed" else bool) for k in DISTRIBUTION}
        return self.with_temperature(obs, temperature), TemperatureState(state, temperature, **distribution)

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action, params.env)
        done = terminated | truncated
        # The inner environment reset itself from this key where done; the next episode's tau too.
        temperature = jnp.where(done, self.draw(key, state), state.temperature)
        info = dict(info, final_observation=self.with_temperature(info["final_observation"], state.temperature),
                    temperature=state.temperature)
        next_state = state.replace(env_state=env_state, temperature=temperature)
        return self.with_temperature(obs, temperature), next_state, reward, terminated, truncated, info

    def observation_space(self, params=None):
        space = self.env.observation_space(None if params is None else params.env)
        return spaces.Box(low=-jnp.inf, high=jnp.inf, shape=(space.shape[0] + 1,), dtype=jnp.float32)
