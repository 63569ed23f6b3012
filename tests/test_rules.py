"""Learned update rules: the hand-set A2C rule in the LPG agent's loss is A2C's policy gradient
exactly, its value read out of y learns; the learned rule's network sees what the papers say."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.components.gae import gae
from jaxrl.components.value_losses import hl_gauss
from jaxrl.core.contract import Progress
from jaxrl.core.train import build
from jaxrl.rules.agent import SMOOTHING, Head
from jaxrl.rules.lpg import RuleInputs, UpdateNetwork, bin_centres, make_rule

from test_a2c import n_step_returns


def gae_numpy(reward, value, next_value, terminated, done, gamma, lam):
    advantages = np.zeros_like(reward)
    later = np.zeros_like(reward[0])
    for t in reversed(range(reward.shape[0])):
        delta = reward[t] + gamma * np.where(terminated[t], 0.0, next_value[t]) - value[t]
        later = delta + gamma * lam * np.where(done[t], 0.0, later)
        advantages[t] = later
    return advantages


def one_update(env, overrides):
    train = build("lpg", env, overrides={"rule": "a2c", "optimizer": "sgd", "max_grad_norm": 1e9, "total_steps": 3200,
                                         **overrides})
    agent, hparams = train.agent, train.default_hparams
    state = agent.init(jax.random.PRNGKey(0), hparams, train.default_env_params)
    for step in range(3):  # a few updates first, so that pi and y are not uniform
        state, traj = agent.collect(state, hparams, jnp.int32(step))
        state, _ = agent.learn(state, hparams, traj, jnp.int32(step))
    state, traj = agent.collect(state, hparams, jnp.int32(3))
    new_state, _ = agent.learn(state, hparams, traj, jnp.int32(3))
    return train, agent, hparams, state, new_state, traj


@pytest.mark.parametrize("ent_coef", [0.0, 0.05])
def test_a2c_rule_in_the_lpg_loss_is_a2cs_policy_gradient(ent_coef):
    lr, gamma, lam = 2.0, 0.9, 0.8
    train, agent, hparams, state, new_state, traj = one_update(
        "gridworld/dense", {"lr": lr, "gamma": gamma, "gae_lambda": lam, "ent_coef": ent_coef, "num_bins": 11,
                            "v_min": -5.0, "v_max": 5.0})
    net, params = agent.net, state.params
    centres = np.linspace(-5.0, 5.0, 11)
    _, y_logits = net.apply(params, traj.obs)
    _, y_next_logits = net.apply(params, traj.next_obs)
    value = np.asarray(jax.nn.softmax(y_logits)) @ centres
    next_value = np.asarray(jax.nn.softmax(y_next_logits)) @ centres
    reward, terminated, done = (np.asarray(x) for x in (traj.reward, traj.terminated, traj.done))
    advantage = jnp.asarray(gae_numpy(reward, value, next_value, terminated, done, gamma, lam))

    def a2c_policy_loss(policy_params):
        logits, _ = net.apply({"params": {**params["params"], "policy": policy_params}}, traj.obs)
        log_pi = jax.nn.log_softmax(logits)
        log_pi_a = jnp.take_along_axis(log_pi, traj.action[..., None], -1)[..., 0]
        # A2C: -E[A log pi(a|s)]; its entropy bonus by the score function, -E[log pi(a|s)] per sample
        return -jnp.mean(advantage * log_pi_a) + ent_coef * jnp.mean(jax.lax.stop_gradient(log_pi_a) * log_pi_a)

    grads = jax.grad(a2c_policy_loss)(params["params"]["policy"])
    expected = jax.tree.map(lambda p, g: p - lr * g, params["params"]["policy"], grads)
    for got, want in zip(jax.tree.leaves(new_state.params["params"]["policy"]), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(grads["kernel"]).max()) > 1e-4  # a real step was compared


def test_a2c_rule_entropy_term_is_the_entropy_gradient_in_expectation():
    """E_a[-log pi(a) grad log pi(a)] = grad H(pi), the identity behind the rule's entropy term."""
    logits = jnp.array([0.3, -1.2, 2.0, 0.1])
    grad_h = jax.grad(lambda z: -jnp.sum(jax.nn.softmax(z) * jax.nn.log_softmax(z)))(logits)
    pi = jax.nn.softmax(logits)
    score = jax.vmap(lambda a: jax.grad(lambda z: jax.nn.log_softmax(z)[a])(logits))(jnp.arange(4))
    expected = jnp.sum(pi[:, None] * (-jnp.log(pi))[:, None] * score, 0)
    np.testing.assert_allclose(expected, grad_h, atol=1e-6)


def test_a2c_rule_y_target_is_the_lambda_return_histogram():
    centres = bin_centres(21, -2.0, 2.0)
    rule, _ = make_rule("a2c", num_bins=21, hidden_size=8, v_min=-2.0, v_max=2.0)
    t, b = 4, 1
    y = jax.nn.one_hot(jnp.full((t, b), 10), 21)  # value 0 everywhere
    inputs = RuleInputs(jnp.array([[0.0], [0.0], [1.0], [0.0]]), jnp.array([[False], [False], [True], [False]]),
                        jnp.array([[False], [False], [True], [False]]), jnp.float32(0.5), jnp.ones((t, b)),
                        jnp.zeros((t, b)), y, y, jnp.float32(0.0), jnp.float32(1.0))
    pi_hat, y_hat = rule({"gae_lambda": 1.0, "ent_coef": 0.0}, inputs)
    returns = n_step_returns(np.array([[0.0], [0.0], [1.0], [0.0]]), np.zeros((t, b)), np.zeros((t, b)),
                             np.array([[0], [0], [1], [0]], bool), np.zeros((t, b), bool), 0.5)
    np.testing.assert_allclose(pi_hat, returns, atol=1e-6)  # advantage = return - 0
    np.testing.assert_allclose(y_hat, hl_gauss(jnp.asarray(returns), centres), atol=1e-6)
    np.testing.assert_allclose(np.asarray(y_hat) @ np.asarray(centres), returns, atol=2e-3)


def test_value_read_out_of_y_learns_like_a_critic():
    """Under the a2c rule the value E_y[c] comes to explain the lambda-returns it is trained on
    (explained variance from about 0 to above 0.5), as A2C's critic does."""
    train = build("lpg", "chain/short", env_overrides={"min_length": 8, "max_length": 8},
                  overrides={"rule": "a2c", "total_steps": 320 * 150, "num_bins": 21, "v_min": -2.0, "v_max": 2.0})
    agent, hparams = train.agent, train.default_hparams
    centres = np.linspace(-2.0, 2.0, 21)

    def explained_variance(state, traj):
        inputs = agent.rule_inputs(state.params, traj, hparams, Progress(jnp.int32(0), 1), 1.0)
        value = inputs.y @ centres
        _, target = gae(inputs.reward, value, inputs.y_next @ centres, inputs.terminated, inputs.done, 0.99, 0.95)
        return float(1.0 - jnp.var(target - value) / jnp.var(target))

    @jax.jit
    def updates(state, start):
        def body(state, step):
            state, traj = agent.collect(state, hparams, step)
            return agent.learn(state, hparams, traj, step)[0], None
        return jax.lax.scan(body, state, start + jnp.arange(150))[0]

    state = agent.init(jax.random.PRNGKey(0), hparams, train.default_env_params)
    before = explained_variance(*agent.collect(state, hparams, jnp.int32(0)))
    state = updates(state, jnp.int32(0))
    after = explained_variance(*agent.collect(state, hparams, jnp.int32(0)))
    assert abs(before) < 0.05 and after > 0.5, (before, after)


def test_update_network_runs_backwards_and_resets_at_episode_ends():
    """A reward after an episode's end cannot reach the steps before it; the temporal rule sees
    n/N and log N, and only it."""
    net = UpdateNetwork(num_bins=4, hidden_size=8, temporal=True)
    t, b = 6, 1
    base = RuleInputs(jnp.zeros((t, b)), jnp.zeros((t, b), bool), jnp.zeros((t, b), bool).at[2, 0].set(True),
                      jnp.float32(0.99), jnp.full((t, b), 0.5), jnp.full((t, b), np.log(0.5)), jnp.full((t, b, 4), 0.25),
                      jnp.full((t, b, 4), 0.25), jnp.float32(0.3), jnp.float32(250.0))
    params = net.init(jax.random.PRNGKey(0), base)
    pi_hat, _ = net.apply(params, base)
    later = net.apply(params, base.replace(reward=base.reward.at[4, 0].set(1.0)))[0]
    np.testing.assert_array_equal(later[:3], pi_hat[:3])  # the episode ended at step 2
    assert not np.allclose(later[3:5], pi_hat[3:5])
    earlier = net.apply(params, base.replace(reward=base.reward.at[1, 0].set(1.0)))[0]
    np.testing.assert_array_equal(earlier[2:], pi_hat[2:])  # backwards: a step sees only its future
    assert not np.allclose(net.apply(params, base.replace(progress=jnp.float32(0.9)))[0], pi_hat)
    assert not np.allclose(net.apply(params, base.replace(lifetime=jnp.float32(5000.0)))[0], pi_hat)
    plain = UpdateNetwork(num_bins=4, hidden_size=8)
    plain_params = plain.init(jax.random.PRNGKey(0), base)
    np.testing.assert_array_equal(plain.apply(plain_params, base.replace(progress=jnp.float32(0.9)))[0],
                                  plain.apply(plain_params, base)[0])
    assert SMOOTHING > 0


def test_lifetime_inputs_are_progress_and_log_lifetime():
    """TA-LPG's rule sees n/N in [0, 1] and log(N) / 10 (a public implementation fed the raw n and N)."""
    from jaxrl.rules.lpg import LIFETIME_SCALE, lifetime_features

    progress, log_lifetime = lifetime_features(jnp.float32(7 / 250), jnp.float32(250.0), (2, 3))
    np.testing.assert_allclose(progress, 7 / 250)
    np.testing.assert_allclose(log_lifetime, np.log(250.0) / LIFETIME_SCALE, rtol=1e-6)
    train = build("ta-lpg", "gridworld", overrides={"total_steps": 3200, "rule_hidden": 8, "num_bins": 4})
    agent, hparams = train.agent, train.default_hparams
    state, traj = agent.collect(agent.init(jax.random.PRNGKey(0), hparams, train.default_env_params), hparams, jnp.int32(0))
    inputs = agent.rule_inputs(state.params, traj, hparams, Progress(jnp.int32(7), 250), 250)
    assert float(inputs.progress) == pytest.approx(7 / 250) and float(inputs.lifetime) == 250.0


def test_a_table_reads_the_same_row_from_a_one_hot_and_from_its_index():
    """The tabular agent's rollouts store each one-hot as its index (``envs.OneHotIndex``); the
    table must read the row the one-hot names, whichever form it gets."""
    env, params = envs.make("gridworld")
    indexed = envs.OneHotIndex(env)
    assert indexed.observation_space(params).shape == (1,) and not indexed.one_hot_observation
    head = Head(5, env.observation_size)
    key = jax.random.PRNGKey(0)
    weights = head.init(key, jnp.zeros((1, env.observation_size)))
    table = jax.random.normal(key, weights["params"]["kernel"].shape)
    weights = {"params": {"kernel": table}}
    (obs, state), (index, same) = env.reset(key, params), indexed.reset(key, params)
    seen = set()
    for t in range(40):
        step_key = jax.random.fold_in(key, t)
        assert float(index[0]) == int(jnp.argmax(obs))
        np.testing.assert_array_equal(head.apply(weights, obs), table[jnp.argmax(obs)])
        np.testing.assert_array_equal(head.apply(weights, index), table[jnp.argmax(obs)])
        seen.add(int(index[0]))
        action = jax.random.randint(jax.random.fold_in(step_key, 1), (), 0, 5)
        obs, state, _, _, _, info = env.step(step_key, state, action, params)
        index, same, _, _, _, index_info = indexed.step(step_key, same, action, params)
        assert float(index_info["final_observation"][0]) == int(jnp.argmax(info["final_observation"]))
    assert len(seen) > 3  # the walk visited several states
