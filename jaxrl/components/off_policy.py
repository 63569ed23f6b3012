"""The one off-policy training loop, shared by DQN, SAC, TD3, DSAC-T and off-policy MDPO.

An update steps ``num_envs`` environments ``num_steps`` times (``collect``: uniformly random
actions for the first ``learning_starts`` environment steps when the agent asks for that warm-up,
then its exploration policy), adds the transitions to the run's replay and, from the first update
at which ``learning_starts`` steps have been collected and every env holds a sampleable sequence,
takes ``gradient_steps`` learner steps on sampled minibatches (``learn``). Whether an update
learns depends only on the runner's update index, which every vmapped run shares, so it is a real
``lax.cond``: nothing of the learner runs during warm-up, under ``vmap`` too.

An agent supplies its learner state (networks, targets, optimizer states) and pure functions:

* ``explore(learner, key, obs, hparams, step) -> actions``;
* ``learn_step(learner, batch, key, hparams, step, index) -> (learner, metrics)``, where ``batch``
  leaves are [batch_size, ...] (or [sequence_length, batch_size, ...] for a learner that asks for
  sequences, such as n-step DQN), ``step``
  the update index and ``index`` the learner step's index over the whole run (0 for the first
  one), from which delayed updates are decided without a counter in the state;
* optionally ``after_learn(learner, hparams, step) -> learner``, once per learning update (DQN's
  target-network refresh).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

import optax

import envs
from jaxrl.components.optim import optimizer
from jaxrl.components.replay import Replay
from jaxrl.components.rollout import EnvCarry, Transition, env_reset, episode_metrics, per_env, rollout
from jaxrl.core.contract import Progress

Explore = Callable[[Any, jax.Array, jax.Array, Any, jax.Array], jax.Array]
LearnStep = Callable[[Any, dict[str, jax.Array], jax.Array, Any, jax.Array, jax.Array], tuple[Any, dict[str, jax.Array]]]
AfterLearn = Callable[[Any, Any, jax.Array], Any]


@struct.dataclass
class OffPolicyState:
    learner: Any  # networks, target networks, optimizer states: what learn_step updates
    replay: Any
    env: EnvCarry
    key: jax.Array


@struct.dataclass
class OffPolicyBatch:
    """What ``collect`` hands to ``learn``: the rollout (already in the replay) and the key the
    learner steps sample and learn with."""

    traj: Transition
    key: jax.Array


class OffPolicyLoop:
    """The environments, the replay and the update skeleton of one off-policy agent. ``config``
    has total_steps, num_envs, num_steps, gradient_steps, buffer_size, batch_size and
    learning_starts."""

    def __init__(self, config: Any, env: envs.Environment, *, sequence_length: int | None = None, random_warmup: bool = True):
        self.config = config
        self.vec_env = envs.make_vector(env, config.num_envs)
        params = env.default_params
        space = env.action_space(params)
        self.discrete = envs.is_discrete(space)
        self.action_dim = envs.action_size(space)  # number of actions when discrete
        self.obs_shape = envs.observation_shape(env, params)
        self.sequences = sequence_length is not None  # else single transitions, without a time axis
        sequence_length = sequence_length or 1
        self.random_warmup = random_warmup
        self.replay = Replay(config.num_envs, config.buffer_size, config.batch_size, sequence_length)
        self.steps_per_update = config.num_envs * config.num_steps
        self.num_updates = config.total_steps // self.steps_per_update
        # The first update that learns: the one that completes learning_starts env steps, once
        # every env has at least sequence_length transitions.
        self.first_learning_update = max(
            0,
            math.ceil(config.learning_starts / self.steps_per_update) - 1,
            math.ceil(sequence_length / config.num_steps) - 1,
        )

    def optimizer(self, hparams: Any, lr: jax.Array, step: jax.Array) -> optax.GradientTransformation:
        """The optimizer of one of the learner's networks (its own learning rate ``lr``) at update
        ``step``, rebuilt in every step from traced values: sweeping a learning rate never
        recompiles. ``config.optimizer`` names it (``jaxrl.components.optim``)."""
        return optimizer(self.config.optimizer, lr=lr, progress=Progress(step, self.num_updates), params=hparams.optimizer_params)

    def learning_updates(self) -> int:
        """Updates that learn in a run."""
        return max(0, self.num_updates - self.first_learning_update)

    def example_obs(self) -> jax.Array:
        return jnp.zeros((1, *self.obs_shape), jnp.float32)

    def example_action(self) -> jax.Array:
        """A batch of one action, as the networks take them."""
        if self.discrete:
            return jnp.zeros((1,), jnp.int32)
        return jnp.zeros((1, self.action_dim), jnp.float32)

    def init(self, key: jax.Array, learner: Any, env_params: Any) -> OffPolicyState:
        key, env_key = jax.random.split(key)
        env_carry = env_reset(self.vec_env, env_params, env_key)
        replay_state = self.replay.init(env_carry.obs[0], self.example_action()[0])
        return OffPolicyState(learner, replay_state, env_carry, key)

    def random_action(self, key: jax.Array, num: int) -> jax.Array:
        if self.discrete:
            return jax.random.randint(key, (num,), 0, self.action_dim)
        return jax.random.uniform(key, (num, self.action_dim), minval=-1.0, maxval=1.0)

    def collect(self, state: OffPolicyState, hparams: Any, step: jax.Array, explore: Explore) -> tuple[OffPolicyState, OffPolicyBatch]:
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        warming_up = step * self.steps_per_update < self.config.learning_starts

        def policy(act_key, obs):
            if not self.random_warmup:
                return explore(state.learner, act_key, obs, hparams, step), {}
            random_key, policy_key = jax.random.split(act_key)
            action = jax.lax.cond(
                warming_up,
                lambda: self.random_action(random_key, obs.shape[0]),
                lambda: explore(state.learner, policy_key, obs, hparams, step),
            )
            return action, {}

        env_carry, traj = rollout(self.vec_env, policy, state.env, rollout_key, self.config.num_steps)
        replay_state = self.replay.add(state.replay, traj)
        return state.replace(replay=replay_state, env=env_carry, key=key), OffPolicyBatch(traj, learn_key)

    def learn(
        self,
        state: OffPolicyState,
        hparams: Any,
        batch: OffPolicyBatch,
        step: jax.Array,
        learn_step: LearnStep,
        after_learn: AfterLearn | None = None,
    ) -> tuple[OffPolicyState, dict[str, Any]]:
        gradient_steps = self.config.gradient_steps
        learn_step = jax.jit(learn_step)  # one trace serves shaping the idle branch and the scan
        first_index = (step - self.first_learning_update) * gradient_steps

        def sample(key):
            sampled = self.replay.sample(state.replay, key)
            return sampled if self.sequences else jax.tree.map(lambda x: x[0], sampled)

        def one_step(learner, inputs):
            step_key, index = inputs
            sample_key, learner_key = jax.random.split(step_key)
            return learn_step(learner, sample(sample_key), learner_key, hparams, step, index)

        keys = jax.random.split(batch.key, gradient_steps)
        indices = first_index + jnp.arange(gradient_steps, dtype=jnp.int32)
        metric_shapes = jax.eval_shape(one_step, state.learner, (keys[0], indices[0]))[1]

        def learning(learner):
            learner, metrics = jax.lax.scan(one_step, learner, (keys, indices))
            if after_learn is not None:
                learner = after_learn(learner, hparams, step)
            return learner, jax.tree.map(jnp.mean, metrics)

        def waiting(learner):
            return learner, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), metric_shapes)

        learner, metrics = jax.lax.cond(step >= self.first_learning_update, learning, waiting, state.learner)
        metrics.update(episode_metrics(batch.traj))
        metrics["per_env"] = per_env(batch.traj)
        return state.replace(learner=learner), metrics
