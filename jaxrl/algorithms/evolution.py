"""Evolved policies: policy weights trained directly by evolution, fitness = episode return.

* ``es``: OpenAI-ES (Salimans et al., 2017, "Evolution Strategies as a Scalable Alternative to
  Reinforcement Learning"), through the kit's evosax interface (``jaxrl.meta.es``): antithetic
  Gaussian perturbations of scale ``sigma`` around a mean, centred-rank fitness shaping, Adam
  on the mean at ``lr``. The policy is the mean.
* ``ga``: the Deep GA (Such et al., 2017, "Deep Neuroevolution"): truncation selection of the
  top ``truncation`` members as parents, children = a uniformly drawn parent plus Gaussian noise
  of power ``sigma``, and the elite carried unmutated, chosen among the ``elite_candidates``
  best by ``elite_episodes`` more episodes each. A genome is its list of seeds (the
  initialisation's, then one per mutation) and ``rebuild`` makes its weights again exactly.
  ``truncation=0`` is random search: every child is a fresh initialisation. evosax's SimpleGA
  is not this GA (no unmutated elite, the top half as parents, std 1.0), so it is written here.

Both are agents of the kit's contract: an update is one generation (every member's episodes
and the strategy's step in one compiled program), so ``jaxrl train es|ga`` has the runner's
seeds, checkpoints, exact resume, evaluation and sweeps. ``sigma`` and ``lr`` are traced
hyperparameters: sweeping them does not recompile. Policies act deterministically (the mode).

A generation runs ``population x episodes`` environments for ``episode_steps`` steps (default:
the environment's episode limit), in lockstep; a member's fitness is the mean return of the
first episode of each of its environments (an episode still running at the horizon counts with
what it has). Env steps count every step computed, finished episodes or not.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import envs
from jaxrl.components.networks import ACTIVATIONS, Actor, Torso, torso_kind
from jaxrl.components.rollout import EnvCarry, env_reset, per_env, rollout
from jaxrl.core.contract import Agent, Algorithm, check_batch, compose, register, require


@dataclass(frozen=True)
class EvolutionConfig:
    total_steps: int = 2_000_000
    population: int = 32
    episodes: int = 1  # environments (first episodes) per member and generation
    episode_steps: int = 0  # steps each environment runs per generation (0: the env's episode limit)
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    torso: str = "auto"  # auto | mlp | cnn


@dataclass(frozen=True)
class GAConfig(EvolutionConfig):
    population: int = 64
    truncation: int = 8  # parents per generation (T); 0: random search
    elite_candidates: int = 4  # the best members re-evaluated to choose the elite
    elite_episodes: int = 5  # more episodes for each candidate


@struct.dataclass
class ESHParams:
    sigma: float = 0.05  # perturbation scale
    lr: float = 0.03  # Adam's step on the mean


@struct.dataclass
class GAHParams:
    sigma: float = 0.05  # mutation power


@struct.dataclass
class ESState:
    es: Any  # evosax's state; its mean is the policy
    env: EnvCarry  # population x episodes copies, restarted every generation
    key: jax.Array


@struct.dataclass
class GAState:
    params: Any  # the population's weights [population, ...]; member 0 is the elite
    genomes: jax.Array  # [population, generations + 1] uint32 seeds; column 0 the initialisation's
    lengths: jax.Array  # [population] int32: seeds in use
    env: EnvCarry
    key: jax.Array


def _horizon(config: EvolutionConfig, env: envs.Environment) -> int:
    return config.episode_steps or int(getattr(env.default_params, "max_steps_in_episode", 1000))


def _first_episodes(traj: Any) -> tuple[jax.Array, jax.Array]:
    """[num_envs] each: every environment's first-episode return and length in the rollout."""
    done = traj.done.astype(jnp.int32)
    first = (jnp.cumsum(done, axis=0) - done) == 0  # no episode finished before this step
    return jnp.where(first, traj.reward, 0.0).sum(axis=0), first.sum(axis=0).astype(jnp.float32)


class Policies:
    """The actor network and the population's episodes."""

    def __init__(self, config: EvolutionConfig, env: envs.Environment):
        params = env.default_params
        space = env.action_space(params)
        obs_shape = envs.observation_shape(env, params)
        torso = Torso(tuple(config.hidden_sizes), config.activation, torso_kind(obs_shape, config.torso), obs_ndim=len(obs_shape))
        self.actor = Actor(envs.action_size(space), envs.is_discrete(space), torso)
        self.obs_shape = obs_shape
        self.env = env
        self.horizon = _horizon(config, env)

    def init(self, key: jax.Array) -> Any:
        return self.actor.init(key, jnp.zeros((1, *self.obs_shape), jnp.float32))

    def act(self, params: Any, obs: jax.Array, key: jax.Array = None, deterministic: bool = True) -> jax.Array:
        return self.actor.apply(params, obs).mode()

    def fitness(self, members: Any, episodes: int, env: EnvCarry, key: jax.Array) -> tuple[jax.Array, EnvCarry, Any]:
        """[members] mean first-episode returns of ``members`` (leading axis) over ``episodes``
        environments each, restarted from ``env``'s parameters with ``key``; the environments'
        carry; and (the episodes' lengths [members], the trajectory)."""
        reset_key, rollout_key = jax.random.split(key)
        count = jax.tree.leaves(members)[0].shape[0]
        vec = envs.make_vector(self.env, count * episodes)
        params = env.params
        if jax.tree.leaves(params)[0].shape[:1] != (count * episodes,):
            # Another number of copies (the GA's elite candidates): the first copy's parameters.
            params = jax.tree.map(lambda x: x[0], params)
        carry = env_reset(vec, params, reset_key)

        def policy(_key, obs):
            obs = obs.reshape((count, episodes) + obs.shape[1:])
            actions = jax.vmap(self.act)(members, obs)
            return actions.reshape((count * episodes,) + actions.shape[2:]), {}

        carry, traj = rollout(vec, policy, carry, rollout_key, self.horizon)
        returns, lengths = (x.reshape(count, episodes).mean(axis=1) for x in _first_episodes(traj))
        return returns, carry, (lengths, traj)


def _metrics(fitness: jax.Array, episodes: tuple[jax.Array, Any]) -> dict[str, Any]:
    """The population's first episodes as the runner's episode sums (the logged
    ``episode_return`` and ``episode_length`` are the population's means), the best and worst
    fitness, and ``per_env``."""
    lengths, traj = episodes
    return {
        "episode_return_sum": fitness.sum(),
        "episode_length_sum": lengths.sum(),
        "episode_count": jnp.asarray(fitness.size, jnp.float32),
        "fitness_best": fitness.max(),
        "fitness_worst": fitness.min(),
        "per_env": per_env(traj),
    }


def build_es(config: EvolutionConfig, env: envs.Environment) -> Agent:
    from jaxrl.meta.es import make_strategy

    policies = Policies(config, env)
    strategy = make_strategy("open_es", policies.init(jax.random.key(0)), population=config.population,
                             sigma=ESHParams.sigma, lr=ESHParams.lr, traced=True)
    steps = config.population * config.episodes * policies.horizon
    check_batch(config.total_steps, steps, f"generation (population x episodes x {policies.horizon} steps)")
    vec = envs.make_vector(env, config.population * config.episodes)

    def init(key, hparams: ESHParams, env_params) -> ESState:
        key, init_key, es_key, env_key = jax.random.split(key, 4)
        es = strategy.init(es_key, policies.init(init_key))
        return ESState(es, env_reset(vec, env_params, env_key), key)

    def collect(state: ESState, hparams: ESHParams, step: jax.Array):
        key, ask_key, eval_key, tell_key = jax.random.split(state.key, 4)
        es = strategy.set_hyperparams(state.es, hparams.sigma, hparams.lr)
        members, es = strategy.ask(ask_key, es)
        fitness, env, episodes = policies.fitness(members, config.episodes, state.env, eval_key)
        return state.replace(es=es, env=env, key=key), (members, fitness, episodes, tell_key)

    def learn(state: ESState, hparams: ESHParams, batch, step: jax.Array):
        members, fitness, episodes, tell_key = batch
        es, _ = strategy.tell(tell_key, members, fitness, state.es)
        return state.replace(es=es), _metrics(fitness, episodes)

    return Agent(init=init, update=compose(collect, learn), act=policies.act,
                 policy_params=lambda state: strategy.mean(state.es),
                 steps_per_update=steps, num_updates=config.total_steps // steps, collect=collect, learn=learn)


@functools.lru_cache(maxsize=None)
def _normal_quantiles() -> np.ndarray:
    """The standard normal's quantiles at (i + 1/2) / 2^16, i < 2^16, in double precision by
    Python's statistics module (the same numbers on every machine), stored as float32."""
    inverse = statistics.NormalDist().inv_cdf
    return np.array([inverse((i + 0.5) / 65536) for i in range(65536)], np.float32)


def gaussian_noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Standard normal noise that is the same bits in every compiled program: each 16 random bits
    pick one of 2^16 normal quantiles (a discrete normal, tails at +-4.3). ``jax.random.normal``
    is not reproducible that way: XLA vectorises its erfinv polynomial differently in different
    programs, and the last bits move. Two values per 32 random bits, so it is also cheaper."""
    size = math.prod(shape)
    words = jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
    index = jnp.concatenate([words >> 16, words & 0xFFFF])[:size]
    return jnp.asarray(_normal_quantiles())[index].reshape(shape)


def mutate(params: Any, seed: jax.Array, sigma: jax.Array) -> Any:
    """``params`` plus ``sigma`` times Gaussian noise drawn from ``seed`` (one uint32)."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    # The barrier keeps the product and the sum two roundings wherever this is compiled (XLA
    # could fuse them into one multiply-add in some programs and not in others): a genome
    # rebuilt from its seeds is bit-identical to the weights evolution carried.
    steps = jax.lax.optimization_barrier([sigma * gaussian_noise(k, leaf.shape) for k, leaf in zip(keys, leaves)])
    return treedef.unflatten([leaf + step.astype(leaf.dtype) for leaf, step in zip(leaves, steps)])


def rebuild(init: Any, genome: jax.Array, length: jax.Array, sigma: jax.Array) -> Any:
    """The weights of ``genome`` (its first ``length`` seeds): ``init(genome[0])``, then one
    mutation per further seed, in order: exactly the weights evolution carried."""
    def step(params, index):
        mutated = mutate(params, genome[index], sigma)
        return jax.tree.map(lambda new, old: jnp.where(index < length, new, old), mutated, params), None

    params, _ = jax.lax.scan(step, init(jax.random.key(genome[0])), jnp.arange(1, genome.shape[0]))
    return params


def build_ga(config: GAConfig, env: envs.Environment) -> Agent:
    policies = Policies(config, env)
    n, parents = config.population, config.truncation
    per_generation = (n * config.episodes + config.elite_candidates * config.elite_episodes) * policies.horizon
    check_batch(config.total_steps, per_generation,
                f"generation ((population x episodes + elite_candidates x elite_episodes) x {policies.horizon} steps)")
    num_updates = config.total_steps // per_generation
    vec = envs.make_vector(env, n * config.episodes)
    init_one = lambda key: policies.init(key)  # noqa: E731

    def init(key, hparams: GAHParams, env_params) -> GAState:
        key, seed_key, env_key = jax.random.split(key, 3)
        seeds = jax.random.bits(seed_key, (n,), jnp.uint32)
        genomes = jnp.zeros((n, num_updates + 1), jnp.uint32).at[:, 0].set(seeds)
        params = jax.vmap(lambda s: init_one(jax.random.key(s)))(seeds)
        return GAState(params, genomes, jnp.ones(n, jnp.int32), env_reset(vec, env_params, env_key), key)

    def collect(state: GAState, hparams: GAHParams, step: jax.Array):
        key, eval_key, elite_key = jax.random.split(state.key, 3)
        fitness, env, episodes = policies.fitness(state.params, config.episodes, state.env, eval_key)
        # The elite: of the best candidates, the one with the best mean over more episodes.
        candidates = jnp.argsort(-fitness)[: config.elite_candidates]
        pick = lambda tree, index: jax.tree.map(lambda x: x[index], tree)  # noqa: E731
        again, _, _ = policies.fitness(pick(state.params, candidates), config.elite_episodes, state.env, elite_key)
        elite = candidates[jnp.argmax(again)]
        return state.replace(env=env, key=key), (fitness, elite, episodes)

    def learn(state: GAState, hparams: GAHParams, batch, step: jax.Array):
        fitness, elite, episodes = batch
        key, parent_key, seed_key = jax.random.split(state.key, 3)
        seeds = jax.random.bits(seed_key, (n - 1,), jnp.uint32)
        if parents:
            ranked = jnp.argsort(-fitness)[:parents]
            chosen = ranked[jax.random.randint(parent_key, (n - 1,), 0, parents)]
            pick = lambda tree: jax.tree.map(lambda x: x[chosen], tree)  # noqa: E731
            children = jax.vmap(mutate, in_axes=(0, 0, None))(pick(state.params), seeds, hparams.sigma)
            lengths = state.lengths[chosen]
            genomes = state.genomes[chosen].at[jnp.arange(n - 1), lengths].set(seeds)
            lengths = lengths + 1
        else:  # random search: every child a fresh initialisation
            children = jax.vmap(lambda s: init_one(jax.random.key(s)))(seeds)
            genomes = jnp.zeros((n - 1, num_updates + 1), jnp.uint32).at[:, 0].set(seeds)
            lengths = jnp.ones(n - 1, jnp.int32)
        join = lambda first, rest: jnp.concatenate([first[None], rest])  # noqa: E731
        params = jax.tree.map(lambda x, c: join(x[elite], c), state.params, children)
        state = state.replace(params=params, genomes=join(state.genomes[elite], genomes),
                              lengths=join(state.lengths[elite], lengths), key=key)
        return state, {**_metrics(fitness, episodes), "elite_fitness": fitness[elite]}

    return Agent(init=init, update=compose(collect, learn), act=policies.act,
                 policy_params=_elite,
                 steps_per_update=per_generation, num_updates=num_updates, collect=collect, learn=learn)


def _elite(state: GAState) -> Any:
    """The elite's weights (member 0), of one run or of several vmapped (leading axes)."""
    batch = state.genomes.ndim - 2
    return jax.tree.map(lambda x: x[(slice(None),) * batch + (0,)], state.params)


def _check(config: EvolutionConfig, hparams: Any, discrete: bool) -> None:
    require(config.population >= 2, f"population must be >= 2, got {config.population}")
    require(config.episodes >= 1, f"episodes must be >= 1, got {config.episodes}")
    require(config.episode_steps >= 0, f"episode_steps must be >= 0 (0: the env's episode limit), got {config.episode_steps}")
    require(config.activation in ACTIVATIONS, f"unknown activation {config.activation!r}; choose from {', '.join(ACTIVATIONS)}")
    require(config.torso in ("auto", "mlp", "cnn"), f"torso must be auto, mlp or cnn, got {config.torso!r}")
    require(len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1, "hidden_sizes must be positive")
    require(hparams.sigma > 0, f"sigma must be positive, got {hparams.sigma}")
    if isinstance(config, GAConfig):
        require(0 <= config.truncation <= config.population,
                f"truncation must be in [0, population={config.population}] (0: random search), got {config.truncation}")
        require(1 <= config.elite_candidates <= config.population,
                f"elite_candidates must be in [1, population={config.population}], got {config.elite_candidates}")
        require(config.elite_episodes >= 1, f"elite_episodes must be >= 1, got {config.elite_episodes}")
    else:
        require(config.population % 2 == 0, f"es samples antithetic pairs, so the population must be even, got {config.population}")
        require(hparams.lr > 0, f"lr must be positive, got {hparams.lr}")


register(Algorithm(
    name="es", summary="OpenAI-ES on the policy's weights (Salimans et al., 2017): fitness = episode return",
    config_type=EvolutionConfig, hparams_type=ESHParams, build=build_es,
    defaults=lambda env_name, discrete: (EvolutionConfig(), ESHParams()), check=_check,
))
register(Algorithm(
    name="ga", summary="Deep GA (Such et al., 2017): truncation selection, Gaussian mutation, an unmutated elite",
    config_type=GAConfig, hparams_type=GAHParams, build=build_ga,
    defaults=lambda env_name, discrete: (GAConfig(), GAHParams()), check=_check,
))
