"""A2C: one update equals the hand-written synchronous advantage actor-critic step (n-step returns
computed here by a plain loop, the plain policy gradient, the value's squared error, the entropy
bonus, one SGD step), and the defaults learn CartPole."""

import jax
import jax.numpy as jnp
import numpy as np

import jaxrl
from jaxrl.components.networks import Actor, Critic, Torso
from jaxrl.core.train import build


def n_step_returns(reward, value, next_value, terminated, truncated, gamma):
    """G_t = r_t + gamma G_{t+1} inside an episode; at an episode's end (or the rollout's) the
    bootstrap is the value of the observation reached, none after a termination."""
    steps = reward.shape[0]
    returns = np.zeros_like(reward)
    for t in reversed(range(steps)):
        ends = terminated[t] | truncated[t] | (t == steps - 1)
        later = returns[t + 1] if t + 1 < steps else 0.0
        bootstrap = np.where(terminated[t], 0.0, next_value[t])
        returns[t] = reward[t] + gamma * np.where(ends, bootstrap, later)
    return returns


def test_one_update_is_the_hand_written_a2c_step():
    lr, gamma, ent, vf = 0.05, 0.9, 0.01, 0.5
    train = build("a2c", "CartPole-v1", overrides={
        "optimizer": "sgd", "lr": lr, "gamma": gamma, "ent_coef": ent, "vf_coef": vf, "max_grad_norm": 1e9,
        "num_envs": 4, "num_steps": 30, "total_steps": 1200})
    agent, hparams = train.agent, train.default_hparams
    state = agent.init(jax.random.PRNGKey(3), hparams, train.default_env_params)
    state, batch = agent.collect(state, hparams, jnp.int32(0))
    new_state, _ = agent.learn(state, hparams, batch, jnp.int32(0))

    traj = batch.traj
    assert bool(traj.done.any())  # the rollout crosses episode ends (30 steps from CartPole's start)
    torso = Torso(hidden_sizes=(64, 64), activation="tanh", kind="mlp", obs_ndim=1)
    actor, critic = Actor(2, True, torso), Critic(torso, 1)
    obs = traj.obs.reshape(-1, 4)
    value = critic.apply
    v = np.asarray(value(state.params["critic"], traj.obs))
    next_v = np.asarray(value(state.params["critic"], traj.next_obs))
    returns = n_step_returns(np.asarray(traj.reward), v, next_v, np.asarray(traj.terminated), np.asarray(traj.truncated), gamma)
    advantages = jnp.asarray((returns - v).reshape(-1))

    def loss(params):
        dist = actor.apply(params["actor"], obs)
        policy = -(dist.log_prob(traj.action.reshape(-1)) * advantages).mean()
        critic_loss = (0.5 * (value(params["critic"], obs) - returns.reshape(-1)) ** 2).mean()
        return policy + vf * critic_loss - ent * dist.entropy().mean()

    grads = jax.grad(loss)(state.params)
    expected = jax.tree.map(lambda p, g: p - lr * g, state.params, grads)
    for got, want in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_defaults_learn_cartpole():
    result = jaxrl.train("a2c", "CartPole-v1", num_seeds=2, overrides={"total_steps": 300_000})
    returns = result.final_returns
    assert returns.min() > 300, returns
