"""A policy objective with weights, for the tests: PPO's clipped surrogate scaled by one learned
weight plus a learned multiple of KL(pi || pi_old). With ``scale = 1`` and ``kl_coef = 0`` it is
PPO's objective exactly. Imported by the tests and by the scripts they start."""

import numpy as np

from jaxrl.components.losses import clipped_surrogate_loss
from jaxrl.components.objectives import register_objective


@register_objective("test-weighted")
def weighted_clip(terms, hparams, progress):
    weights = hparams.objective_params
    clip = clipped_surrogate_loss(terms.log_prob, terms.old_log_prob, terms.advantage, hparams.clip_eps)
    loss = weights["scale"][0] * clip + weights["kl"]["coef"] * terms.kl().mean()
    return loss, {"objective_scale": weights["scale"][0]}


def weights(scale: float = 1.0, kl_coef: float = 0.0) -> dict:
    return {"scale": np.asarray([scale], np.float32), "kl": {"coef": np.asarray(kl_coef, np.float32)}}
