"""Classification value losses, n-step returns, Q(lambda) and Double-DQN targets against values
computed by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.components.gae import gae
from jaxrl.components.qlearning import bootstrap_action, epsilon_greedy, linear_schedule, n_step_return
from jaxrl.components.value_losses import ValueHead, categorical_projection, hl_gauss, support_centers, two_hot


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_hl_gauss_hand_computed():
    centers = jnp.array([0.0, 1.0, 2.0])
    # edges -0.5, 0.5, 1.5, 2.5; sigma = 0.75 x width 1
    masses = [_phi((hi - 1.0) / 0.75) - _phi((lo - 1.0) / 0.75) for lo, hi in [(-0.5, 0.5), (0.5, 1.5), (1.5, 2.5)]]
    expected = np.array(masses) / sum(masses)
    np.testing.assert_allclose(hl_gauss(jnp.array(1.0), centers, 0.75), expected, rtol=1e-5)


@pytest.mark.parametrize("target", [-3.3, 0.0, 7.77, 12.5])
def test_hl_gauss_sums_to_one_and_mean_matches_inside_support(target):
    centers = support_centers(-20.0, 20.0, 81)  # width 0.5
    probs = hl_gauss(jnp.array(target), centers)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    assert float(probs.min()) >= 0.0
    np.testing.assert_allclose(probs @ centers, target, atol=1e-3 * 0.5)


def test_hl_gauss_batched_and_clipped():
    centers = support_centers(0.0, 10.0, 11)
    probs = hl_gauss(jnp.array([[2.0, 50.0]]), centers)
    assert probs.shape == (1, 2, 11)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    # A target beyond the support is clipped to its edge: most mass on the last bin.
    assert int(jnp.argmax(probs[0, 1])) == 10


def test_two_hot_exact():
    centers = jnp.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(two_hot(jnp.array(1.25), centers), [0.0, 0.75, 0.25, 0.0], atol=1e-7)
    np.testing.assert_allclose(two_hot(jnp.array(3.0), centers), [0.0, 0.0, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(two_hot(jnp.array(-9.0), centers), [1.0, 0.0, 0.0, 0.0], atol=1e-7)
    targets = jnp.array([0.3, 1.9, 2.5, 0.0])
    np.testing.assert_allclose(two_hot(targets, centers) @ centers, targets, atol=1e-6)


def test_c51_projection_hand_computed_and_point_mass_is_two_hot():
    centers = jnp.array([0.0, 1.0, 2.0])
    # atom 0.5 (p 0.4) splits evenly between 0 and 1; atom 2.0 (p 0.6) sits on 2
    projected = categorical_projection(jnp.array([0.5, 2.0]), jnp.array([0.4, 0.6]), centers)
    np.testing.assert_allclose(projected, [0.2, 0.2, 0.6], atol=1e-7)
    # atoms beyond the support land on its edges
    np.testing.assert_allclose(categorical_projection(jnp.array([-5.0, 9.0]), jnp.array([0.3, 0.7]), centers), [0.3, 0.0, 0.7], atol=1e-7)
    point = categorical_projection(jnp.array([1.3, 1.3]), jnp.array([0.5, 0.5]), centers)
    np.testing.assert_allclose(point, two_hot(jnp.array(1.3), centers), atol=1e-7)


def test_value_head_value_and_losses():
    head = ValueHead("two_hot", num_bins=3, v_min=0.0, v_max=2.0)
    assert head.num_outputs == 3
    logits = jnp.log(jnp.array([0.2, 0.2, 0.6]))
    np.testing.assert_allclose(head.value(logits), 0.2 * 0 + 0.2 * 1 + 0.6 * 2, rtol=1e-6)
    # uniform prediction: cross-entropy log 3 for any target histogram
    np.testing.assert_allclose(head.loss(jnp.zeros(3), jnp.array(1.25)), math.log(3.0), rtol=1e-6)
    # two-hot of 1.25 is (0, .75, .25): cross-entropy against softmax(logits)
    expected = -(0.75 * math.log(0.2) + 0.25 * math.log(0.6))
    np.testing.assert_allclose(head.loss(logits, jnp.array(1.25)), expected, rtol=1e-6)
    mse = ValueHead("mse")
    assert mse.num_outputs == 1
    np.testing.assert_allclose(mse.loss(jnp.array(3.0), jnp.array(1.0)), 2.0)
    np.testing.assert_allclose(ValueHead("huber").loss(jnp.array(3.0), jnp.array(1.0), 1.0), 1.5)
    # the gradient never flows into the target
    grad = jax.grad(lambda t: ValueHead("hl_gauss", 3, 0.0, 2.0).loss(jnp.zeros(3), t))(1.0)
    assert float(grad) == 0.0


def test_n_step_return_hand_computed():
    r = jnp.array([[1.0], [2.0], [3.0]])
    false = jnp.zeros((3, 1), bool)
    # no episode end: 1 + 0.5*2 + 0.25*3, bootstrap from the last transition with 0.5^3
    ret, discount, last = n_step_return(r, false, false, 0.5)
    np.testing.assert_allclose(ret, [2.75])
    np.testing.assert_allclose(discount, [0.125])
    assert last.tolist() == [2]
    ends = jnp.array([[False], [True], [False]])
    # terminated at transition 1: 1 + 0.5*2 and no bootstrap
    ret, discount, last = n_step_return(r, ends, ends, 0.5)
    np.testing.assert_allclose(ret, [2.0])
    np.testing.assert_allclose(discount, [0.0])
    assert last.tolist() == [1]
    # truncated at transition 1: same sum, bootstrapped from its final observation with 0.5^2
    ret, discount, last = n_step_return(r, false, ends, 0.5)
    np.testing.assert_allclose(ret, [2.0])
    np.testing.assert_allclose(discount, [0.25])
    assert last.tolist() == [1]


def test_double_dqn_bootstrap_action():
    online = jnp.array([[1.0, 3.0, 2.0]])
    target = jnp.array([[5.0, 1.0, 0.0]])
    assert bootstrap_action(online, target, double=False).tolist() == [0]  # argmax of the target net
    assert bootstrap_action(online, target, double=True).tolist() == [1]  # argmax of the online net
    # the value used is then the target network's at that action: 1.0 for Double DQN, 5.0 for DQN


def test_q_lambda_through_gae_matches_the_recursion():
    # PQN's Q(lambda): G_t = r_t + g (1 - term_t) [q'_t + lam (1 - done_t) (G_{t+1} - q'_t)]
    r = jnp.array([1.0, 0.5, 2.0, 1.0])
    q_max = jnp.array([3.0, 2.0, 4.0, 1.0])  # max_a Q(s_t, a)
    q_tp1 = jnp.array([2.0, 4.0, 7.0, 5.0])  # max_a Q(s'_t, a); s'_2 is a truncation's final obs
    term = jnp.array([False, False, False, True])
    done = jnp.array([False, False, True, True])
    g, lam = 0.9, 0.5
    expected = np.zeros(4)
    following = 0.0
    for t in reversed(range(4)):
        expected[t] = r[t] + g * (1 - term[t]) * (q_tp1[t] + lam * (1 - done[t]) * (following - q_tp1[t]))
        following = expected[t]
    # hand values: G_3 = 1; G_2 = 2 + 0.9*7 = 8.3; G_1 = 0.5 + 0.9*(4 + 0.5*(8.3-4)) = 6.035;
    # G_0 = 1 + 0.9*(2 + 0.5*(6.035-2)) = 4.61575
    np.testing.assert_allclose(expected, [4.61575, 6.035, 8.3, 1.0], rtol=1e-6)
    _, targets = gae(r, q_max, q_tp1, term, done, g, lam)
    np.testing.assert_allclose(targets, expected, rtol=1e-5)


def test_epsilon_greedy_and_schedule():
    np.testing.assert_allclose(linear_schedule(1.0, 0.1, 100.0, jnp.array([0.0, 50.0, 100.0, 500.0])), [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    q = jnp.tile(jnp.array([0.0, 2.0, 1.0]), (4000, 1))
    greedy = epsilon_greedy(jax.random.key(0), q, 0.0)
    assert bool((greedy == 1).all())
    mixed = epsilon_greedy(jax.random.key(1), q, 0.3)
    # greedy with probability 0.7 + 0.3/3 = 0.8; each other action 0.1
    np.testing.assert_allclose(np.bincount(np.asarray(mixed), minlength=3) / 4000, [0.1, 0.8, 0.1], atol=0.025)
