"""OpenAI-ES and the Deep GA on CartPole written "the plain way": one file each, gymnax, flax and
optax directly, the whole run as one ``lax.scan`` of generations over flat weight vectors. The
baselines ``evolution_speed.py`` compares ``jaxrl train es`` and ``jaxrl train ga`` against, with
the same configuration and the same episodes per generation (population x one episode of up to
500 steps, run for all 500; the GA also re-evaluates its elite candidates).
"""

from __future__ import annotations

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

HORIZON, SIGMA, LR = 500, 0.05, 0.03
ES_POPULATION = 32
GA_POPULATION, TRUNCATION, CANDIDATES, CANDIDATE_EPISODES = 64, 8, 4, 5


class Policy(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.orthogonal
        x = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(x))
        x = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(x))
        return nn.Dense(self.num_actions, kernel_init=init(0.01))(x)


def _setup():
    env, env_params = gymnax.make("CartPole-v1")
    net = Policy(env.num_actions)
    template = net.init(jax.random.key(0), jnp.zeros((1, 4)))
    _, unravel = ravel_pytree(template)

    def init(key):
        return ravel_pytree(net.init(key, jnp.zeros((1, 4))))[0]

    def episode(theta, key):
        """The first episode's return within HORIZON steps of a greedy policy."""
        params = unravel(theta)
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, env_params)

        def step(carry, key):
            obs, state, ret, alive = carry
            action = jnp.argmax(net.apply(params, obs))
            obs, state, reward, terminated, truncated, _ = env.step(key, state, action, env_params)
            return (obs, state, ret + reward * alive, alive * (1.0 - (terminated | truncated))), None

        (_, _, ret, _), _ = jax.lax.scan(step, (obs, state, 0.0, 1.0), jax.random.split(key, HORIZON))
        return ret

    return init, jax.vmap(episode)


def make_train_es(total_steps: int):
    init, episodes = _setup()
    generations = total_steps // (ES_POPULATION * HORIZON)
    adam = optax.adam(LR)

    def train(key):
        init_key, key = jax.random.split(key)
        theta = init(init_key)

        def generation(carry, key):
            theta, opt_state = carry
            noise_key, eval_key = jax.random.split(key)
            half = jax.random.normal(noise_key, (ES_POPULATION // 2, theta.size))
            z = jnp.concatenate([half, -half])
            fitness = episodes(theta + SIGMA * z, jax.random.split(eval_key, ES_POPULATION))
            ranks = jnp.argsort(jnp.argsort(fitness)) / (ES_POPULATION - 1) - 0.5  # centred ranks
            grad = -(ranks @ z) / (ES_POPULATION * SIGMA)  # Adam descends: the negated ascent direction
            updates, opt_state = adam.update(grad, opt_state)
            return (optax.apply_updates(theta, updates), opt_state), fitness.mean()

        _, returns = jax.lax.scan(generation, (theta, adam.init(theta)), jax.random.split(key, generations))
        return returns

    return train


def make_train_ga(total_steps: int):
    init, episodes = _setup()
    per_generation = (GA_POPULATION + CANDIDATES * CANDIDATE_EPISODES) * HORIZON
    generations = total_steps // per_generation

    def train(key):
        init_key, key = jax.random.split(key)
        population = jax.vmap(init)(jax.random.split(init_key, GA_POPULATION))

        def generation(population, key):
            eval_key, elite_key, parent_key, noise_key = jax.random.split(key, 4)
            fitness = episodes(population, jax.random.split(eval_key, GA_POPULATION))
            candidates = jnp.argsort(-fitness)[:CANDIDATES]
            again = episodes(jnp.repeat(population[candidates], CANDIDATE_EPISODES, axis=0),
                             jax.random.split(elite_key, CANDIDATES * CANDIDATE_EPISODES))
            elite = candidates[jnp.argmax(again.reshape(CANDIDATES, CANDIDATE_EPISODES).mean(axis=1))]
            parents = jnp.argsort(-fitness)[:TRUNCATION][jax.random.randint(parent_key, (GA_POPULATION - 1,), 0, TRUNCATION)]
            children = population[parents] + SIGMA * jax.random.normal(noise_key, (GA_POPULATION - 1, population.shape[1]))
            return jnp.concatenate([population[elite][None], children]), fitness.mean()

        _, returns = jax.lax.scan(generation, population, jax.random.split(key, generations))
        return returns

    return train
