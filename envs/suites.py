"""The maintained JAX environment suites behind optional extras: ``craftax/<name>``,
``xminigrid/<name>``, ``navix/<name>``, ``jumanji/<name>`` and ``playground/<name>``, each name
being the suite's own.

Each suite has an adapter to the kit's protocol in its own file (``envs/<suite>_adapter.py``),
imported only when one of its environments is made. A suite that is not installed still lists its
environments (from the snapshot below, taken from the pinned version), and making one raises
an error naming the extra to install; the tests check that each snapshot is what the installed
suite has.

What the adapters share lives here: observations as float32 arrays (a dict or NamedTuple
observation, as jumanji's, is flattened field by field and concatenated, so an MLP takes it;
an (H, W, C) grid or image stays one, so the agents choose the CNN torso for it as for MinAtar),
the auto-reset, and the parameters of suites whose settings are constructor options.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import sys
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, spaces


@dataclasses.dataclass(frozen=True)
class Suite:
    prefix: str  # the registry's prefix, also the extra's name
    module: str  # the package that must be importable
    requirement: str  # what the extra installs on this Python (pyproject.toml says the same)
    adapter: str  # the kit's module with ``names()``, ``option_defaults(name)``, ``make(name, overrides)``
    snapshot: tuple[str, ...]  # the environments of the pinned version, listed while not installed; fastest first
    cpu_cost: str = ""  # what a CPU run costs, measured once (`jaxrl list` and the README's suites table)
    from_installed: bool = False  # list the installed version's names (read from the suite) instead of the snapshot
    unavailable: str = ""  # one line on the suite's environments the kit cannot make, if any


SUITES = {
    "craftax": Suite(
        "craftax", "craftax", "craftax>=1.6,<1.7", "envs.craftax_adapter",
        ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Pixels-v1"),
        cpu_cost="PPO at its defaults trains at ~1,750 env steps/s on Craftax-Classic-Symbolic-v1 (~60 s to compile)",
    ),
    "xminigrid": Suite(
        "xminigrid", "xminigrid", "xminigrid>=0.9,<0.10", "envs.xminigrid_adapter",
        ("MiniGrid-Empty-5x5",)
        + tuple(f"XLand-MiniGrid-R{r}-{s}x{s}" for r, sizes in (
            (1, (9, 11, 13, 15, 17)), (2, (9, 11, 13, 15, 17)), (4, (9, 11, 13, 15, 17)),
            (6, (13, 17, 19)), (9, (16, 19, 25))) for s in sizes)
        + ("MiniGrid-BlockedUnlockPickUp",)
        + tuple(f"MiniGrid-{k}-{s}x{s}" for k in ("DoorKey", "Empty", "EmptyRandom") for s in (5, 6, 8, 16) if (k, s) != ("Empty", 5))
        + ("MiniGrid-FourRooms", "MiniGrid-LockedRoom")
        + tuple(f"MiniGrid-MemoryS{s}" for s in (8, 16, 32, 64, 128))
        + ("MiniGrid-Playground", "MiniGrid-Unlock", "MiniGrid-UnlockPickUp"),
        cpu_cost="PPO at its defaults trains at ~3,800 env steps/s on MiniGrid-Empty-5x5 (~25 s to compile)",
    ),
    "navix": Suite(
        "navix", "navix", "navix>=4.0,<5" if sys.version_info >= (3, 12) else "navix>=0.7.4,<0.8", "envs.navix_adapter",
        tuple(f"Navix-{k}-{s}x{s}-v0" for k in ("Empty", "Empty-Random", "DoorKey", "DoorKey-Random") for s in (5, 6, 8, 16))
        + ("Navix-FourRooms-v0",)
        + tuple(f"Navix-KeyCorridorS{s}R{r}-v0" for s, r in ((3, 1), (3, 2), (3, 3), (4, 3), (5, 3), (6, 3)))
        + tuple(f"Navix-LavaGapS{s}-v0" for s in (5, 6, 7))
        + tuple(f"Navix-SimpleCrossingS{s}N{n}-v0" for s, n in ((9, 1), (9, 2), (9, 3), (11, 5)))
        + ("Navix-Dynamic-Obstacles-5x5-v0", "Navix-Dynamic-Obstacles-5x5-Random-v0", "Navix-Dynamic-Obstacles-6x6-v0",
           "Navix-Dynamic-Obstacles-6x6-Random-v0", "Navix-Dynamic-Obstacles-8x8-v0", "Navix-Dynamic-Obstacles-16x16-v0",
           "Navix-DistShift1-v0", "Navix-DistShift2-v0")
        + tuple(f"Navix-GoToDoor-{s}x{s}-v0" for s in (5, 6, 8)),
        from_installed=True,
        cpu_cost="PPO at its defaults trains at ~9,000 env steps/s on Navix-Empty-5x5-v0 (~20 s to compile)",
    ),
    "jumanji": Suite(
        "jumanji", "jumanji", "jumanji>=1.1,<1.2", "envs.jumanji_adapter",
        ("TSP-v1", "BinPack-v2", "CVRP-v1", "Cleaner-v0", "Game2048-v1", "GraphColoring-v1", "Knapsack-v1", "Maze-v0",
         "Minesweeper-v0", "PacMan-v1", "RobotWarehouse-v0", "RubiksCube-partly-scrambled-v0", "RubiksCube-v0",
         "SlidingTilePuzzle-v0", "Snake-v1", "Sudoku-v0", "Sudoku-very-easy-v0", "Tetris-v0"),
        cpu_cost="PPO at its defaults trains at ~40,000 env steps/s on TSP-v1, ~7,500 on Snake-v1 (~20 s to compile)",
    ),
    "playground": Suite(
        "playground", "mujoco_playground", "playground>=0.2,<0.3", "envs.playground_adapter",
        ("CartpoleBalanceSparse", "PointMass", "AcrobotSwingupSparse", "CartpoleBalance", "CartpoleSwingup",
         "AcrobotSwingup", "CartpoleSwingupSparse", "PendulumSwingup", "ReacherEasy", "ReacherHard", "FingerTurnHard",
         "FingerTurnEasy", "FingerSpin", "CheetahRun", "BallInCup", "FishSwim", "WalkerRun", "WalkerWalk", "WalkerStand",
         "HopperHop", "HopperStand", "HumanoidStand", "HumanoidWalk", "HumanoidRun", "SwimmerSwimmer6"),
        cpu_cost="PPO at its defaults trains at ~47,000 env steps/s on CartpoleBalance (~35 s to compile)",
        unavailable="the locomotion and manipulation environments: loading one clones MuJoCo Menagerie from GitHub",
    ),
}


class MissingExtraError(LookupError):
    """An environment of a suite whose optional extra is not installed."""


def suite_of(name: str) -> Suite | None:
    """The suite of a registry name such as ``navix/Navix-Empty-5x5-v0``, or None."""
    prefix = name.split("/", 1)[0]
    return SUITES.get(prefix) if "/" in name else None


def installed(suite: Suite) -> bool:
    return importlib.util.find_spec(suite.module) is not None


def install_hint(suite: Suite) -> str:
    return f"pip install -e '.[{suite.prefix}]' (or pip install '{suite.requirement}')"


def adapter(suite: Suite) -> Any:
    """The suite's adapter module; ``MissingExtraError`` when the suite is not installed."""
    if not installed(suite):
        raise MissingExtraError(f"{suite.prefix} environments need the {suite.prefix} extra: {install_hint(suite)}")
    return importlib.import_module(suite.adapter)


def names(suite: Suite) -> list[str]:
    """The suite's environments the kit makes, the fastest first: the snapshot, which the tests
    check against the installed suite (``<adapter>.names()``), so listing imports no suite; for a
    suite whose names change between the versions the extra allows (``from_installed``), the
    installed version's own list, in the snapshot's order where the names are shared."""
    if not (suite.from_installed and installed(suite)):
        return list(suite.snapshot)
    found = list(importlib.import_module(suite.adapter).names())
    order = {name: i for i, name in enumerate(suite.snapshot)}
    return sorted(found, key=lambda name: (order.get(name, len(order)), found.index(name)))


def inner_name(name: str, suite: Suite) -> str:
    """``name`` without its suite prefix, checked to be one of the suite's environments
    (``UnknownEnvironmentError`` with suggestions otherwise)."""
    import difflib

    from envs.registry import UnknownEnvironmentError

    inner = name[len(suite.prefix) + 1:]
    known = names(suite)
    if inner not in known:
        close = difflib.get_close_matches(inner, known, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(f'{suite.prefix}/{c}' for c in close)}?" if close else f"; `jaxrl list` shows {suite.prefix}'s"
        raise UnknownEnvironmentError(f"unknown environment {name!r}{hint}")
    return inner


# --------------------------------------------------------------------------------------------
# What the adapters share


@struct.dataclass
class OptionParams:
    """The parameters of a suite whose settings are constructor options (navix, jumanji):
    nothing traced; the episode limit the suite applies is recorded for evaluation horizons."""

    max_steps_in_episode: int = struct.field(pytree_node=False, default=1000)


def float_observation(obs: Any) -> jax.Array:
    """One float32 array: an array observation cast (its shape kept), a dict or NamedTuple
    observation flattened leaf by leaf (in the pytree's order: fields as declared, dict keys
    sorted) and concatenated into a vector."""
    if isinstance(obs, (jax.Array, jnp.ndarray)) or hasattr(obs, "dtype"):
        return jnp.asarray(obs, jnp.float32)
    return jnp.concatenate([jnp.asarray(leaf, jnp.float32).reshape(-1) for leaf in jax.tree.leaves(obs)])


def tree_where(condition: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


class SuiteEnv(Environment):
    """Base of the suites' adapters: the registry name, ``num_actions`` discrete actions, and
    the observation space read off one traced reset (shapes only, nothing runs)."""

    def __init__(self, name: str, num_actions: int):
        self._name = name
        self._num_actions = int(num_actions)

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        params = self.default_params if params is None else params
        shape = jax.eval_shape(lambda key: self.reset(key, params)[0], jax.random.key(0)).shape
        return spaces.Box(-jnp.inf, jnp.inf, shape, jnp.float32)

    # Resets that cost what they should. Under ``vmap`` a per-copy auto-reset computes a reset for
    # every copy on every step, ended or not. ``reset_in_batch`` lets ``envs.VectorEnv`` step a
    # twin that leaves ended copies as they are (``deferred()``) and reset only the copies that
    # ended, each with the key this adapter's own auto-reset would have used (``reset_key``): the
    # same episodes. Every suite's adapter does: Craftax's reset generates a world (about 15
    # steps' cost), xminigrid's and navix's random layouts cost several steps, and where a reset
    # is cheap (navix's Empty rooms) it costs nothing (experiments/bench/README.md).
    reset_in_batch = True
    _deferred = False

    def deferred(self) -> "SuiteEnv":
        """A twin whose ``step`` does not auto-reset (``envs.VectorEnv`` resets the ended copies)."""
        twin = copy.copy(self)
        twin._deferred = True
        return twin

    def reset_key(self, key: jax.Array) -> jax.Array:
        """The key ``step(key, ...)`` hands its auto-reset."""
        return key

    def auto_reset(self, key: jax.Array, params: Any, done: jax.Array, obs: jax.Array, state: Any):
        """``(obs, state)`` of the next step: a fresh episode's, from ``reset(key, params)``,
        where ``done`` (``key`` must be ``reset_key`` of the step's key)."""
        if self._deferred:
            return obs, state
        reset_obs, reset_state = self.reset(key, params)
        return jnp.where(done, reset_obs, obs), tree_where(done, reset_state, state)
