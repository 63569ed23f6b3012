"""Functional environments for the kit: one protocol (gymnax 1.0's), one registry, wrappers,
levels."""

from jaxrl import _platform  # noqa: F401  (XLA settings, before JAX starts a backend)

from envs.core import Environment, action_size, is_discrete, observation_shape, spaces
from envs.levels import AutoReplay, DomainRandomization, EpisodeLevels, LevelState, ParamsAsLevels
from envs.registry import InvalidEnvSetting, UnknownEnvironmentError, list_envs, make, register
from envs.wrappers import (
    EpisodeStatistics,
    FlattenObservation,
    NormalizeObservation,
    NormalizeReward,
    OneHotIndex,
    RescaleAction,
    RunningMeanStd,
    VectorEnv,
    Wrapper,
    find_observation_stats,
    normalize_observation,
    per_copy_params,
    tile_params,
)


def make_vector(
    env: Environment,
    num_envs: int,
    *,
    normalize_obs: bool = False,
    normalize_reward: bool = False,
    gamma: float = 0.99,
) -> Environment:
    """The training stack every agent uses: episode statistics on the raw env, continuous actions
    rescaled from [-1, 1], ``num_envs`` copies (parameters per copy, see ``VectorEnv``), then the
    optional shared normalisers."""
    env = EpisodeStatistics(env)
    if not is_discrete(env.action_space(env.default_params)):
        env = RescaleAction(env)
    env = VectorEnv(env, num_envs)
    if normalize_obs:
        env = NormalizeObservation(env)
    if normalize_reward:
        env = NormalizeReward(env, gamma=gamma)
    return env


__all__ = [
    "AutoReplay",
    "DomainRandomization",
    "Environment",
    "EpisodeLevels",
    "EpisodeStatistics",
    "FlattenObservation",
    "InvalidEnvSetting",
    "LevelState",
    "NormalizeObservation",
    "NormalizeReward",
    "OneHotIndex",
    "ParamsAsLevels",
    "RescaleAction",
    "RunningMeanStd",
    "UnknownEnvironmentError",
    "VectorEnv",
    "Wrapper",
    "action_size",
    "find_observation_stats",
    "is_discrete",
    "list_envs",
    "make",
    "make_vector",
    "normalize_observation",
    "observation_shape",
    "per_copy_params",
    "register",
    "spaces",
    "tile_params",
]

# The kit's own grid maze registers itself as "maze" (cheap: no arrays, no matplotlib).
import envs.maze  # noqa: E402,F401
# LPG's and GROOVE's grid worlds register "gridworld" and "gridworld/<LPG level>" (no arrays made).
import envs.gridworld  # noqa: E402,F401
# The point mass pushed by a wind, robust adversarial RL's testbed: "point_mass_wind".
import envs.point_mass  # noqa: E402,F401
