"""The one optimizer factory, shared by every agent, and the one learning-rate schedule.

An agent names its optimizer in its config (``optimizer="adam"``, ``--set optimizer=sgd``) and
builds it inside every update with ``optimizer(...)`` from traced values: the learning rate (after
``learning_rate``'s schedule), the training ``Progress``, Adam's epsilon where the agent has one,
and ``hparams.optimizer_params``, the weights of a learned optimizer (``None`` for the built-in
ones). The optimizer state's structure never depends on those values, so sweeping a learning rate
or a learned optimizer's weights never recompiles.

A new optimizer is a function of one ``OptimizerArgs`` returning an ``optax.GradientTransformation``,
registered under a name::

    @register_optimizer("sgd-momentum")
    def sgd_momentum(args):
        return optax.sgd(args.lr, momentum=0.9)

    jaxrl.train("ppo", "CartPole-v1", overrides={"optimizer": "sgd-momentum", "lr": 0.05})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import optax

from jaxrl.core.contract import ConfigError, Progress


@dataclass(frozen=True)
class OptimizerArgs:
    lr: jax.Array  # the learning rate of this update, after the schedule
    progress: Progress
    eps: Any = None  # Adam's epsilon where the agent sets one (None: optax's default)
    params: Any = None  # hparams.optimizer_params: a learned optimizer's weights


OptimizerFactory = Callable[[OptimizerArgs], optax.GradientTransformation]
_OPTIMIZERS: dict[str, OptimizerFactory] = {}


def register_optimizer(name: str) -> Callable[[OptimizerFactory], OptimizerFactory]:
    """Decorator: makes ``factory`` available as ``optimizer=name`` to every agent."""

    def add(factory: OptimizerFactory) -> OptimizerFactory:
        _OPTIMIZERS[name] = factory
        return factory

    return add


def optimizer_names() -> list[str]:
    return sorted(_OPTIMIZERS)


def check_optimizer(name: str) -> None:
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(optimizer_names())} (or register one)")


@register_optimizer("adam")
def adam(args: OptimizerArgs) -> optax.GradientTransformation:
    return optax.adam(args.lr) if args.eps is None else optax.adam(args.lr, eps=args.eps)


@register_optimizer("sgd")
def sgd(args: OptimizerArgs) -> optax.GradientTransformation:
    return optax.sgd(args.lr)


@register_optimizer("rmsprop")
def rmsprop(args: OptimizerArgs) -> optax.GradientTransformation:
    return optax.rmsprop(args.lr) if args.eps is None else optax.rmsprop(args.lr, eps=args.eps)


def learning_rate(lr: jax.Array, progress: Progress, anneal: bool) -> jax.Array:
    """The one schedule: ``lr`` constant, or annealed linearly to 0 over the run
    (lr x (1 - n / N) at update n)."""
    return lr * (1.0 - progress.step / progress.num_updates) if anneal else lr


def optimizer(
    name: str,
    *,
    lr: jax.Array,
    progress: Progress,
    anneal: bool = False,
    max_grad_norm: jax.Array | None = None,
    eps: jax.Array | None = None,
    params: Any = None,
) -> optax.GradientTransformation:
    """The optimizer ``name`` at this point of training: the scheduled learning rate, and gradients
    clipped to a global norm of ``max_grad_norm`` first when given."""
    check_optimizer(name)
    tx = _OPTIMIZERS[name](OptimizerArgs(learning_rate(lr, progress, anneal), progress, eps, params))
    return tx if max_grad_norm is None else optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)


def apply(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any) -> tuple[Any, Any]:
    """One step of ``tx``: new parameters and optimizer state."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
