"""LPG's meta-step written the plain way, in one file (as a researcher writes it from the paper,
PureJaxRL-style): tabular agents as two arrays, the update network, K inner SGD updates through a
scan, a fresh rollout, the policy-gradient meta-objective with a per-agent value table trained by
Adam, LPG's four regularisers, Adam with clipping on the rule, lifetimes that restart. Only the
environment is the kit's (``envs.gridworld``), so that the comparison is the meta-step's machinery.
The same computation as ``jaxrl.rules.meta.MetaGradient.step`` (benchmark: lpg_meta.py)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from envs.gridworld import SPACES, GridWorld


class Rule(nn.Module):
    bins: int
    hidden: int

    @nn.compact
    def __call__(self, r, term, done, pi_a, y, y_next):
        phi = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(1)])
        x = jnp.stack([r, term, jnp.full_like(r, 0.99), pi_a, phi(y)[..., 0], (1 - term) * phi(y_next)[..., 0]], -1)
        cell = nn.OptimizedLSTMCell(self.hidden)
        carry = cell.initialize_carry(jax.random.PRNGKey(0), x.shape[1:])

        def step(cell, carry, inp):
            xt, d = inp
            carry = jax.tree.map(lambda c: jnp.where(d[:, None], 0.0, c), carry)
            return cell(carry, xt)

        _, h = nn.scan(step, variable_broadcast="params", split_rngs={"params": False}, reverse=True)(cell, carry, (x, done))
        h = nn.relu(h)
        return nn.Dense(1)(h)[..., 0], jax.nn.softmax(nn.Dense(self.bins)(h))


def make(num_agents=32, num_envs=16, num_steps=20, inner=5, hidden=64, bins=30, lr=40.0, alpha_y=0.5):
    env = GridWorld(6, 3)
    space = SPACES["small"][2]
    obs_size, actions = env.observation_size, env.num_actions
    rule = Rule(bins, hidden)
    meta_tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-4))
    critic_tx = optax.adam(0.05)
    agent_tx = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(lr))

    def new_agent(key):
        level_key, reset_key = jax.random.split(key)
        level = env.sample_level(level_key, space)
        obs, state = jax.vmap(env.reset_to_level, in_axes=(0, None))(jax.random.split(reset_key, num_envs), level)
        theta = {"pi": jnp.zeros((obs_size, actions)), "y": jnp.zeros((obs_size, bins))}
        critic = jnp.zeros(obs_size)
        return dict(theta=theta, opt=agent_tx.init(theta), critic=critic, copt=critic_tx.init(critic), state=state,
                    obs=obs, n=jnp.int32(0), life=(level.lifetime + inner - 1) // inner * inner, key=key)

    def rollout(theta, state, obs, key):
        def step(carry, key):
            state, obs = carry
            act_key, env_key = jax.random.split(key)
            action = jax.random.categorical(act_key, obs @ theta["pi"])
            nobs, nstate, r, term, trunc, info = jax.vmap(env.step)(jax.random.split(env_key, num_envs), state, action)
            return (nstate, nobs), (obs, action, r, term, term | trunc, info["final_observation"])

        (state, obs), traj = jax.lax.scan(step, (state, obs), jax.random.split(key, num_steps))
        return state, obs, traj

    def update(theta, opt, eta, traj):
        obs, action, r, term, done, nobs = traj
        logp = jax.nn.log_softmax(obs @ theta["pi"])
        logp_a = jnp.take_along_axis(logp, action[..., None], -1)[..., 0]
        y, y_next = jax.nn.softmax(obs @ theta["y"]), jax.nn.softmax(nobs @ theta["y"])
        inputs = jax.lax.stop_gradient((r, term.astype(jnp.float32), done, jnp.exp(logp_a), y, y_next))
        pi_hat, y_hat = rule.apply(eta, *inputs)
        log_y_hat = jnp.log(0.999 * y_hat + 0.001 / bins)

        def loss(th):
            lp = jnp.take_along_axis(jax.nn.log_softmax(obs @ th["pi"]), action[..., None], -1)[..., 0]
            ly = jax.nn.log_softmax(obs @ th["y"])
            return -jnp.mean(pi_hat * lp) + alpha_y * jnp.mean(jnp.sum(jnp.exp(ly) * (ly - log_y_hat), -1))

        updates, opt = agent_tx.update(jax.grad(loss)(theta), opt, theta)
        return optax.apply_updates(theta, updates), opt, jnp.mean(pi_hat**2), jnp.mean(jnp.sum(y_hat**2, -1))

    def gae_targets(critic, traj):
        obs, _, r, term, done, nobs = traj
        v, nv = obs @ critic, nobs @ critic
        delta = r + 0.99 * (1 - term) * nv - v

        def back(a, x):
            d, dn = x
            a = d + 0.99 * 0.95 * (1 - dn) * a
            return a, a

        _, adv = jax.lax.scan(back, jnp.zeros_like(delta[0]), (delta, done.astype(jnp.float32)), reverse=True)
        return adv, adv + v

    def agent_meta_loss(eta, a):
        def inner_step(carry, k):
            theta, opt, state, obs, key = carry
            key, rkey = jax.random.split(key)
            state, obs, traj = rollout(jax.lax.stop_gradient(theta), state, obs, rkey)
            theta, opt, pi2, y2 = update(theta, opt, eta, traj)
            return (theta, opt, state, obs, key), (traj, pi2, y2)

        (theta, opt, state, obs, key), (trajs, pi2, y2) = jax.lax.scan(
            inner_step, (a["theta"], a["opt"], a["state"], a["obs"], a["key"]), jnp.arange(inner))
        key, rkey = jax.random.split(key)
        state, obs, fresh = rollout(jax.lax.stop_gradient(theta), state, obs, rkey)
        adv, _ = gae_targets(a["critic"], fresh)
        adv = jax.lax.stop_gradient((adv - adv.mean()) / (adv.std() + 1e-8))
        logp = jax.nn.log_softmax(fresh[0] @ theta["pi"])
        ly = jax.nn.log_softmax(fresh[0] @ theta["y"])
        logp_a = jnp.take_along_axis(logp, fresh[1][..., None], -1)[..., 0]
        loss = (-jnp.mean(logp_a * adv) + 0.05 * jnp.sum(jnp.exp(logp) * logp, -1).mean()
                + 1e-3 * jnp.sum(jnp.exp(ly) * ly, -1).mean() + 5e-3 * pi2.mean() + 1e-3 * y2.mean())
        critic, copt = a["critic"], a["copt"]
        for i in range(inner + 1):
            traj = jax.tree.map(lambda x: x[i], trajs) if i < inner else fresh
            _, target = gae_targets(a["critic"], traj)  # targets from the segment's first critic
            g = jax.grad(lambda c: 0.5 * jnp.mean((traj[0] @ c - target) ** 2))(critic)
            u, copt = critic_tx.update(g, copt, critic)
            critic = optax.apply_updates(critic, u)
        out = dict(a, theta=jax.lax.stop_gradient(theta), opt=jax.lax.stop_gradient(opt), critic=critic, copt=copt,
                   state=state, obs=obs, n=a["n"] + inner, key=key)
        return loss, out

    def init(key):
        eta_key, agents_key = jax.random.split(key)
        dummy = jnp.zeros((2, 1))
        eta = rule.init(eta_key, dummy, dummy, dummy.astype(bool), dummy, jnp.zeros((2, 1, bins)), jnp.zeros((2, 1, bins)))
        return dict(eta=eta, opt=meta_tx.init(eta), agents=jax.vmap(new_agent)(jax.random.split(agents_key, num_agents)), key=key)

    def meta_step(s):
        def total(eta):
            losses, agents = jax.vmap(agent_meta_loss, in_axes=(None, 0))(eta, s["agents"])
            return losses.mean(), agents

        (loss, agents), grads = jax.value_and_grad(total, has_aux=True)(s["eta"])
        updates, opt = meta_tx.update(grads, s["opt"], s["eta"])
        key, reset_key = jax.random.split(s["key"])
        ended = agents["n"] >= agents["life"]
        fresh = jax.vmap(new_agent)(jax.random.split(reset_key, num_agents))
        agents = jax.tree.map(lambda f, o: jnp.where(ended.reshape(ended.shape + (1,) * (o.ndim - 1)), f, o), fresh, agents)
        return dict(eta=optax.apply_updates(s["eta"], updates), opt=opt, agents=agents, key=key), loss

    return jax.jit(init), jax.jit(meta_step)
