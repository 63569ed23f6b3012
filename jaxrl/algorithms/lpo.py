"""PPO's agent with a mirror-learning drift for its policy objective (``jaxrl.components.drifts``):

* ``lpo``: Learned Policy Optimisation (Lu et al., 2022, "Discovered Policy Optimisation"): PPO's
  clipping drift plus a learned drift network, ``objective_params``. Its default weights are zero,
  so ``jaxrl train lpo`` is PPO until the weights are meta-trained (``jaxrl meta-train lpo``) and
  given back with ``jaxrl train lpo --objective RUN_DIR``. ``--set objective=lpo-zero`` drops
  PPO's drift (the learned one alone).
* ``ta-lpo``: temporally-aware LPO (Jackson et al., 2024): the drift also sees n/N.
* ``dpo``: Discovered Policy Optimisation, LPO's drift in closed form (alpha 2, beta 0.6).

Every other setting is PPO's, with PPO's defaults; PPO's ``check`` checks the weights against
the objective (``jaxrl.components.drifts.check_objective_params``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from jaxrl.algorithms import ppo
from jaxrl.components.drifts import DPO_PARAMS, LEARNED_DRIFTS, drift_weights
from jaxrl.core.contract import Algorithm, register


def _defaults(objective: str) -> Callable[[str, bool], tuple[ppo.PPOConfig, ppo.PPOHParams]]:
    def defaults(env_name: str, discrete: bool) -> tuple[ppo.PPOConfig, ppo.PPOHParams]:
        config, hparams = ppo.defaults(env_name, discrete)
        weights = dict(DPO_PARAMS) if objective == "dpo" else drift_weights(temporal=LEARNED_DRIFTS[objective][1])
        return dataclasses.replace(config, objective=objective), hparams.replace(objective_params=weights)

    return defaults


for _name, _summary in (
    ("lpo", "Learned Policy Optimisation: PPO plus a learned drift (meta-train it with `jaxrl meta-train lpo`)"),
    ("ta-lpo", "Temporally-aware LPO: the learned drift also sees training progress n/N"),
    ("dpo", "Discovered Policy Optimisation: LPO's discovered drift in closed form"),
):
    register(
        Algorithm(
            name=_name,
            summary=_summary,
            config_type=ppo.PPOConfig,
            hparams_type=ppo.PPOHParams,
            build=ppo.build,
            defaults=_defaults(_name),
            check=ppo.check,  # which checks the drift weights against the objective
        )
    )
