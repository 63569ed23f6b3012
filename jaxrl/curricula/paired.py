"""PAIRED (Dennis et al., 2020, "Emergent Complexity and Zero-shot Transfer via Unsupervised
Environment Design"): a teacher builds each environment's level in the maze editor
(``envs.maze.MazeEditor``: the goal, the agent, then ``paired_walls`` walls, one cell per step),
a protagonist and an antagonist (two recurrent PPO students of the same configuration) train on
the levels, and the teacher's reward, on the editor's last step, is the regret: the antagonist's
best return minus the protagonist's mean return (``scores.paired_regret``). The antagonist is
trained like the protagonist, so it too maximises its return, and with it the regret. The
protagonist is the policy the run evaluates and saves.

One update is one teacher episode per environment and one rollout of each student on the levels
built; every step is counted (both students' and the teacher's). The ``train_*`` diagnostics
describe the teacher's levels; PAIRED keeps no buffer.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

import envs
from jaxrl.algorithms import ppo
from jaxrl.components.rollout import env_reset, per_env, restart_on_levels
from jaxrl.core.contract import Agent, Algorithm, register, require
from jaxrl.curricula import buffer as lb
from jaxrl.curricula import curriculum as cur
from jaxrl.curricula.scores import paired_regret


def build(config: cur.CurriculumConfig, env: envs.Environment) -> Agent:
    from envs.maze import MazeEditor

    base, _ = cur.level_environment(env)
    require(base.name == "maze", f"paired needs the maze (its teacher edits mazes), not {base.name}")
    editor = MazeEditor(base.height, base.width, n_walls=config.paired_walls)
    batch = config.num_envs * config.num_steps
    teacher_batch = config.num_envs * editor.max_steps
    steps_per_update = 2 * batch + teacher_batch
    num_updates = config.total_steps // steps_per_update
    student = ppo.build(cur.agent_config(config, num_updates * batch), envs.AutoReplay(base))
    teacher_config = dataclasses.replace(
        cur.agent_config(config, num_updates * teacher_batch), num_steps=editor.max_steps, memory="none",
        num_minibatches=1, hidden_sizes=(128,))
    teacher = ppo.build(teacher_config, editor)
    student_env = envs.make_vector(envs.AutoReplay(base), config.num_envs)
    teacher_env = envs.make_vector(editor, config.num_envs)
    from jaxrl.curricula.evaluation import training_evaluation  # with the evaluation code only when built

    evaluate = training_evaluation(config, base, student.act, student.initial_memory)  # the protagonist's

    def init(key, hparams, env_params):
        protagonist_key, antagonist_key, teacher_key, level_key, key = jax.random.split(key, 5)
        protagonist = student.init(protagonist_key, hparams, env_params)
        antagonist = student.init(antagonist_key, hparams, env_params)
        teacher_state = teacher.init(teacher_key, hparams, editor.default_params)
        params = jax.tree.map(lambda x: x[0], protagonist.env.params)
        levels = jax.vmap(base.sample_level, in_axes=(0, None))(jax.random.split(level_key, config.num_envs), params)
        buffer = lb.empty_buffer(jax.tree.map(lambda x: x[0], levels), 1)
        return cur.CurriculumState(protagonist, buffer, levels, key, {"antagonist": antagonist, "teacher": teacher_state})

    def build_levels(teacher_state, hparams, step, key):
        """The teacher's episode in every editor copy, from an empty grid; the levels it built."""
        carry = env_reset(teacher_env, editor.default_params, key)
        teacher_state, batch = teacher.collect(teacher_state.replace(env=carry), hparams, step)
        start = carry.env_state.env_state  # the editors' first states (inside episode statistics)
        finished = jax.lax.fori_loop(0, editor.max_steps,
                                     lambda t, s: jax.vmap(editor.transition)(s, batch.traj.action[t]), start)
        return teacher_state, batch, jax.vmap(editor.level)(finished)

    def play(student_state, levels, hparams, step, key):
        carry = restart_on_levels(student_env, student_state.env, key, levels)
        student_state, batch = student.collect(student_state.replace(env=carry), hparams, step)
        traj = batch.traj
        student_state, metrics = student.learn(student_state, hparams, batch, step)
        return student_state, metrics, per_env(traj)

    def update(state: cur.CurriculumState, hparams, step):
        key, teacher_key, protagonist_key, antagonist_key, eval_key = jax.random.split(state.key, 5)
        teacher_state, teacher_data, levels = build_levels(state.others["teacher"], hparams, step, teacher_key)
        protagonist, metrics, protagonist_data = play(state.agent, levels, hparams, step, protagonist_key)
        antagonist, _, antagonist_data = play(state.others["antagonist"], levels, hparams, step, antagonist_key)
        regret = paired_regret(protagonist_data, antagonist_data)
        last = jnp.arange(editor.max_steps)[:, None] == editor.max_steps - 1
        rewarded = teacher_data.replace(traj=teacher_data.traj.replace(reward=jnp.where(last, regret[None], 0.0)))
        teacher_state, teacher_metrics = teacher.learn(teacher_state, hparams, rewarded, step)
        metrics.pop("per_env")
        metrics.update(cur.episode_metrics(protagonist_data))
        metrics.update(regret=regret.mean(), teacher_entropy=teacher_metrics["entropy"])
        metrics.update(cur.stat_metrics("train", jax.vmap(base.level_stats)(levels), jnp.ones(config.num_envs, bool)))
        if evaluate is not None:
            params = jax.tree.map(lambda x: x[0], protagonist.env.params)
            metrics.update(evaluate(student.policy_params(protagonist), params, step, eval_key))
        others = {"antagonist": antagonist, "teacher": teacher_state}
        return cur.CurriculumState(protagonist, state.buffer, levels, key, others), metrics

    return Agent(
        init=init, update=update, act=student.act, policy_params=lambda state: student.policy_params(state.agent),
        steps_per_update=steps_per_update, num_updates=num_updates,
        collect=cur.not_split, learn=cur.not_split, initial_memory=student.initial_memory,
    )


register(Algorithm(
    name="paired",
    summary="PAIRED: a teacher builds mazes, rewarded by the regret of two students (curriculum)",
    config_type=cur.CurriculumConfig,
    hparams_type=cur.CurriculumHParams,
    build=build,
    defaults=lambda env_name, discrete: cur.defaults(env_name, discrete, "paired"),
    check=cur.named_check("paired"),
))
