"""Evaluating trained policies and loading them for use, from a run directory's checkpoint.

Evaluation runs the deterministic policy (the mode of the action distribution: greedy for
discrete actions, the mean for Gaussian ones) of every seed of a run for ``episodes`` episodes,
all in one compiled program: the episodes are the ``num_envs`` axis of the kit's vectorised env
stack, the seeds a ``vmap`` over the policy parameters, and a ``while_loop`` steps until every
episode has ended once. The stack is the training one without reward normalisation; the policy
applies the observation-normaliser statistics saved with it, frozen, as a deployed agent would.

>>> report = evaluate("runs/cartpole", episodes=100)  # doctest: +SKIP
>>> act = load_policy("runs/cartpole")                 # doctest: +SKIP
>>> action = act(obs, jax.random.key(0))               # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.analysis import stats
from jaxrl.components.rollout import reset_memory
from jaxrl.core.contract import ConfigError
from jaxrl.driver.run import LoadedRun, load_run
from jaxrl.driver.runner import run_keys

DEFAULT_MAX_STEPS = 100_000
# Folded into each run's key so evaluation episodes never reuse a training random stream.
_EVAL_STREAM = 0x0E7A1

# Environments gymnax's Visualizer can draw; the classic-control ones go through gymnasium's
# pygame renderer, the others through matplotlib alone.
_CLASSIC_CONTROL = {"Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0"}
_MATPLOTLIB_DRAWN = {
    "Catch-bsuite",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
    "Pong-misc",
    "PointRobot-misc",
    "MetaMaze-misc",
    "FourRooms-misc",
}

Act = Callable[[Any, jax.Array, jax.Array], jax.Array]  # act(params, obs, key) -> action


def load_policy(
    run_dir: str | Path, seed_index: int = 0, *, deterministic: bool = True, step: int | None = None
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The policy of one seed of a run, from its newest checkpoint (or ``step``), as a jitted
    ``act(obs, key) -> action``. Observations are raw env observations: the run's observation
    normaliser statistics are applied inside. ``obs`` may carry leading batch axes.

    >>> act = load_policy("runs/cartpole")                        # doctest: +SKIP
    >>> act(jnp.zeros((8, 4)), jax.random.key(0)).shape           # doctest: +SKIP
    (8,)
    """
    run = load_run(run_dir, step)
    params = run.policy_params(seed_index)
    agent_act = run.train.act
    # Parameters are an argument, not constants baked into the program: the same numerics as
    # the training-time policy, and no recompilation per loaded run of the same shape.
    if run.train.initial_memory is not None:
        # A policy with memory (a recurrent one; a streaming agent's episode clock):
        # act(obs, key, memory) -> (action, memory), from act.initial_memory(batch), zeroed by
        # the caller where an episode starts.
        jitted = jax.jit(lambda params, obs, key, memory: agent_act(params, obs, key, deterministic, memory))
        act = functools.partial(jitted, params)
        act.initial_memory = run.train.initial_memory
        return act
    jitted = jax.jit(lambda params, obs, key: agent_act(params, obs, key, deterministic))
    return functools.partial(jitted, params)


def episode_program(env: Any, env_params: Any, act: Act, num_episodes: int, max_steps: int,
                    initial_memory: Callable | None = None, levels: Any = None) -> Callable:
    """``program(params, keys) -> (returns, lengths, finished)``, each ``[runs, num_episodes]``:
    one episode per env copy for each run (leading axis of ``params`` and ``keys``), stepped until
    all have ended or ``max_steps`` steps (an unfinished episode reports its partial return).
    ``levels`` (leaves [num_episodes, ...]): episode i is played on level i."""
    one_run = episodes(env, act, num_episodes, max_steps, initial_memory)
    return jax.jit(jax.vmap(lambda params, key: one_run(params, key, env_params, levels)))


def recurrent_act(train: Any, deterministic: bool = True) -> tuple[Callable, Callable | None]:
    """``(act, initial_memory)`` for ``episodes`` from a ``Train``: ``act(params, obs, key)``, or
    for a recurrent agent ``act(params, obs, key, memory) -> (action, memory)``."""
    if train.initial_memory is None:
        return (lambda p, obs, key: train.act(p, obs, key, deterministic)), None
    return (lambda p, obs, key, memory: train.act(p, obs, key, deterministic, memory)), train.initial_memory


def episodes(env: Any, act: Act, num_episodes: int, max_steps: int, initial_memory: Callable | None = None,
             info_stat: Callable[[dict], jax.Array] | None = None) -> Callable:
    """``episodes(params, key, env_params, levels=None) -> (returns, lengths, finished)``
    [num_episodes] of one policy, pure (a meta-learner's greedy-evaluation fitness calls it inside
    its program). With ``initial_memory`` the policy is recurrent: ``act(params, obs, key, memory)
    -> (action, memory)``, its memory zeroed when an episode ends. With ``levels`` (leaves
    [num_episodes, ...]) every episode starts with ``reset_to_level`` on its own level. With
    ``info_stat`` (the step's ``info`` -> [num_episodes] numbers, e.g. Craftax's achievements
    unlocked) its value at each episode's last step is a fourth output (0 where none ended)."""
    vec_env = envs.make_vector(env, num_episodes)

    def one_run(params: Any, key: jax.Array, env_params: Any, levels: Any = None):
        env_params = envs.tile_params(env_params, num_episodes)
        reset_key, key = jax.random.split(key)
        if levels is None:
            obs, env_state = vec_env.reset(reset_key, env_params)
        else:
            obs, env_state = vec_env.reset_to_level(reset_key, levels, env_params)
        memory = None if initial_memory is None else initial_memory(num_episodes)
        zeros = jnp.zeros(num_episodes, jnp.float32)
        lengths = jnp.zeros(num_episodes, jnp.int32)
        finished = jnp.zeros(num_episodes, bool)

        def running(carry):
            *_, finished, t = carry
            return (~finished.all()) & (t < max_steps)

        def step(carry):
            (obs, memory), env_state, key, partial, returns, lengths, stats, finished, t = carry
            key, act_key, env_key = jax.random.split(key, 3)
            if initial_memory is None:
                action = act(params, obs, act_key)
            else:
                action, memory = act(params, obs, act_key, memory)
            obs, env_state, reward, terminated, truncated, info = vec_env.step(env_key, env_state, action, env_params)
            if initial_memory is not None:
                memory = reset_memory(memory, terminated | truncated)
            # Auto-reset starts new episodes in finished copies; only each copy's first counts.
            partial = partial + jnp.where(finished, 0.0, reward)
            ended = (terminated | truncated) & ~finished
            returns = jnp.where(ended, partial, returns)
            lengths = jnp.where(ended, t + 1, lengths)
            if info_stat is not None:
                stats = jnp.where(ended, info_stat(info), stats)
            return (obs, memory), env_state, key, partial, returns, lengths, stats, finished | ended, t + 1

        carry = ((obs, memory), env_state, key, zeros, zeros, lengths, zeros, finished, jnp.asarray(0, jnp.int32))
        _, _, _, partial, returns, lengths, stats, finished, t = jax.lax.while_loop(running, step, carry)
        outputs = jnp.where(finished, returns, partial), jnp.where(finished, lengths, t), finished
        return outputs if info_stat is None else (*outputs, stats)

    return one_run


def eval_keys(seed: int, num_runs: int) -> jax.Array:
    """One evaluation key per run, apart from every key the run trained with."""
    return jax.vmap(lambda k: jax.random.fold_in(k, _EVAL_STREAM))(run_keys(seed, np.arange(num_runs)))


@dataclass
class EvalReport:
    algorithm: str
    env_name: str
    env_overrides: dict[str, Any]
    checkpoint_env_steps: int
    eval_seed: int
    max_steps: int
    returns: np.ndarray  # [seeds, episodes]
    lengths: np.ndarray  # [seeds, episodes]
    finished: np.ndarray  # [seeds, episodes]

    @property
    def episodes(self) -> int:
        return int(self.returns.shape[1])

    @property
    def per_seed_mean_returns(self) -> np.ndarray:
        return self.returns.mean(axis=1)

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    @functools.cached_property
    def ci95(self) -> tuple[float, float]:
        return stats.nested_bootstrap_ci(self.returns, 0.95)

    def to_json(self) -> dict[str, Any]:
        """The content of ``eval.json``."""
        return {
            "algorithm": self.algorithm,
            "env": self.env_name,
            "env_overrides": self.env_overrides,
            "checkpoint_env_steps": self.checkpoint_env_steps,
            "policy": "deterministic",
            "episodes": self.episodes,
            "num_seeds": int(self.returns.shape[0]),
            "eval_seed": self.eval_seed,
            "per_seed_mean_return": [float(r) for r in self.per_seed_mean_returns],
            "mean_return": self.mean_return,
            "ci95": list(self.ci95),
            "ci_method": f"two-level percentile bootstrap (seeds, then episodes), {stats.NESTED_BOOTSTRAP_RESAMPLES} resamples",
            "mean_episode_length": float(self.lengths.mean()),
            "unfinished_episodes": int((~self.finished).sum()),
            "max_steps": self.max_steps,
        }


def evaluate_loaded(run: LoadedRun, episodes: int = 100, *, seed: int = 0, max_steps: int | None = None,
                    policy_params: Any = None) -> EvalReport:
    """``evaluate`` for a run already loaded (or built in memory, e.g. in tests); ``policy_params``
    (leading seed axis) replace the run's own (RARL's with its adversary switched on)."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    max_steps = DEFAULT_MAX_STEPS if max_steps is None else max_steps
    if max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
    act, initial_memory = recurrent_act(run.train)
    program = episode_program(run.train.env, run.train.default_env_params, act, episodes, max_steps, initial_memory)
    params = run.policy_params() if policy_params is None else policy_params
    returns, lengths, finished = jax.device_get(program(params, eval_keys(seed, len(run.seeds))))
    return EvalReport(
        algorithm=run.algorithm.name,
        env_name=run.env_name,
        env_overrides=run.env_overrides,
        checkpoint_env_steps=run.step,
        eval_seed=seed,
        max_steps=max_steps,
        returns=np.asarray(returns),
        lengths=np.asarray(lengths),
        finished=np.asarray(finished),
    )


def evaluate(run_dir: str | Path, episodes: int = 100, *, seed: int = 0, max_steps: int | None = None) -> EvalReport:
    """Runs ``episodes`` episodes of each seed's deterministic policy from the run's newest
    checkpoint. ``report.mean_return`` and ``report.ci95`` summarise them."""
    return evaluate_loaded(load_run(run_dir), episodes, seed=seed, max_steps=max_steps)


def _renderable_env(env_name: str, env_overrides: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(env, env_params, the gymnax environment inside) when gymnax can draw ``env_name``;
    ``ConfigError`` naming what is missing otherwise."""
    from jaxrl.core.environments import make_env

    env, env_params = make_env(env_name, env_overrides)
    inner = getattr(env, "_env", None)  # GymnaxEnv keeps the gymnax environment it adapts here
    if inner is None or env_name not in _CLASSIC_CONTROL | _MATPLOTLIB_DRAWN:
        drawable = ", ".join(sorted(_CLASSIC_CONTROL | _MATPLOTLIB_DRAWN))
        raise ConfigError(f"{env_name} cannot be rendered; gymnax draws only {drawable}")
    if env_name in _CLASSIC_CONTROL:
        missing = [m for m in ("gymnasium", "pygame") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"rendering {env_name} needs {' and '.join(missing)} (gymnax draws classic control with "
                "gymnasium's pygame renderer): pip install 'gymnasium[classic-control]'"
            )
    return env, env_params, inner


def check_renderable(run: LoadedRun) -> None:
    """Raises ``ConfigError`` unless ``render_loaded`` can draw the run's environment, so a
    command can refuse before doing other work."""
    _renderable_env(run.env_name, run.env_overrides)


def render_loaded(
    run: LoadedRun,
    path: str | Path | None = None,
    *,
    seed_index: int = 0,
    seed: int = 0,
    max_steps: int | None = None,
) -> Path:
    """``render_episode`` for a run already loaded."""
    from jaxrl.analysis import plotting  # noqa: F401 - selects matplotlib's Agg backend before pyplot loads
    from jaxrl.driver.rundir import _atomic_write

    env, env_params, inner = _renderable_env(run.env_name, run.env_overrides)
    from gymnax.visualize import Visualizer

    path = run.path / "episode.gif" if path is None else Path(path)
    length = max_steps or int(getattr(env_params, "max_steps_in_episode", 1000))
    single = env if envs.is_discrete(env.action_space(env_params)) else envs.RescaleAction(env)
    params = run.policy_params(seed_index)
    agent_act = run.train.act

    def episode(params: Any, key: jax.Array):
        reset_key, key = jax.random.split(key)
        obs, env_state = single.reset(reset_key, env_params)

        def step(carry, _):
            obs, env_state, key = carry
            key, act_key, env_key = jax.random.split(key, 3)
            action = agent_act(params, obs[None], act_key, True)[0]
            next_obs, next_state, reward, terminated, truncated, _ = single.step(env_key, env_state, action, env_params)
            return (next_obs, next_state, key), (env_state, reward, terminated | truncated)

        _, trajectory = jax.lax.scan(step, (obs, env_state, key), None, length=length)
        return trajectory

    key = eval_keys(seed, len(run.seeds))[seed_index]
    states, rewards, dones = jax.device_get(jax.jit(episode)(params, key))
    ended = np.flatnonzero(np.asarray(dones))
    frames = int(ended[0]) + 1 if ended.size else length
    # gymnax's Visualizer draws a list of single states: the state before each action.
    state_seq = [jax.tree.map(lambda x, t=t: x[t], states) for t in range(frames)]
    visualizer = Visualizer(inner, env_params, state_seq, np.cumsum(np.asarray(rewards)[:frames]))
    _atomic_write(path, lambda p: visualizer.animate(str(p)))
    return path


def render_episode(
    run_dir: str | Path,
    path: str | Path | None = None,
    *,
    seed_index: int = 0,
    seed: int = 0,
    max_steps: int | None = None,
) -> Path:
    """Writes a GIF of one episode of a seed's deterministic policy (default: ``episode.gif`` in
    the run directory) and returns its path. ``ConfigError`` for environments gymnax cannot draw
    (or whose renderer's packages are missing)."""
    return render_loaded(load_run(run_dir), path, seed_index=seed_index, seed=seed, max_steps=max_steps)
