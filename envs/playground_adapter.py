"""``playground/<name>``: the DeepMind Control Suite of MuJoCo Playground (Zakka et al., 2025),
MuJoCo's own JAX port of dm_control on MJX.

The kit makes the DM Control Suite environments whose model files ship inside the package
(``mujoco_playground._src.dm_control_suite``: all 25 of ``playground`` 0.2). Playground's
locomotion and manipulation environments are not listed: loading one clones MuJoCo Menagerie
from GitHub for its robot models.

Playground's API is brax's: ``env.reset(rng) -> State`` and ``env.step(state, action) -> State``
with ``obs``, ``reward``, ``done`` (a float), ``metrics`` and ``info`` in the State; the dynamics
take no key (an environment that needs randomness keeps its key in ``info["rng"]``). The episode
limit (``episode_length``, 1000 control steps) and ``action_repeat`` are not the environment's:
Playground's training wrapper (brax's EpisodeWrapper) applies them, folding the time-out into
``done`` with ``info["truncation"]`` beside it, and its auto-reset (``BraxAutoResetWrapper``)
returns every ended episode to the *same cached first state* unless ``full_reset=True``. The
adapter does what the EpisodeWrapper does (``action_repeat`` steps in a ``lax.scan``, rewards
summed, the clock counting control steps) with the clock in its own state, and restarts ended
episodes with a fresh ``reset`` drawn from the protocol's key, as every environment of the kit.

Flags: ``terminated`` is Playground's ``done``, which the DM Control tasks raise only when the
simulation blew up (a NaN in ``qpos`` or ``qvel``); ``truncated`` when the clock ran out
(``steps * action_repeat >= episode_length``, as Playground counts) and the episode did not
terminate. An episode that ends on a NaN has its reward and final observation's non-finite
entries replaced by 0, so that one unstable copy cannot poison a learner's batch (Playground's
own wrappers pass the NaNs on); every other step is Playground's, bit for bit.

Actions are Playground's: continuous, in [-1, 1], one per actuator. Observations are float32
vectors.

Settings (``--env-set``, ``envs.make(..., episode_length=200)``) are the scalar fields of the
environment's Playground config, checked by the kind of their default: ``episode_length`` is
data (``PlaygroundParams``, traced like craftax's ``EnvParams``: it can be overridden per run,
vmapped or randomised); ``action_repeat`` is a static field of the params (it is a scan's
length, so a new value compiles anew); ``ctrl_dt``, ``sim_dt``, ``impl``, ``naconmax`` and
``njmax`` build the MJX model and are constructor options, as navix's are (they cannot be
randomised). ``vision`` (Cartpole's pixels, rendered by Warp) is not offered.

Resets: with the JAX backend ``envs.VectorEnv`` resets only the copies that ended
(``reset_in_batch``). The adapter's own auto-reset (a plain ``vmap`` of ``step``, and the Warp
backend) also resets only when a copy ended, in a loop (``auto_reset``): CheetahRun's reset
simulates 200 steps for the cheetah to settle, and a reset computed on every step and selected
where done ran 64 copies at 99 steps/s instead of 6,200.

Backends: Playground 0.2 defaults every environment to ``impl="warp"`` (MuJoCo Warp, called
through JAX's FFI); the kit defaults to ``impl="jax"`` (MJX in pure JAX) and offers
``impl=warp``. Warp runs on a CPU (warp-lang 1.19 compiles its kernels for it with LLVM, once per
machine, into ``~/.cache/warp``: tens of seconds for Cartpole's) and agrees with the JAX backend to
float32 rounding, but is slow there: CartpoleBalance with 64 vmapped copies steps ~6,000 times
a second with Warp against ~400,000 with JAX (2-core CPU, 2026-12; Warp is made for GPUs, not
measured here). Warp keeps a few leaves of its state once for all vmapped copies (contact
counts): the adapter's auto-reset leaves them as the step left them, as Playground's own does,
and with Warp the copies reset themselves (``envs.VectorEnv``'s batched reset writes every leaf
by copy).
"""

from __future__ import annotations

import difflib
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import spaces
from envs.suites import SUITES, SuiteEnv, float_observation

IMPLS = ("jax", "warp")
_NOT_OFFERED = ("vision",)  # pixel observations, Cartpole's only (the nested vision_config is no scalar)


def names() -> tuple[str, ...]:
    """The installed package's bundled DM Control Suite environments, the snapshot's (fastest
    first) order."""
    from mujoco_playground._src import dm_control_suite

    order = {name: i for i, name in enumerate(SUITES["playground"].snapshot)}
    found = list(dm_control_suite.ALL_ENVS)
    return tuple(sorted(found, key=lambda name: (order.get(name, len(order)), found.index(name))))


def option_defaults(name: str) -> dict[str, Any]:
    """Every setting with its default: the Playground config's scalar fields, ``impl`` the kit's."""
    from mujoco_playground._src import dm_control_suite

    config = dm_control_suite.get_default_config(name)
    out = {k: v for k, v in config.items()
           if k not in _NOT_OFFERED and isinstance(v, (bool, int, float, str))}
    out["impl"] = "jax"
    return out


def make(name: str, overrides: dict[str, Any]):
    from envs.registry import InvalidEnvSetting, check_param_value

    env_name = f"playground/{name}"
    defaults = option_defaults(name)
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(defaults), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InvalidEnvSetting(f"{env_name} has no setting {unknown[0]!r}{hint}; it has: {', '.join(sorted(defaults))}")
    settings = dict(defaults)
    for field, value in overrides.items():
        if field == "impl":
            if value not in IMPLS:
                raise InvalidEnvSetting(f"{env_name} impl must be one of {', '.join(IMPLS)}, got {value!r}")
        else:
            value = check_param_value(env_name, field, value, defaults[field])
        settings[field] = value
    for field in ("episode_length", "action_repeat", "ctrl_dt", "sim_dt"):
        if not settings[field] > 0:
            raise InvalidEnvSetting(f"{env_name} {field} must be positive, got {settings[field]!r}")
    if round(settings["ctrl_dt"] / settings["sim_dt"]) < 1:
        raise InvalidEnvSetting(f"{env_name} ctrl_dt ({settings['ctrl_dt']}) must be at least sim_dt ({settings['sim_dt']})")
    params = PlaygroundParams(episode_length=int(settings["episode_length"]), action_repeat=int(settings["action_repeat"]))
    env = PlaygroundEnv(name, **{k: v for k, v in settings.items() if k not in ("episode_length", "action_repeat")})
    return env, params


@struct.dataclass
class PlaygroundParams:
    """``episode_length``: Playground's limit in control steps, counting each repeat (data);
    ``action_repeat``: control steps per ``step`` with one action, rewards summed (static)."""

    episode_length: int = 1000
    action_repeat: int = struct.field(pytree_node=False, default=1)

    @property
    def max_steps_in_episode(self) -> Any:
        """The limit in the kit's steps (calls of ``step``), for evaluation horizons."""
        return -(-self.episode_length // self.action_repeat)


@struct.dataclass
class PlaygroundState:
    env_state: Any  # Playground's ``State`` (MJX data, obs, reward, done, metrics, info)
    time: jax.Array  # the kit's steps in this episode


class PlaygroundEnv(SuiteEnv):
    def __init__(self, name: str, **config: Any):
        from mujoco_playground._src import dm_control_suite

        self._config = {"impl": "jax", **config}
        self._env = dm_control_suite.load(name, config_overrides=self._config)
        self._obs_shape = None
        self._shared = None
        # Warp's vmapped state has leaves it keeps once for all copies, which envs.VectorEnv's
        # batched reset (a scatter into every leaf by copy) cannot take: the copies reset
        # themselves instead (``auto_reset``).
        self.reset_in_batch = self.impl == "jax"
        super().__init__(f"playground/{name}", self._env.action_size)

    @property
    def playground_env(self):
        return self._env

    @property
    def impl(self) -> str:
        return self._config["impl"]

    @property
    def default_params(self) -> PlaygroundParams:
        return PlaygroundParams()

    # External forces (``envs.adversarial``): MJX's data carries ``xfrc_applied`` from step to step,
    # and Playground's step keeps it. Offered with the JAX backend, the one tested.
    def supports_push(self) -> bool:
        return self.impl == "jax"

    def body_names(self) -> tuple[str, ...]:
        model = self._env.mj_model
        return tuple(model.body(i).name for i in range(model.nbody))

    def push(self, state: PlaygroundState, body_ids: tuple[int, ...], forces: jax.Array) -> PlaygroundState:
        """``state`` with world-frame ``forces`` [len(body_ids), 3] at those bodies' centres of
        mass for the next step (all its ``action_repeat`` control steps)."""
        data = state.env_state.data
        applied = data.xfrc_applied.at[jnp.asarray(body_ids), :3].set(forces)
        return state.replace(env_state=state.env_state.replace(data=data.replace(xfrc_applied=applied)))

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Box:
        if self._obs_shape is None:
            self._obs_shape = jax.eval_shape(lambda key: self.reset(key)[0], jax.random.key(0)).shape
        return spaces.Box(-jnp.inf, jnp.inf, self._obs_shape, jnp.float32)

    def reset(self, key: jax.Array, params: Any = None):
        env_state = self._env.reset(key)
        return float_observation(env_state.obs), PlaygroundState(env_state, jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: PlaygroundState, action: jax.Array, params: Any = None):
        params = self.default_params if params is None else params
        action = jnp.asarray(action, jnp.float32).reshape(self._env.action_size)

        def control_step(env_state, _):
            env_state = self._env.step(env_state, action)
            return env_state, env_state.reward

        stepped, rewards = jax.lax.scan(control_step, state.env_state, (), params.action_repeat)
        reward = jnp.sum(rewards, axis=0)
        stepped = stepped.replace(reward=reward)
        time = state.time + 1
        terminated = stepped.done > 0
        truncated = (time * params.action_repeat >= params.episode_length) & ~terminated
        obs = float_observation(stepped.obs)
        # a blow-up (the only termination) leaves NaNs: not for a learner to see
        obs = jnp.where(terminated & ~jnp.isfinite(obs), 0.0, obs)
        reward = jnp.where(terminated & ~jnp.isfinite(reward), 0.0, reward)
        info = {"final_observation": obs}
        obs, next_state = self.auto_reset(key, params, terminated | truncated, obs, PlaygroundState(stepped, time))
        return obs, next_state, jnp.asarray(reward, jnp.float32), terminated, truncated, info

    def auto_reset(self, key: jax.Array, params: Any, done: jax.Array, obs: jax.Array, state: Any):
        """``SuiteEnv.auto_reset``'s result, with the reset computed only when a copy ended: in a
        loop that runs while ``done``, which vmapped copies run together (one pass if any copy
        ended, none otherwise), instead of every copy resetting on every step to be selected
        where done. Leaves the Warp backend keeps once for all copies (its contact counts) stay
        the step's, as in Playground's own auto-reset. The ``deferred()`` twin does not reset
        (``envs.VectorEnv`` resets its ended copies)."""
        if self._deferred:
            return obs, state
        leaves, treedef = jax.tree.flatten(state)
        shared = [False] * len(leaves) if self.impl == "jax" else self._shared_leaves()
        own = lambda tree: [x for x, s in zip(jax.tree.leaves(tree), shared) if not s]  # noqa: E731
        typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        bits = jax.random.key_data(key) if typed else key

        def fresh(carry):
            # The key goes through ``done`` (true wherever the result is kept), so that the reset
            # depends on the loop's state: XLA would otherwise hoist it out of the loop, and run
            # it on every step.
            kept = jnp.where(carry[0], bits, jnp.zeros_like(bits))
            kept = jax.random.wrap_key_data(kept, impl=jax.random.key_impl(key)) if typed else kept
            reset_obs, reset_state = self.reset(kept, params)
            return jnp.zeros_like(carry[0]), reset_obs, own(reset_state)

        _, obs, selected = jax.lax.while_loop(lambda carry: carry[0], fresh, (done, obs, own(state)))
        selected = iter(selected)
        return obs, treedef.unflatten([x if s else next(selected) for x, s in zip(leaves, shared)])

    def _shared_leaves(self) -> list[bool]:
        """Which leaves of the state a vmapped reset does not batch: Warp's totals over all
        copies, such as its contact count."""
        if self._shared is None:
            one = jax.eval_shape(lambda key: self.reset(key)[1], jax.random.key(0))
            two = jax.eval_shape(lambda keys: jax.vmap(self.reset)(keys)[1], jax.random.split(jax.random.key(0), 2))
            self._shared = [b.shape != (2, *a.shape) for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two))]
        return self._shared
