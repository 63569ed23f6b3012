"""Pictures of a curriculum run on the maze: the buffer's highest-scoring levels and one episode
of a trained policy on a level (``envs.maze.render`` draws them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def buffer_picture(path: Path, buffer: Any, count: int = 8) -> None:
    """``count`` filled levels of a (one-seed) level buffer with the highest scores, titled."""
    from envs.maze import render

    scores = np.where(np.asarray(buffer.filled), np.asarray(buffer.scores), -np.inf)
    best = [i for i in np.argsort(-scores, kind="stable")[:count] if np.isfinite(scores[i])]
    if not best:
        return
    levels = [jax.tree.map(lambda x, i=i: np.asarray(x[i]), buffer.levels) for i in best]
    figure = render.level_grid(levels, columns=4, titles=[f"score {scores[i]:.3f}" for i in best])
    figure.savefig(path, dpi=100)


def episode_gif(path: Path, train: Any, policy_params: Any, level: Any, seed: int = 0) -> None:
    """One episode of the deterministic policy (one seed's ``policy_params``) on ``level``."""
    from envs.maze import render

    env, env_params = train.env, train.default_env_params
    memory = None if train.initial_memory is None else train.initial_memory(1)

    @jax.jit
    def step(state, memory, key):
        obs = env.observe(state)[None]
        if memory is None:
            action = train.act(policy_params, obs, key, True)
        else:
            action, memory = train.act(policy_params, obs, key, True, memory)
        state, _, terminated, truncated = env.transition(state, action[0], env_params)
        return state, memory, terminated | truncated

    _, state = env.reset_to_level(jax.random.key(seed), level, env_params)
    frames, key = [render.render_level(state)], jax.random.key(seed + 1)
    for _ in range(int(env_params.max_steps_in_episode)):
        key, act_key = jax.random.split(key)
        state, memory, done = step(state, memory, act_key)
        frames.append(render.render_level(state))
        if bool(done):
            break
    render.save_gif(path, frames)


def first_seed(tree: Any) -> Any:
    return jax.tree.map(lambda x: jnp.asarray(x)[0], tree)
