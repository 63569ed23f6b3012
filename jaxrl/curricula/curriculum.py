"""Curricula (unsupervised environment design) compiled with the agent: domain randomisation,
PLR, Robust PLR, ACCEL and SFL, each a registered algorithm whose run state holds the agent's
state and the level buffer, so that training, checkpoints, exact resume and vmapped seeds are
the kit's one driver's.

Every update restarts each of the ``num_envs`` environments on a level chosen inside the compiled
program, runs the agent's rollout there (an auto-replay wrapper restarts an ended episode on the
same level, never a random one), scores the levels from the agent's per-environment values and
advantages, and learns or not:

* ``dr``: new random levels, always learn (Tobin et al., 2017);
* ``plr``: new or replayed levels, always learn (Jiang et al., 2021, "Prioritized Level Replay");
* ``robust-plr``: learn only on replayed levels (Jiang et al., 2021, "Replay-Guided Adversarial
  Environment Design");
* ``accel``: Robust PLR, and after every replay the replayed levels are mutated, the children
  scored without learning and the high scorers inserted (Parker-Holder et al., 2022, "Evolving
  Curricula with Regret-Based Environment Design"); ``accel_from_empty`` generates empty levels;
* ``sfl``: every ``sfl_refresh`` updates, ``sfl_levels`` random levels are played for
  ``sfl_rollout`` steps each and the ``sfl_buffer`` most learnable (p (1 - p)) kept; a fraction
  ``sfl_ratio`` of the envs train on them, the rest on random levels (Rutherford et al., 2024,
  "No Regrets"; ``jaxrl.curricula.sfl``).

Which of new, replay and mutate an update does is a schedule fixed when the program is built
(a pseudo-random draw per update with ``replay_prob``, after ``min_fill`` of the buffer was
filled by new levels, from ``schedule_seed``): the same for every seed of one program, so that
under ``vmap`` the branches stay real branches and a vmapped run does not compute, and throw
away, the updates it skips (a schedule per seed would make every update pay for all three
branches). Seed-level intervals therefore leave the schedule's own variance out; runs with
different ``--set schedule_seed=N`` put it back. Every environment step is counted
(``Agent.env_steps``), those spent only scoring levels included.

With an environment that has ``level_stats`` (the maze), every update logs ``train_solvable``,
``train_shortest_path`` (over the solvable levels) and ``train_walls`` for the levels it played,
and a curriculum with a buffer ``buffer_solvable``, ``buffer_shortest_path`` and ``buffer_walls``
over the levels in it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import envs
from jaxrl.algorithms import ppo
from jaxrl.components.rollout import per_env, restart_on_levels
from jaxrl.components.targets import get_targets
from jaxrl.core.contract import Agent, Algorithm, ConfigError, Progress, register, require
from jaxrl.curricula import buffer as lb
from jaxrl.curricula import sfl
from jaxrl.curricula.scores import SCORES, best_returns, level_scores

CURRICULA = ("dr", "plr", "robust-plr", "accel", "sfl", "paired")
NEW, REPLAY, MUTATE = 0, 1, 2


@dataclass(frozen=True)
class CurriculumConfig(ppo.PPOConfig):
    curriculum: str = "dr"
    buffer_size: int = 4000
    replay_prob: float = 0.8  # static: it decides the branch schedule
    min_fill: float = 0.5  # fraction of the buffer filled with new levels before the first replay
    score: str = "maxmc"  # pvl | l1 | maxmc
    prioritization: str = "rank"  # rank | topk
    top_k: int = 256
    num_edits: int = 5  # ACCEL: edits per mutation
    accel_from_empty: bool = False
    # SFL (jaxrl.curricula.sfl); the defaults are the reference's maze settings
    sfl_levels: int = 25_000  # random levels scored per refresh (5 batches of 5,000)
    sfl_batch: int = 5_000  # levels scored in parallel (sfl_levels is a multiple of it)
    sfl_rollout: int = 2_000  # steps each level is played, sampled actions, for its learnability
    sfl_buffer: int = 1_000  # the most learnable kept
    sfl_refresh: int = 100  # updates between refreshes (update 0 refreshes)
    sfl_ratio: float = 0.5  # fraction of envs on buffer levels
    schedule_seed: int = 0
    paired_walls: int = 60  # PAIRED: walls the teacher places per level
    eval_every: int = 0  # updates between evaluations on holdout and random levels (0: none)
    eval_random: int = 0  # random levels (the unsolvable left out) in each evaluation (evaluation.training_evaluation)
    eval_attempts: int = 10  # sampled-action episodes per level in each evaluation, beside the greedy one (0: none)
    train_levels: str = ""  # a fixed training set, as level text (``--levels FILE``); "" = the generator
    agent: str = "kit"  # kit: the fields above; jaxued: JaxUED's maze network (AGENTS)


@struct.dataclass
class CurriculumHParams(ppo.PPOHParams):
    temperature: Any = 0.3
    staleness: Any = 0.3  # rho, the staleness mixing


@struct.dataclass
class CurriculumState:
    agent: Any
    buffer: lb.LevelBuffer
    parents: Any  # the levels of the last replay (ACCEL mutates them; PAIRED: the teacher's last)
    key: jax.Array
    others: Any = None  # PAIRED: the antagonist's and the teacher's states


def level_environment(env: envs.Environment) -> tuple[envs.Environment, Any]:
    """The environment with levels inside ``env`` and its level generator: an environment with
    ``reset_to_level`` and ``sample_level`` (the maze), or the randomised parameters of a
    domain-randomised one (``--env-set length=uniform:0.5:2``: a level is a parameter set)."""
    if isinstance(env, envs.EpisodeLevels):
        return env.env, env.first_level
    if callable(getattr(type(env), "sample_level", None)):
        return env, env.sample_level
    raise ConfigError(
        f"{env.name} has no levels: use an environment with reset_to_level (e.g. maze) or randomise its "
        "parameters (--env-set NAME=uniform:LOW:HIGH), each parameter set then being a level"
    )


def schedule(config: CurriculumConfig, num_updates: int) -> np.ndarray:
    """[num_updates] int32: what each update does (NEW, REPLAY, MUTATE)."""
    kinds = np.zeros(num_updates, np.int32)
    if config.curriculum in ("dr", "sfl"):
        return kinds
    draws = np.random.default_rng(config.schedule_seed).random(num_updates)
    warmup = max(1, math.ceil(config.min_fill * config.buffer_size / config.num_envs))
    for n in range(warmup, num_updates):
        if config.curriculum == "accel" and kinds[n - 1] == REPLAY:
            kinds[n] = MUTATE
        else:
            kinds[n] = REPLAY if draws[n] < config.replay_prob else NEW
    return kinds


# JaxUED's maze network (its examples/maze_plr.py ActorCritic): a 3x3 conv of 16 channels on the
# view and a linear layer of 5 on the direction, an LSTM of 256, heads with a ReLU layer of 32.
# JaxUED's actor and critic share that torso and LSTM; the kit's PPO keeps actor and critic
# separate, so here each has its own copy (twice the parameters and compute).
AGENTS = {
    "kit": {},
    "jaxued": {"torso": "maze_conv", "hidden_sizes": (), "memory": "lstm", "memory_size": 256, "head_sizes": (32,)},
}


def agent_config(config: CurriculumConfig, total_steps: int) -> ppo.PPOConfig:
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(ppo.PPOConfig)}
    return ppo.PPOConfig(**{**fields, **AGENTS.get(config.agent, {}), "total_steps": total_steps})


def build(config: CurriculumConfig, env: envs.Environment) -> Agent:
    base, sample_level = level_environment(env)
    if config.train_levels:
        fixed = base.levels_from_text(config.train_levels)
        count = jax.tree.leaves(fixed)[0].shape[0]

        def sample_level(key, params):  # noqa: F811 - uniform over the fixed set
            return jax.tree.map(lambda x: x[jax.random.randint(key, (), 0, count)], fixed)

    if config.curriculum == "accel":
        mutate = base.mutate_level
        if config.accel_from_empty and not config.train_levels:
            sample_level = base.empty_level
    play_env = envs.AutoReplay(base, sample_level)
    batch = config.num_envs * config.num_steps
    steps_after = sfl.steps_after(config) if config.curriculum == "sfl" else None
    if steps_after is None:
        steps_per_update, num_updates = batch, config.total_steps // batch
    else:  # the average per update; steps_after counts each refresh where it happens
        steps_per_update = batch + config.sfl_levels * config.sfl_rollout // config.sfl_refresh
        num_updates = sfl.num_updates(config)
    inner = ppo.build(agent_config(config, num_updates * batch), play_env)
    stats_fn = getattr(base, "level_stats", None)
    vec_env = envs.make_vector(play_env, config.num_envs)  # the agent's own stack (no normalisers)
    kinds = jnp.asarray(schedule(config, num_updates))
    targets_fn = get_targets(config.targets)
    uses_buffer = config.curriculum != "dr"
    capacity = config.sfl_buffer if config.curriculum == "sfl" else (config.buffer_size if uses_buffer else 1)
    learns_on = {"dr": (True,), "plr": (True, True), "robust-plr": (False, True),
                 "accel": (False, True, False), "sfl": (True,)}[config.curriculum]

    def new_levels(key, params):
        return jax.vmap(sample_level, in_axes=(0, None))(jax.random.split(key, config.num_envs), params)

    def rollout_on(agent_state, levels, key, hparams, step):
        """The agent's rollout with every env restarted on ``levels``; its per-env scores' inputs."""
        restart_key, _ = jax.random.split(key)  # the agent's collect draws from its own key
        carry = restart_on_levels(vec_env, agent_state.env, restart_key, levels)
        agent_state, batch = inner.collect(agent_state.replace(env=carry), hparams, step)
        traj = batch.traj
        advantages, _ = targets_fn(traj, traj.extras["value"], batch.next_value, hparams, Progress(step, num_updates))
        return agent_state, batch, per_env(traj, value=traj.extras["value"], advantage=advantages)

    def init(key, hparams, env_params):
        agent_key, level_key, key = jax.random.split(key, 3)
        agent_state = inner.init(agent_key, hparams, env_params)
        params = jax.tree.map(lambda x: x[0], agent_state.env.params)
        parents = new_levels(level_key, params)
        example = jax.tree.map(lambda x: x[0], parents)
        example_stats = None if stats_fn is None else stats_fn(example)
        return CurriculumState(agent_state, lb.empty_buffer(example, capacity, example_stats), parents, key)

    def learn_now(agent_state, hparams, batch, step):
        agent_state, metrics = inner.learn(agent_state, hparams, batch, step)
        metrics.pop("per_env")
        return agent_state, metrics

    def learn(agent_state, hparams, batch, step, learns):
        """The agent's learning step where the branch learns; zero metrics where it only scores."""
        if all(learns_on):
            return learn_now(agent_state, hparams, batch, step)
        shapes = jax.eval_shape(learn_now, agent_state, hparams, batch, step)[1]

        def skip(agent_state, *_):
            return agent_state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        return jax.lax.cond(learns, learn_now, skip, agent_state, hparams, batch, step)

    from jaxrl.curricula.evaluation import training_evaluation  # with the evaluation code only when built

    evaluate = training_evaluation(config, base, inner.act, inner.initial_memory)

    def update(state: CurriculumState, hparams, step):
        key, level_key, replay_key, mutate_key, rollout_key, sfl_key, eval_key = jax.random.split(state.key, 7)
        buffer = state.buffer
        params = jax.tree.map(lambda x: x[0], state.agent.env.params)
        kind = kinds[step] if config.curriculum not in ("dr", "sfl") else jnp.int32(NEW)
        indices = jnp.zeros(config.num_envs, jnp.int32)
        if config.curriculum == "sfl":
            buffer = jax.lax.cond(step % config.sfl_refresh == 0, refresh_sfl, lambda b, *_: b,
                                  buffer, inner.policy_params(state.agent), params, step, sfl_key)
            indices = jax.random.randint(replay_key, (config.num_envs,), 0, capacity)
            on_buffer = jnp.arange(config.num_envs) < round(config.sfl_ratio * config.num_envs)
            levels = jax.tree.map(lambda b, n: jnp.where(_expand(on_buffer, n), b[indices], n),
                                  buffer.levels, new_levels(level_key, params))
        elif config.curriculum == "dr":
            levels = new_levels(level_key, params)
        else:
            def replay(_):
                probs = lb.replay_probabilities(buffer, step, hparams.temperature, hparams.staleness,
                                                config.prioritization, config.top_k)
                return lb.sample(replay_key, buffer, config.num_envs, probs)

            branches = [lambda _: (indices, new_levels(level_key, params)), replay]
            if config.curriculum == "accel":
                keys = jax.random.split(mutate_key, config.num_envs)
                branches.append(lambda _: (indices, jax.vmap(lambda k, lv: mutate(k, lv, config.num_edits))(keys, state.parents)))
            indices, levels = jax.lax.switch(kind, branches, None)

        agent_state, batch, scores_in = rollout_on(state.agent, levels, rollout_key, hparams, step)
        learns = jnp.asarray(learns_on)[kind]
        agent_state, metrics = learn(agent_state, hparams, batch, step, learns)
        metrics.update(episode_metrics(scores_in))
        level_stats = None if stats_fn is None else jax.vmap(stats_fn)(levels)

        parents = state.parents
        if config.curriculum in ("plr", "robust-plr", "accel"):
            replayed = kind == REPLAY
            prior = jnp.where(replayed, buffer.max_returns[indices], 0.0)
            scores = level_scores(config.score, scores_in, prior)
            best = jnp.maximum(best_returns(scores_in), prior)
            buffer = jax.lax.cond(
                replayed,
                lambda b: lb.update_seen(b, indices, scores, best, step),
                lambda b: lb.insert(b, levels, scores, best, step, stats=level_stats),
                buffer,
            )
            parents = jax.tree.map(lambda new, old: jnp.where(replayed, new, old), levels, parents)
            metrics["level_score"] = scores.mean()
            metrics["replay"] = replayed.astype(jnp.float32)
        metrics["buffer_size"] = buffer.size.astype(jnp.float32)
        if level_stats is not None:
            metrics.update(stat_metrics("train", level_stats, jnp.ones(config.num_envs, bool)))
            if uses_buffer:
                metrics.update(stat_metrics("buffer", buffer.stats, buffer.filled))
        if evaluate is not None:
            metrics.update(evaluate(inner.policy_params(agent_state), params, step, eval_key))
        return CurriculumState(agent_state, buffer, parents, key), metrics

    score_levels = sfl.make_refresh(config, play_env, sample_level, inner.act, inner.initial_memory) if steps_after else None

    def refresh_sfl(buffer, policy_params, params, step, key):
        """The ``sfl_buffer`` most learnable of ``sfl_levels`` random levels (``sfl.make_refresh``)."""
        levels, scores = score_levels(policy_params, params, key)
        return buffer.replace(levels=levels, scores=scores, last_seen=jnp.full(capacity, step, jnp.int32),
                              filled=jnp.ones(capacity, bool),
                              stats=None if stats_fn is None else jax.vmap(stats_fn)(levels))

    def policy_params(state: CurriculumState):
        return inner.policy_params(state.agent)

    return Agent(
        init=init,
        update=update,
        act=inner.act,
        policy_params=policy_params,
        steps_per_update=steps_per_update,
        num_updates=num_updates,
        collect=not_split,
        learn=not_split,
        initial_memory=inner.initial_memory,
        steps_after=steps_after,
    )


def not_split(*_: Any) -> Any:
    raise NotImplementedError("a curriculum's update is not split into collect and learn")


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def stat_metrics(prefix: str, stats: dict[str, jax.Array], mask: jax.Array) -> dict[str, jax.Array]:
    """Means of level diagnostics over the levels in ``mask``: ``{prefix}_solvable`` and
    ``{prefix}_walls`` over all of them, ``{prefix}_shortest_path`` over the solvable ones (a
    ``_sum``/``_count`` pair, so that a logging window averages over its solvable levels)."""
    count = jnp.maximum(mask.sum(), 1).astype(jnp.float32)
    solvable = mask & stats["solvable"]
    return {
        f"{prefix}_solvable": jnp.where(mask, stats["solvable"], False).sum() / count,
        f"{prefix}_walls": jnp.where(mask, stats["walls"], 0).sum() / count,
        f"{prefix}_shortest_path_sum": jnp.where(solvable, stats["shortest_path"], 0).sum().astype(jnp.float32),
        f"{prefix}_shortest_path_count": solvable.sum().astype(jnp.float32),
    }


def episode_metrics(scores_in: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """The rollout's finished episodes (every update's, learning or not), and how many reached
    the goal (a positive return ended by termination)."""
    done = scores_in["done"].astype(jnp.float32)
    solved = (scores_in["terminated"] & (scores_in["episode_return"] > 0)).astype(jnp.float32)
    return {
        "episode_return_sum": (scores_in["episode_return"] * done).sum(),
        "episode_count": done.sum(),
        "solved_fraction": solved.sum() / jnp.maximum(done.sum(), 1.0),
    }


def defaults(env_name: str, discrete: bool, curriculum: str = "dr") -> tuple[CurriculumConfig, CurriculumHParams]:
    """Recurrent PPO at a CPU budget (JaxUED's maze setting scaled down: 32 envs x 256 steps,
    gamma 0.995, lambda 0.98, a GRU instead of its LSTM 256 and conv torso)."""
    config = CurriculumConfig(
        curriculum=curriculum, total_steps=2_000_000, num_envs=32, num_steps=256, update_epochs=4,
        num_minibatches=4, hidden_sizes=(64,), activation="relu", memory="gru", memory_size=64,
        anneal_lr=False, clip_value_loss=True,
    )
    hparams = CurriculumHParams(lr=3e-4, gamma=0.995, gae_lambda=0.98, ent_coef=1e-2, max_grad_norm=0.5)
    return config, hparams


def check(config: CurriculumConfig, hparams: CurriculumHParams, discrete: bool) -> None:
    require(config.agent in AGENTS, f"unknown agent {config.agent!r}; choose one of {', '.join(AGENTS)}")
    ppo.check(agent_config(config, max(config.total_steps, config.num_envs * config.num_steps)), hparams, discrete)
    require(config.curriculum in CURRICULA, f"unknown curriculum {config.curriculum!r}; choose one of {', '.join(CURRICULA)}")
    require(not config.normalize_obs and not config.normalize_reward,
            "curricula restart environments every update; normalize_obs and normalize_reward are not supported")
    require(0.0 <= config.replay_prob <= 1.0, f"replay_prob must be in [0, 1], got {config.replay_prob}")
    require(0.0 <= config.min_fill <= 1.0, f"min_fill must be in [0, 1], got {config.min_fill}")
    require(config.buffer_size >= config.num_envs, f"buffer_size={config.buffer_size} must be at least num_envs={config.num_envs}")
    require(config.score in SCORES, f"unknown score {config.score!r}; choose one of {', '.join(SCORES)}")
    require(config.prioritization in ("rank", "topk"), f"prioritization must be rank or topk, got {config.prioritization!r}")
    require(config.top_k >= 1, f"top_k must be >= 1, got {config.top_k}")
    require(config.num_edits >= 1, f"num_edits must be >= 1, got {config.num_edits}")
    require(config.eval_every >= 0, f"eval_every must be >= 0, got {config.eval_every}")
    require(config.eval_random >= 0, f"eval_random must be >= 0, got {config.eval_random}")
    require(config.eval_attempts >= 0, f"eval_attempts must be >= 0, got {config.eval_attempts}")
    require(not config.eval_random or config.eval_every, "eval_random needs eval_every > 0 (the updates between evaluations)")
    require(config.paired_walls >= 0, f"paired_walls must be >= 0, got {config.paired_walls}")
    require(hparams.temperature > 0, f"temperature must be positive, got {hparams.temperature}")
    require((hparams.staleness >= 0) & (hparams.staleness <= 1), f"staleness must be in [0, 1], got {hparams.staleness}")
    if config.curriculum == "sfl":
        sfl.check(config, require)
    steps = config.num_envs * config.num_steps
    require(config.total_steps >= steps, f"total_steps={config.total_steps} is below one update of {steps} steps")


def named_check(name: str):
    """``check`` for the algorithm registered as ``name``, whose curriculum must be ``name``."""
    def check_named(config: CurriculumConfig, hparams: CurriculumHParams, discrete: bool) -> None:
        require(config.curriculum == name, f"{name} runs curriculum {name!r}, not {config.curriculum!r}; "
                f"use `jaxrl ued {config.curriculum}`")
        check(config, hparams, discrete)

    return check_named


def _register(name: str, summary: str) -> Algorithm:
    return register(Algorithm(
        name=name,
        summary=summary,
        config_type=CurriculumConfig,
        hparams_type=CurriculumHParams,
        build=build,
        defaults=lambda env_name, discrete: defaults(env_name, discrete, name),
        check=named_check(name),
    ))


for _name, _summary in (
    ("dr", "domain randomisation of levels, recurrent PPO (curriculum)"),
    ("plr", "Prioritized Level Replay, recurrent PPO (curriculum)"),
    ("robust-plr", "Robust PLR: learns only on replayed levels (curriculum)"),
    ("accel", "ACCEL: Robust PLR with mutated replayed levels (curriculum)"),
    ("sfl", "Sampling For Learnability: replays levels of high p(1-p) (curriculum)"),
):
    _register(_name, _summary)
