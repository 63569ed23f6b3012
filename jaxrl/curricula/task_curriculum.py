"""Curricula over continuous task spaces, compiled with a PPO agent: ``task-dr`` (uniform tasks,
domain randomisation), ``alp-gmm`` (Portelas et al., 2019; ``jaxrl.curricula.alp_gmm``) and
``again`` (Meta-ACL, Portelas et al., 2020; ``jaxrl.curricula.again``).

The task space is an environment option, ``--env-set task_space=NAME=LOW:HIGH,...`` (``jaxrl ued
... --task-space NAME=LOW:HIGH``), over any numeric parameter of the environment's params;
``observe_task=1`` appends the task's unit-cube coordinates to the observation. Every episode is
played on a task drawn by the teacher (``task_space.TaskEpisodes``); the teacher reads the
finished episodes after each update, computes their ALP, refits its mixture when due and hands
the env copies its new distribution. The teacher's history, mixture and log are in the run
state: checkpointed, resumed exactly, vmapped over seeds.

Evaluation is on ``test_tasks`` held-out tasks drawn uniformly from the space with
``test_seed`` (the same set for every run with these settings): the greedy policy plays one
episode on each, a task is mastered when its return reaches ``mastery_return``. Every
``eval_every`` updates the share mastered is logged (``test_mastered``, ``test_return``); the
returns on them at the pre-test update (``pretest_fraction`` of training) and at the end are
kept in the state (normalised, the pre-test ones are AGAIN's knowledge-component vectors).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import envs
from jaxrl.algorithms import ppo
from jaxrl.analysis.evaluation import episodes
from jaxrl.core.contract import Agent, Algorithm, ConfigError, register, require
from jaxrl.core.values import parse_text
from jaxrl.curricula import again as ag
from jaxrl.curricula import alp_gmm
from jaxrl.curricula.task_space import Task, TaskEpisodes, find_task_state, parse_task_space, replace_task_state

TEACHERS = ("task-dr", "alp-gmm", "again")
ENV_OPTIONS = {"task_space": "", "observe_task": False}
# (return_low, return_high, mastery_return) of environments whose returns are known; others set them.
RETURNS = {"CartPole-v1": (0.0, 500.0, 475.0), "Acrobot-v1": (-500.0, 0.0, -100.0),
           "MountainCar-v0": (-200.0, 0.0, -110.0), "Pendulum-v1": (-1600.0, 0.0, -200.0)}


@dataclass(frozen=True)
class TaskCurriculumConfig(ppo.PPOConfig):
    teacher: str = "alp-gmm"
    return_low: float = 0.0  # episode returns are normalised to [0, 1] over [return_low, return_high]
    return_high: float = 0.0  # (the reference: -150 and 350 on its walkers)
    mastery_return: float = 0.0  # a held-out task is mastered when the greedy return reaches this
    random_ratio: float = 0.2  # ALP-GMM: uniform tasks (reference 0.2; meta-acl's runs 0.1)
    fit_rate: int = 250  # records between fits, and before the first
    min_components: int = 2
    max_components: int = 10
    alp_threshold: float = 0.2  # components above it are "high ALP" (AGAIN's expert curricula)
    history_size: int = 10_000  # records kept for the nearest-neighbour ALP
    log_fits: int = 128  # mixtures kept in the fit log (the first ones; AGAIN replays those)
    log_size: int = 16  # finished episodes per env copy per update the teacher reads
    test_tasks: int = 64
    test_seed: int = 12_345
    eval_every: int = 0  # updates between held-out evaluations (0: only pre-test and final)
    pretest_fraction: float = 0.1
    classroom: str = ""  # AGAIN: a classroom.npz, or the alp-gmm run directory holding it
    again_variant: str = "R"  # R | T | P
    again_mode: str = "again"  # again (expert + live ALP-GMM) | in (expert alone)
    again_k: int = 5
    again_random_ratio: float = 0.02
    reward_window: int = 50  # AGAIN-R: episodes whose mean return is compared with the expert's (reference 50)
    tol_ratio: float = 1.0


@struct.dataclass
class TaskCurriculumState:
    agent: Any
    teacher: alp_gmm.Teacher
    expert: ag.Expert
    pretest: jax.Array  # [test_tasks] greedy returns on the test tasks at the pre-test update
    final: jax.Array  # [test_tasks] at the last update
    key: jax.Array


def test_task_set(dim: int, count: int, seed: int) -> Task:
    """The held-out tasks: ``count`` uniform points of the unit cube from ``seed``."""
    values = np.random.default_rng(seed).random((count, dim)).astype(np.float32)
    return Task(jnp.asarray(values), jnp.full(count, -1, jnp.int32))


def env_options(env_name: str) -> dict[str, Any]:
    return dict(ENV_OPTIONS)


def wrap_env(env_name: str, env: envs.Environment, env_params: Any, options: dict[str, Any]) -> tuple[Any, Any]:
    if isinstance(env, envs.EpisodeLevels):
        raise ConfigError("a task space and --env-set distributions cannot be combined: the teacher draws the tasks "
                          "(`jaxrl ued dr --task-space` is domain randomisation over it)")
    space = parse_task_space(env_name, str(options.get("task_space") or ""), env_params)
    observe = options.get("observe_task", False)
    observe = parse_text(observe, bool, "observe_task") if isinstance(observe, str) else bool(observe)
    return TaskEpisodes(env, space, observe), env_params


def agent_config(config: TaskCurriculumConfig) -> ppo.PPOConfig:
    return ppo.PPOConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ppo.PPOConfig)})


def normalise(config: TaskCurriculumConfig, returns: jax.Array) -> jax.Array:
    return jnp.clip((returns - config.return_low) / (config.return_high - config.return_low), 0.0, 1.0)


def num_sampler_components(config: TaskCurriculumConfig) -> int:
    expert = config.log_fits * config.max_components if config.again_variant == "P" else config.max_components
    return config.max_components + (expert if config.teacher == "again" else 0)


def build(config: TaskCurriculumConfig, env: TaskEpisodes) -> Agent:
    if not isinstance(env, TaskEpisodes):
        raise ConfigError(f"{config.teacher} needs a task space: --task-space NAME=LOW:HIGH")
    space, k = env.space, config.max_components
    play_env = TaskEpisodes(env.env, space, env.observe_task, num_sampler_components(config), config.log_size)
    inner = ppo.build(agent_config(config), play_env)
    num_updates = inner.num_updates
    pretest_update = max(0, round(config.pretest_fraction * num_updates) - 1)
    test = test_task_set(space.dim, config.test_tasks, config.test_seed)
    classroom = None
    if config.teacher == "again":
        classroom = ag.load_classroom(config.classroom, space.text, np.asarray(test.values), k, config.log_fits)
    expert_offset = k  # sampler components: [live ALP-GMM | expert]
    horizon = int(getattr(env.env.default_params, "max_steps_in_episode", 1000))
    if "max_steps_in_episode" in space.names:  # the longest episode a task allows
        horizon = max(horizon, int(space.high[space.names.index("max_steps_in_episode")]))
    play = episodes(play_env, lambda p, obs, key: inner.act(p, obs, key, True), config.test_tasks, horizon)

    def test_returns(agent_state, key):
        params = jax.tree.map(lambda x: x[0], agent_state.env.params)
        return play(inner.policy_params(agent_state), key, params, test)[0]

    def init(key, hparams, env_params):
        agent_key, key = jax.random.split(key)
        agent_state = inner.init(agent_key, hparams, env_params)
        teacher = alp_gmm.init_teacher(space.dim, config.history_size, k, config.log_fits, config.reward_window)
        expert = ag.no_expert(config.log_fits, k, config.reward_window)
        zeros = jnp.zeros(config.test_tasks)
        return TaskCurriculumState(agent_state, teacher, expert, zeros, zeros, key)

    def sampler(state: TaskCurriculumState):
        teacher, expert = state.teacher, state.expert
        live = alp_gmm.components(teacher.mixture, teacher.fitted)
        if config.teacher == "task-dr":
            return alp_gmm.make_sampler(1.0, [live])
        if config.teacher == "alp-gmm":
            return alp_gmm.make_sampler(jnp.where(teacher.fitted, config.random_ratio, 1.0), [live])
        replaying = (expert.student >= 0) & ~expert.over
        in_only = replaying & (config.again_mode == "in")
        live = alp_gmm.components(teacher.mixture, teacher.fitted & ~in_only)
        ratio = jnp.where(replaying, 0.0 if config.again_mode == "in" else config.again_random_ratio,
                          jnp.where(teacher.fitted, config.random_ratio, 1.0))
        return alp_gmm.make_sampler(ratio, [live, ag.expert_components(classroom, expert, config.again_variant)])

    def update(state: TaskCurriculumState, hparams, step):
        key, fit_key, test_key = jax.random.split(state.key, 3)
        carry = state.agent.env
        task_state = find_task_state(carry.env_state)
        task_state = task_state.replace(sampler=envs.tile_params(sampler(state), config.num_envs))
        agent_state = state.agent.replace(env=carry.replace(env_state=replace_task_state(carry.env_state, task_state)))
        agent_state, batch = inner.collect(agent_state, hparams, step)
        agent_state, metrics = inner.learn(agent_state, hparams, batch, step)
        metrics.pop("per_env", None)

        task_state = find_task_state(agent_state.env.env_state)
        log = task_state.log  # leaves [num_envs, log_size, ...]
        valid = (jnp.arange(config.log_size)[None] < log.count[:, None]).reshape(-1)
        values, origins = log.values.reshape(-1, space.dim), log.origin.reshape(-1)
        returns = normalise(config, log.returns.reshape(-1))
        cleared = task_state.replace(log=log.replace(count=jnp.zeros_like(log.count)))
        agent_state = agent_state.replace(env=agent_state.env.replace(
            env_state=replace_task_state(agent_state.env.env_state, cleared)))
        teacher, teacher_metrics = alp_gmm.observe(state.teacher, fit_key, values, origins, returns, valid, config,
                                                   fits=config.teacher != "task-dr")
        metrics.update(teacher_metrics)
        metrics["episodes_unread"] = jnp.maximum(log.count - config.log_size, 0).sum().astype(jnp.float32)
        metrics.update(task_return_sum=jnp.where(valid, returns, 0.0).sum(), task_return_count=valid.sum().astype(jnp.float32))

        expert = state.expert
        if config.teacher == "again":
            from_expert = valid & (origins >= expert_offset)
            expert = ag.advance(expert, classroom, config.again_variant, teacher.history.count, returns, from_expert, config)
        state = state.replace(agent=agent_state, teacher=teacher, expert=expert, key=key)

        # One greedy evaluation on the test tasks serves the pre-test, the final test and the
        # periodic one when they fall on the same update (the same policy, tasks and key).
        pretest_now, final_now = step == pretest_update, step == num_updates - 1
        eval_now = (step + 1) % config.eval_every == 0 if config.eval_every else jnp.bool_(False)
        tested = jax.lax.cond(pretest_now | final_now | eval_now, lambda s: test_returns(s.agent, test_key),
                              lambda s: jnp.zeros(config.test_tasks), state)
        state = state.replace(pretest=jnp.where(pretest_now, tested, state.pretest),
                              final=jnp.where(final_now, tested, state.final))
        if config.teacher == "again":
            def choose(state):
                student = ag.choose_expert(classroom, normalise(config, tested), config.again_k)
                return state.replace(expert=ag.start_expert(classroom, student, config.alp_threshold, config.reward_window))

            state = jax.lax.cond(pretest_now, choose, lambda s: s, state)
        if config.eval_every:
            count = jnp.where(eval_now, float(config.test_tasks), 0.0)
            metrics.update(test_mastered_sum=jnp.where(eval_now, (tested >= config.mastery_return).sum(), 0).astype(jnp.float32),
                           test_mastered_count=count, test_return_sum=jnp.where(eval_now, tested.sum(), 0.0),
                           test_return_count=count)
        metrics["expert"] = state.expert.student.astype(jnp.float32)
        metrics["expert_pointer"] = state.expert.pointer.astype(jnp.float32)
        return state, metrics

    return Agent(init=init, update=update, act=inner.act, policy_params=lambda s: inner.policy_params(s.agent),
                 steps_per_update=inner.steps_per_update, num_updates=num_updates, collect=_not_split,
                 learn=_not_split, initial_memory=inner.initial_memory)


def _not_split(*_: Any) -> Any:
    raise NotImplementedError("a task curriculum's update is not split into collect and learn")


def defaults(env_name: str, discrete: bool, teacher: str) -> tuple[TaskCurriculumConfig, ppo.PPOHParams]:
    config, hparams = ppo.defaults(env_name, discrete)
    low, high, mastery = RETURNS.get(env_name, (0.0, 0.0, 0.0))
    fields = {**{f.name: getattr(config, f.name) for f in dataclasses.fields(ppo.PPOConfig)},
              "teacher": teacher, "return_low": low, "return_high": high, "mastery_return": mastery}
    return TaskCurriculumConfig(**fields), hparams


def check(config: TaskCurriculumConfig, hparams: Any, discrete: bool) -> None:
    ppo.check(agent_config(config), hparams, discrete)
    require(config.teacher in TEACHERS, f"unknown teacher {config.teacher!r}; choose one of {', '.join(TEACHERS)}")
    require(config.return_high > config.return_low, "set the return range the teacher normalises with: "
            "--set return_low=L --set return_high=H (and mastery_return=R), e.g. 0, 500 and 475 on CartPole-v1")
    require(0.0 <= config.random_ratio <= 1.0, f"random_ratio must be in [0, 1], got {config.random_ratio}")
    require(0.0 <= config.again_random_ratio <= 1.0, f"again_random_ratio must be in [0, 1], got {config.again_random_ratio}")
    require(config.fit_rate >= config.max_components, f"fit_rate={config.fit_rate} must be at least max_components")
    require(1 <= config.min_components <= config.max_components,
            f"need 1 <= min_components <= max_components, got {config.min_components} and {config.max_components}")
    require(config.history_size >= config.fit_rate, f"history_size must be at least fit_rate={config.fit_rate}")
    for name in ("log_fits", "log_size", "test_tasks", "again_k", "reward_window"):
        require(getattr(config, name) >= 1, f"{name} must be >= 1, got {getattr(config, name)}")
    require(config.eval_every >= 0, f"eval_every must be >= 0, got {config.eval_every}")
    require(0.0 < config.pretest_fraction <= 1.0, f"pretest_fraction must be in (0, 1], got {config.pretest_fraction}")
    require(config.again_variant in ag.VARIANTS, f"again_variant must be one of {', '.join(ag.VARIANTS)}, got {config.again_variant!r}")
    require(config.again_mode in ag.MODES, f"again_mode must be one of {', '.join(ag.MODES)}, got {config.again_mode!r}")
    require(config.teacher != "again" or config.classroom, "again needs a classroom: --set classroom=DIR "
            "(an alp-gmm run), or `jaxrl ued again --classroom-size N`")
    require(config.tol_ratio > 0, f"tol_ratio must be positive, got {config.tol_ratio}")


def _register(name: str, summary: str) -> None:
    def named_check(config, hparams, discrete):
        require(config.teacher == name, f"{name} runs teacher {name!r}, not {config.teacher!r}")
        check(config, hparams, discrete)

    register(Algorithm(name=name, summary=summary, config_type=TaskCurriculumConfig, hparams_type=ppo.PPOHParams,
                       build=build, defaults=lambda env_name, discrete: defaults(env_name, discrete, name),
                       check=named_check, env_options=env_options, wrap_env=wrap_env))


_register("task-dr", "uniform tasks from a task space every episode (domain randomisation), PPO")
_register("alp-gmm", "ALP-GMM teacher over a continuous task space, PPO (curriculum)")
_register("again", "AGAIN (Meta-ACL): a classroom's curricula replayed, then ALP-GMM, PPO (curriculum)")
