"""DiscoRL's Disco103 update rule (Oh et al., Nature 2025, "Discovering state-of-the-art
reinforcement learning algorithms"), ported to pure JAX functions of a weight dict, and run from
its published weights (``disco_103.npz``, Copyright 2025 Google LLC, Apache 2.0; see
``load_weights``). Written from the paper, the weights' README (``../shared/disco103``) and our
reading of google-deepmind/disco_rl at 9059a29; no code of it is copied.

The agent outputs, per state, policy logits, a prediction y [600], one z [600] per action, an
auxiliary one-step policy per action and categorical action values q [601 bins] per action. For a
rollout of T transitions the rule computes:

* values: Q and the target network's Q-bar decoded from the bins (bin k stands for k - 300 in the
  compressed space h(x) = sign(x)(sqrt(|x| + 1) - 1) + 0.001 x), V and V-bar weighted by the online
  policy, Retrace targets G (gamma 0.997 cut at terminals, lambda 0.95, c = lambda min(1, rho)),
  advantages G - V-bar normalised by a moving average carried across updates (decay 0.99,
  debiased), and the TD error G - Q(a) with its own normaliser;
* the meta-network: 27 features per step (section ``features``) and an action embedding by a small
  set network; a per-trajectory LSTM of 256 run backwards in time, cleared where an episode ended;
  its output multiplied by a linear map of the lifetime meta-LSTM's hidden state (always: the
  reference skips it when its type check fails under jit); heads pi_hat (per action, through a
  set layer), y_hat, z_hat and a scalar fed to the meta-LSTM; the meta-LSTM (128) takes one step
  per update from the batch mean of an embedding of its own features;
* the agent's loss per step: KL(pi_hat || pi) + KL(y_hat || y) + KL(z_hat || z[a]) + KL(pi_t+1 ||
  aux_pi[a]) (1 - terminal) + 0.2 x the cross-entropy of q[a] to the two-hot of h(G), averaged over
  the steps the mask keeps.

Every recurrent cell here is the reference's: gates (i, g, f, o) from [input, h] @ w + b, with 1
added to the forget gate.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.values import ConfigError

MAIN, META = "lstm/", "lstm/~/meta_lstm/~unroll/"
NUM_BINS, Y_SIZE, LSTM_SIZE, META_SIZE = 601, 600, 256, 128
MAX_ABS_VALUE, EPSILON = 300.0, 1e-3
SETTINGS = dict(pi_cost=1.0, y_cost=1.0, z_cost=1.0, aux_policy_cost=1.0, value_cost=0.2, target_params_coeff=0.9,
                td_lambda=0.95, discount=0.997, ema_decay=0.99, ema_eps=1e-6)


def _shapes() -> dict[str, tuple[int, ...]]:
    """Every weight of the rule by its name in disco_103.npz (haiku's module paths)."""
    def copies(prefix):
        return {f"{prefix}mlp/~/linear_0": (Y_SIZE, 16), f"{prefix}mlp/~/linear_1": (16, 1),  # ynet
                f"{prefix}mlp_1/~/linear_0": (Y_SIZE, 16), f"{prefix}mlp_1/~/linear_1": (16, 1),  # znet
                f"{prefix}sequential/conv1_d": (1, 18, 16), f"{prefix}sequential/conv1_d_1": (1, 32, 2)}  # set net

    layers = {**copies(MAIN), **copies(META),
              f"{MAIN}lstm/linear": (27 + LSTM_SIZE, 4 * LSTM_SIZE), f"{MAIN}linear": (META_SIZE, LSTM_SIZE),
              f"{MAIN}linear_1": (LSTM_SIZE, 1), f"{MAIN}linear_2": (LSTM_SIZE, Y_SIZE), f"{MAIN}linear_3": (LSTM_SIZE, Y_SIZE),
              f"{MAIN}sequential_1/conv1_d": (1, 2 * (LSTM_SIZE + 2), 16), f"{MAIN}linear_4": (16, 1),
              f"{META}mlp_2/~/linear_0": (29, 16), f"{META}lstm/linear": (16 + META_SIZE, 4 * META_SIZE)}
    return {**{f"{k}/w": v for k, v in layers.items()}, **{f"{k}/b": (v[-1],) for k, v in layers.items()}}


WEIGHT_SHAPES = _shapes()


def load_weights(path: str | Path) -> dict[str, jax.Array]:
    """The rule's weights from an npz file named as ``disco_103.npz``; ``ConfigError`` with one
    line for a missing or unreadable file, a missing, extra or misshaped array."""
    try:
        with np.load(Path(path).expanduser(), allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(f"cannot read Disco weights {path}: {str(error).splitlines()[0]}") from None
    missing = sorted(set(WEIGHT_SHAPES) - set(arrays))
    extra = sorted(set(arrays) - set(WEIGHT_SHAPES))
    if missing or extra:
        raise ConfigError(f"{path} is not a Disco103 weight file: " + (f"missing {missing[0]}" if missing else f"unknown array {extra[0]}")
                          + f" ({len(missing)} missing, {len(extra)} unknown)")
    for name, shape in WEIGHT_SHAPES.items():
        if arrays[name].shape != shape or not np.isfinite(arrays[name]).all():
            raise ConfigError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape} (or non-finite values)")
    return {name: jnp.asarray(array, jnp.float32) for name, array in arrays.items()}


def init_weights(key: jax.Array) -> dict[str, jax.Array]:
    """Random weights of the same shapes, as the reference draws them to meta-train a rule from
    scratch: each weight from a normal cut at two standard deviations (not rescaled after the
    cut), std 0.3 for the heads of meta_input_emb, y_hat, z_hat and pi_hat, 1.0 for the lifetime
    interaction, 1 / sqrt(fan-in) for every other layer; biases 0. With the meta-LSTM state 0 the
    interaction multiplies by 0 at a lifetime's first update (y_hat = z_hat = 0 there)."""
    special = {f"{MAIN}linear_1/w": 0.3, f"{MAIN}linear_2/w": 0.3, f"{MAIN}linear_3/w": 0.3, f"{MAIN}linear_4/w": 0.3,
               f"{MAIN}linear/w": 1.0}
    keys = jax.random.split(key, len(WEIGHT_SHAPES))
    out = {}
    for k, (name, shape) in zip(keys, sorted(WEIGHT_SHAPES.items())):
        std = special.get(name, 1.0 / np.sqrt(np.prod(shape[:-1])))  # fan-in: a kernel-1 convolution's too
        out[name] = jnp.zeros(shape) if name.endswith("/b") else std * jax.random.truncated_normal(k, -2.0, 2.0, shape)
    return out


# ---------------------------------------------------------------------------- pieces
def slog(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def compress(x):
    """h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x."""
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + EPSILON * x


def decompress(x):
    """h's exact inverse."""
    z = jnp.sqrt(1.0 + 4.0 * EPSILON * (EPSILON + 1.0 + jnp.abs(x))) / (2.0 * EPSILON) - 1.0 / (2.0 * EPSILON)
    return jnp.sign(x) * (z * z - 1.0)


def decode(logits):
    """The scalar value of categorical logits over the 601 bins."""
    support = jnp.linspace(-MAX_ABS_VALUE, MAX_ABS_VALUE, NUM_BINS)
    return decompress(jax.nn.softmax(logits) @ support)


def two_hot(value):
    """The two-hot distribution of a compressed value on the bins (clipped to the support)."""
    value = jnp.clip(value, -MAX_ABS_VALUE, MAX_ABS_VALUE)
    span = 2 * MAX_ABS_VALUE
    position = (value + MAX_ABS_VALUE) / span * (NUM_BINS - 1)
    low, high = jnp.floor(position), jnp.ceil(position)
    value_low = low / (NUM_BINS - 1) * span - MAX_ABS_VALUE
    value_high = high / (NUM_BINS - 1) * span - MAX_ABS_VALUE
    p_low = (value_high - value) / (value_high - value_low + 1e-5)
    same = low == high
    lo = jax.nn.one_hot(low.astype(jnp.int32), NUM_BINS)
    hi = jax.nn.one_hot(high.astype(jnp.int32), NUM_BINS)
    return jnp.where(same[..., None], lo, lo * p_low[..., None] + hi * (1.0 - p_low)[..., None])


def kl(p_logits, q_logits):
    """KL(p || q) of two logit vectors over the last axis."""
    log_p = jax.nn.log_softmax(p_logits)
    return jnp.sum(jnp.exp(log_p) * (log_p - jax.nn.log_softmax(q_logits)), -1)


def select(x, actions):
    """x[t, b, actions[t, b]] for x [T, B, A, ...]."""
    return jnp.take_along_axis(x, actions.reshape(actions.shape + (1,) * (x.ndim - 2)), axis=2)[:, :, 0]


def linear(w: Mapping[str, Any], name: str, x):
    kernel = w[f"{name}/w"]
    return x @ (kernel[0] if kernel.ndim == 3 else kernel) + w[f"{name}/b"]


def mlp(w, name, x):
    """600 -> 16 -> ReLU -> 1."""
    return linear(w, f"{name}/~/linear_1", jax.nn.relu(linear(w, f"{name}/~/linear_0", x)))


def set_layer(w, name, x):
    """[..., A, C]: each action's channels beside their mean over the actions, a linear map, ReLU."""
    pooled = jnp.broadcast_to(x.mean(-2, keepdims=True), x.shape)
    return jax.nn.relu(linear(w, name, jnp.concatenate([x, pooled], -1)))


def lstm_step(w, name, x, state):
    h, c = state
    gates = linear(w, name, jnp.concatenate([x, h], -1))
    i, g, f, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jnp.tanh(c) * jax.nn.sigmoid(o), c


# ---------------------------------------------------------------------------- values
def ema_update(state, x, decay):
    """A moving average of x's mean and mean square: (m1, m2, product of decays), updated first."""
    m1, m2, d = state
    return decay * m1 + (1 - decay) * jnp.mean(x), decay * m2 + (1 - decay) * jnp.mean(x * x), decay * d


def ema_normalise(state, x, subtract_mean=True):
    m1, m2, d = state
    mean = m1 / (1 - d)
    var = jnp.maximum(m2 / (1 - d) - mean * mean, 0.0)
    return ((x - mean) if subtract_mean else x) / (jnp.sqrt(var + 1e-12) + 1e-6)


def retrace(rewards, discount, trace, q_a, v):
    """Retrace targets G [T, B] for the actions taken: G_T-1 = r + gamma V_T and
    G_t = r_t + gamma_t (V_t+1 - c_t+1 Q_t+1(a_t+1) + c_t+1 G_t+1), from the target network's
    Q(a) [T, B] and V [T+1, B], discounts and trace coefficients c [T, B]."""
    def backward(later, step):
        reward, gamma, c, q_now, v_next = step
        g_next, c_next, q_next = later
        target = reward + gamma * (v_next - c_next * q_next + c_next * g_next)
        return (target, c, q_now), target

    last = rewards[-1] + discount[-1] * v[-1]
    steps = (rewards[:-1], discount[:-1], trace[:-1], q_a[:-1], v[1:-1])
    _, earlier = jax.lax.scan(backward, (last, trace[-1], q_a[-1]), steps, reverse=True)
    return jnp.concatenate([earlier, last[None]])


def values(x: Mapping[str, Any], adv_ema, td_ema, settings=SETTINGS) -> dict[str, Any]:
    """Q, V, Retrace targets, advantages and their normalisers (see the module docstring). ``x``
    holds the agent's outputs (time-major, T+1 states) and the rollout."""
    pi = jax.nn.softmax(x["logits"])
    q, q_bar = decode(x["q"]), decode(x["target_q"])  # [T+1, B, A]
    v, v_bar = jnp.sum(pi * q, -1), jnp.sum(pi * q_bar, -1)
    actions = x["actions"][:-1]
    log_pi_a = select(jax.nn.log_softmax(x["logits"][:-1]), actions)
    log_mu_a = select(jax.nn.log_softmax(x["behaviour_logits"][:-1]), actions)
    rho = jnp.exp(log_pi_a - log_mu_a)
    discount = settings["discount"] * (1.0 - x["is_terminal"].astype(jnp.float32))
    trace = settings["td_lambda"] * jnp.minimum(1.0, rho)
    target = jax.lax.stop_gradient(retrace(x["rewards"], discount, trace, select(q_bar[:-1], actions), v_bar))
    adv = target - v_bar[:-1]
    qv_adv = q_bar - v_bar[..., None]
    q_td = target - select(q[:-1], actions)
    adv_ema = ema_update(adv_ema, adv, settings["ema_decay"])
    td_ema = ema_update(td_ema, q_td, settings["ema_decay"])
    return dict(q=q, q_bar=q_bar, v=v, v_bar=v_bar, rho=rho, target=target, adv=adv, qv_adv=qv_adv, q_td=q_td,
                normalized_adv=ema_normalise(adv_ema, adv), normalized_qv_adv=ema_normalise(adv_ema, qv_adv),
                normalized_q_td=ema_normalise(td_ema, q_td, subtract_mean=False), adv_ema=adv_ema, td_ema=td_ema)


# ---------------------------------------------------------------------------- the meta-network
def features(w, prefix: str, x, val) -> tuple[jax.Array, jax.Array]:
    """The 27 features per step [T, B, 27] and the action embedding [T, B, A, 2], with the
    ynet/znet/set net of ``prefix`` (the main network's or the meta-LSTM's copy)."""
    pi = jax.lax.stop_gradient(jax.nn.softmax(x["logits"]))  # [T+1, B, A]
    actions = x["actions"][:-1]
    pair = lambda s: jnp.concatenate([s[:-1], s[1:]], -1)  # noqa: E731  (t, then t+1)
    taken = lambda probs: select(probs[:-1], actions)[..., None]  # noqa: E731
    ynet = lambda logits: mlp(w, f"{prefix}mlp", jax.nn.softmax(logits))  # noqa: E731  [..., 1]
    znet = lambda logits: mlp(w, f"{prefix}mlp_1", jax.nn.softmax(logits))[..., 0]  # noqa: E731  [T+1, B, A]

    def z_features(z_logits):
        per_action = znet(z_logits)
        return [select(per_action[:-1], actions)[..., None], pair(jnp.sum(pi * per_action, -1)[..., None]),
                pair(per_action.max(-1)[..., None])]

    columns = [taken(pi), taken(jax.nn.softmax(x["behaviour_logits"])), slog(x["rewards"])[..., None],
               1.0 - x["is_terminal"].astype(jnp.float32)[..., None], slog(pair(val["v"][..., None])),
               slog(val["adv"])[..., None], val["normalized_adv"][..., None], taken(jax.nn.softmax(x["target_logits"])),
               pair(ynet(x["y"])), pair(ynet(x["target_y"])), *z_features(x["z"]), *z_features(x["target_z"])]
    num_actions = x["logits"].shape[-1]
    per_action = jnp.stack([pi[:-1], jax.nn.softmax(x["behaviour_logits"])[:-1], jax.nn.softmax(x["target_logits"])[:-1],
                            znet(x["z"])[:-1], znet(x["target_z"])[:-1], slog(val["q_bar"][:-1]), slog(val["qv_adv"][:-1]),
                            val["normalized_qv_adv"][:-1], jax.nn.one_hot(actions, num_actions)], -1)  # [T, B, A, 9]
    embedding = set_layer(w, f"{prefix}sequential/conv1_d_1", set_layer(w, f"{prefix}sequential/conv1_d", per_action))
    columns += [embedding.mean(2), select(embedding, actions)]
    return jnp.concatenate(columns, -1), embedding


def meta_net(w, x, val, meta_state) -> dict[str, Any]:
    """pi_hat [T, B, A], y_hat and z_hat [T, B, 600] (logits), the meta-LSTM's next state, and the
    intermediate values the golden file records."""
    inputs, embedding = features(w, MAIN, x, val)
    terminal = x["is_terminal"]
    zeros = jnp.zeros(inputs.shape[1:2] + (LSTM_SIZE,))

    def backward(state, step):  # cleared before a step whose transition ended the episode
        feature, ended = step
        state = jax.tree.map(lambda s: jnp.where(ended[:, None], 0.0, s), state)
        state = lstm_step(w, f"{MAIN}lstm/linear", feature, state)
        return state, state[0]

    _, hidden = jax.lax.scan(backward, (zeros, zeros), (inputs, terminal), reverse=True)
    h_meta, c_meta = meta_state
    out = hidden * linear(w, f"{MAIN}linear", h_meta)  # the lifetime interaction, always applied
    emb = linear(w, f"{MAIN}linear_1", out)
    y_hat, z_hat = linear(w, f"{MAIN}linear_2", out), linear(w, f"{MAIN}linear_3", out)
    num_actions = embedding.shape[2]
    per_action = jnp.concatenate([jnp.broadcast_to(out[:, :, None], out.shape[:2] + (num_actions, LSTM_SIZE)), embedding], -1)
    pi_hat = linear(w, f"{MAIN}linear_4", set_layer(w, f"{MAIN}sequential_1/conv1_d", per_action))[..., 0]
    meta_inputs, _ = features(w, META, x, val)
    meta_features = jnp.concatenate([meta_inputs, emb, mlp(w, f"{META}mlp", jax.nn.softmax(y_hat))], -1)
    summary = linear(w, f"{META}mlp_2/~/linear_0", meta_features).mean((0, 1))
    new_state = lstm_step(w, f"{META}lstm/linear", summary, (h_meta, c_meta))
    return dict(pi_hat=pi_hat, y_hat=y_hat, z_hat=z_hat, meta_input_emb=emb, meta_state=new_state,
                meta_net_input=inputs, policy_emb=embedding, bwd_lstm_out=hidden, meta_lstm_input=meta_inputs)


# ---------------------------------------------------------------------------- the agent's loss
def loss_per_step(agent: Mapping[str, Any], x, val, out, settings=SETTINGS, backprop: bool = False) -> dict[str, jax.Array]:
    """Each term of the agent's loss per step [T, B], differentiable in ``agent`` (logits, y, z,
    aux_pi, q over T+1 states); the rule's targets are constants, and so are its outputs pi_hat,
    y_hat and z_hat unless ``backprop`` (meta-training: the meta-gradient reaches the rule through
    them; the reference's ``is_meta_training``, which lifts this stop-gradient and no other)."""
    actions = x["actions"][:-1]
    sg = jax.lax.stop_gradient
    hat = (lambda v: v) if backprop else sg
    terminal = x["is_terminal"].astype(jnp.float32)
    pi_loss = kl(hat(out["pi_hat"]), agent["logits"][:-1])
    y_loss = kl(hat(out["y_hat"]), agent["y"][:-1])
    z_loss = kl(hat(out["z_hat"]), select(agent["z"][:-1], actions))
    aux_loss = kl(sg(agent["logits"][1:]), select(agent["aux_pi"][:-1], actions)) * (1.0 - terminal)
    q_logits = select(agent["q"][:-1], actions)
    value_target = sg(compress(sg(decode(q_logits)) + sg(val["q_td"])))
    cross_entropy = -jnp.sum(two_hot(value_target) * jax.nn.log_softmax(q_logits), -1)
    meta = (settings["pi_cost"] * pi_loss + settings["y_cost"] * y_loss + settings["z_cost"] * z_loss
            + settings["aux_policy_cost"] * aux_loss)
    value_loss = settings["value_cost"] * cross_entropy
    return dict(pi_loss=pi_loss, y_loss=y_loss, z_loss=z_loss, aux_policy_loss=aux_loss, meta_loss=meta,
                value_loss=value_loss, total_loss=meta + value_loss)


def masked_mean(values, mask):
    return jnp.sum(mask * values) / (jnp.sum(mask) + 1e-8)


# ---------------------------------------------------------------------------- one update, as the golden file records it
def rule_outputs(w, x, meta_state, adv_ema, td_ema, settings=SETTINGS) -> tuple[dict, dict]:
    """(value quantities, meta-network outputs) of one update."""
    val = values(x, adv_ema, td_ema, settings)
    return val, meta_net(w, x, val, meta_state)


def _one_update(w, x, mask, meta_state, adv_ema, td_ema, settings):
    val, out = rule_outputs(w, x, meta_state, adv_ema, td_ema, settings)
    agent = {k: x[k] for k in ("logits", "y", "z", "aux_pi", "q")}

    def total(agent):
        terms = loss_per_step(agent, x, val, out, settings)
        return masked_mean(terms["total_loss"], mask), terms

    (loss, terms), grads = jax.value_and_grad(total, has_aux=True)(agent)
    return val, out, terms, loss, grads


def golden_outputs(weights_path: str | Path, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output and gradient the reference implementation records for one update, named as
    in ``golden_small.npz`` (``out_*``, ``grad_*``, ``dbg_*``, ``fresh_*``: the same batch from a
    lifetime's first state), from arrays named as its inputs (``in_*``, ``hp_*``) of any T, B, A."""
    w = load_weights(weights_path)
    a = {k: jnp.asarray(v) for k, v in arrays.items()}
    settings = dict(pi_cost=a["hp_pi_cost"], y_cost=a["hp_y_cost"], z_cost=a["hp_z_cost"],
                    aux_policy_cost=a["hp_aux_policy_cost"], value_cost=a["hp_value_cost"],
                    target_params_coeff=a["hp_target_params_coeff"], td_lambda=a["hp_value_fn_td_lambda"],
                    discount=a["hp_value_discount"], ema_decay=a["hp_ema_decay"], ema_eps=a["hp_ema_eps"])
    if int(arrays["hp_num_bins"]) != NUM_BINS or float(arrays["hp_max_abs_value"]) != MAX_ABS_VALUE:
        raise ConfigError(f"Disco103 uses {NUM_BINS} bins up to {MAX_ABS_VALUE}; got {arrays['hp_num_bins']} and {arrays['hp_max_abs_value']}")
    names = ("actions", "rewards", "is_terminal", "logits", "y", "z", "aux_pi", "q", "behaviour_logits", "target_logits",
             "target_y", "target_z", "target_q")
    x = {n: a[f"in_{n}"] for n in names}
    x["actions"] = x["actions"].astype(jnp.int32)
    x["is_terminal"] = x["is_terminal"].astype(bool)
    state = (a["in_meta_rnn_hidden"], a["in_meta_rnn_cell"])
    adv_ema = (a["in_adv_ema_moment1"], a["in_adv_ema_moment2"], a["in_adv_ema_decay_product"])
    td_ema = (a["in_td_ema_moment1"], a["in_td_ema_moment2"], a["in_td_ema_decay_product"])
    update = jax.jit(_one_update)
    val, out, terms, loss, grads = update(w, x, a["in_loss_mask"], state, adv_ema, td_ema, settings)
    result = {f"out_{k}": out[k] for k in ("pi_hat", "y_hat", "z_hat", "meta_input_emb")}
    result.update(out_new_meta_rnn_hidden=out["meta_state"][0], out_new_meta_rnn_cell=out["meta_state"][1])
    result.update(out_q_scalar=val["q"], out_target_q_scalar=val["q_bar"], out_v_scalar=val["v"], out_target_v_scalar=val["v_bar"],
                  out_rho=val["rho"], out_q_target=val["target"])
    result.update({f"out_{k}": val[k] for k in ("adv", "qv_adv", "q_td", "normalized_adv", "normalized_qv_adv", "normalized_q_td")})
    for name in ("adv", "td"):
        for value, part in zip(val[f"{name}_ema"], ("moment1", "moment2", "decay_product")):
            result[f"out_new_{name}_ema_{part}"] = value
    coeff = settings["target_params_coeff"]
    result["out_new_target_params"] = coeff * a["in_target_params"] + (1 - coeff) * a["in_agent_params"]
    result.update({f"out_{k}_per_step": v for k, v in terms.items()})
    result["out_total_loss"] = loss
    result.update({f"grad_{k}": v for k, v in grads.items()})
    result.update(dbg_meta_net_input=out["meta_net_input"], dbg_policy_emb=out["policy_emb"],
                  dbg_bwd_lstm_out=out["bwd_lstm_out"], dbg_meta_lstm_input=out["meta_lstm_input"])
    zeros = jnp.zeros(META_SIZE)
    fresh_ema = (jnp.float32(0), jnp.float32(0), jnp.float32(1))
    val, out, terms, loss, _ = update(w, x, a["in_loss_mask"], (zeros, zeros), fresh_ema, fresh_ema, settings)
    result.update({f"fresh_{k}": out[k] for k in ("pi_hat", "y_hat", "z_hat")})
    result.update({f"fresh_{k}": val[k] for k in ("normalized_adv", "normalized_qv_adv", "normalized_q_td")})
    result.update(fresh_new_meta_rnn_hidden=out["meta_state"][0], fresh_new_meta_rnn_cell=out["meta_state"][1],
                  fresh_total_loss_per_step=terms["total_loss"], fresh_total_loss=loss)
    return {k: np.asarray(v) for k, v in result.items()}
