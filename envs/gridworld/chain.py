"""LPG's delayed chain MDPs (Oh et al. 2020, Appendix): two actions; the first action of an episode
picks one of two chains, and only at the chain's end, ``length`` steps later, is the choice paid,
+1 for the level's correct action and -1 for the other; the episode then terminates. In the noisy
variants every earlier step pays a reward of +1 or -1 at random (mean 0), hiding the signal.

A level (``ChainLevel``) is a length and the correct action, fixed for an agent's lifetime, so the
task is learnable: the observation is a one-hot of the position, the start state or (chain, depth).
(A reimplementation we read draws the correct action anew each episode and hides it, bsuite's
umbrella problem, which no agent can learn.) Lengths are drawn uniformly from
``min_length..max_length``: the paper's Short 5-30 and Long 5-50, each also noisy.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import spaces
from envs.gridworld.env import ReplaysItsLevel

VARIANTS = {"short": (5, 30, 0), "short_noisy": (5, 30, 1), "long": (5, 50, 0), "long_noisy": (5, 50, 1)}


@struct.dataclass
class ChainParams:
    min_length: int = 5
    max_length: int = 30
    noisy: int = 0


@struct.dataclass
class ChainLevel:
    length: jax.Array  # int32: steps from the start to the paid end
    correct: jax.Array  # int32: the first action that pays +1
    noisy: jax.Array  # bool: random +-1 rewards before the end


@struct.dataclass
class ChainState:
    level: ChainLevel
    branch: jax.Array  # int32: 1 on the correct chain
    time: jax.Array  # int32


class DelayedChain(ReplaysItsLevel):
    """``max_length`` (static) bounds every level's length and fixes the observation's size."""

    def __init__(self, max_length: int = 50):
        if max_length < 2:
            raise ValueError(f"a delayed chain needs max_length >= 2, got {max_length}")
        self.max_length = max_length
        self.one_hot_observation = True  # agents may read it as a table index

    @property
    def name(self) -> str:
        return "chain"

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def default_params(self) -> ChainParams:
        return ChainParams()

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    @property
    def observation_size(self) -> int:
        return 1 + 2 * self.max_length

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.observation_size,), jnp.float32)

    def sample_level(self, key: jax.Array, params: ChainParams | None = None) -> ChainLevel:
        params = self.default_params if params is None else params
        length_key, action_key = jax.random.split(key)
        high = jnp.minimum(params.max_length, self.max_length)
        return ChainLevel(jax.random.randint(length_key, (), params.min_length, high + 1).astype(jnp.int32),
                          jax.random.randint(action_key, (), 0, 2).astype(jnp.int32), jnp.asarray(params.noisy > 0))

    def observe(self, state: ChainState) -> jax.Array:
        index = jnp.where(state.time == 0, 0, 1 + state.branch * self.max_length + state.time - 1)
        return jax.nn.one_hot(index, self.observation_size, dtype=jnp.float32)

    @partial(jax.jit, static_argnames=("self",))
    def reset_to_level(self, key, level: ChainLevel, params=None):
        state = ChainState(level, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        return self.observe(state), state

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key, params=None):
        level_key, reset_key = jax.random.split(key)
        return self.reset_to_level(reset_key, self.sample_level(level_key, params), params)

    def reset_env(self, key, params):
        return self.reset(key, params)

    def transition(self, key, state: ChainState, action):
        level = state.level
        branch = jnp.where(state.time == 0, (jnp.asarray(action, jnp.int32) == level.correct).astype(jnp.int32), state.branch)
        time = state.time + 1
        terminated = time >= level.length
        noise = jnp.where(level.noisy, 2.0 * jax.random.bernoulli(key).astype(jnp.float32) - 1.0, 0.0)
        reward = jnp.where(terminated, 2.0 * branch - 1.0, noise).astype(jnp.float32)
        return ChainState(level, branch, time), reward, terminated, jnp.zeros((), bool)

    def optimal_return(self, level: ChainLevel, gamma: float = 1.0) -> jax.Array:
        """+1, discounted over the chain: the correct first action, whatever follows (noise has mean 0)."""
        return jnp.asarray(gamma, jnp.float32) ** (jnp.asarray(level.length, jnp.float32) - 1.0)
