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


@dataclass(frozen=True)
class _Entry:
    factory: OptimizerFactory
    default_params: Callable[[], Any] | None  # a learned optimizer's initial weights
    check_params: Callable[[Any], None] | None  # raises ConfigError for weights that do not fit
    scheduled: bool  # whether its lr follows the schedule (a learned one reads n / N instead)


_OPTIMIZERS: dict[str, _Entry] = {}


def register_optimizer(
    name: str,
    *,
    default_params: Callable[[], Any] | None = None,
    check_params: Callable[[Any], None] | None = None,
    scheduled: bool = True,
) -> Callable[[OptimizerFactory], OptimizerFactory]:
    """Decorator: makes ``factory`` available as ``optimizer=name`` to every agent. A learned
    optimizer also gives its initial weights (what ``optimizer_params`` defaults to) and a check
    of given weights; an agent must then pass it context (``jaxrl.components.learned_optim``).
    ``scheduled=False``: ``OptimizerArgs.lr`` is the agent's lr as set, whatever its schedule (an
    optimizer that reads training progress and makes its own schedule, as OPEN's does)."""

    def add(factory: OptimizerFactory) -> OptimizerFactory:
        _OPTIMIZERS[name] = _Entry(factory, default_params, check_params, scheduled)
        return factory

    return add


def optimizer_names() -> list[str]:
    return sorted(_OPTIMIZERS)


def is_learned(name: str) -> bool:
    """Whether ``name`` is a learned optimizer (it has weights, and reads the agent's context)."""
    return name in _OPTIMIZERS and _OPTIMIZERS[name].default_params is not None


def default_optimizer_params(name: str, params: Any) -> Any:
    """``params`` (``hparams.optimizer_params``), or a learned optimizer's initial weights when
    they are not given."""
    if params is None and is_learned(name):
        return _OPTIMIZERS[name].default_params()
    return params


# Agents that give a learned optimizer its context (batch progress, dormancy, layer positions).
LEARNED_OPTIMIZER_AGENTS = ("ppo", "mdpo", "lpo", "ta-lpo", "dpo")


def check_optimizer(name: str, params: Any = None, *, context: bool = False) -> None:
    """``ConfigError`` for an unknown name, for weights given to a built-in optimizer or not
    fitting a learned one, and for a learned optimizer in an agent that gives it no context
    (``context=False``)."""
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(optimizer_names())} (or register one)")
    entry = _OPTIMIZERS[name]
    if entry.default_params is None:
        if params is not None:
            raise ConfigError(f"optimizer {name} has no weights, but optimizer_params are given; use a learned optimizer")
        return
    if not context:
        raise ConfigError(f"optimizer {name} reads batch progress, dormancy and layer positions, which only "
                          f"{', '.join(LEARNED_OPTIMIZER_AGENTS)} give it")
    if params is not None and entry.check_params is not None:
        entry.check_params(params)


@register_optimizer("adam")
def adam(args: OptimizerArgs) -> optax.GradientTransformation:
    return optax.adam(args.lr) if args.eps is None else optax.adam(args.lr, eps=args.eps)


@register_optimizer("sgd")
def sgd(args: OptimizerArgs) -> optax.GradientTransformation:
    return optax.sgd(args.lr)


@register_optimizer("rmsprop")
def rmsprop(args: OptimizerArgs) -> optax.GradientTransformation:
    """RMSProp as A3C (Mnih et al. 2016) and PyTorch define it: the squared-gradient average's
    decay 0.99 (optax's default is 0.9) and eps added to its square root (optax's default adds it
    inside, which makes eps 1e-5 act like 3e-3)."""
    return optax.rmsprop(args.lr, decay=0.99, eps_in_sqrt=False, **({} if args.eps is None else {"eps": args.eps}))


def learning_rate(lr: jax.Array, progress: Progress, anneal: bool) -> jax.Array:
    """The one schedule: ``lr`` constant, or annealed linearly to 0 over the run
    (lr x (1 - n / N) at update n)."""
    return lr * (1.0 - progress.step / progress.num_updates) if anneal else lr


def scheduled_lr(name: str, lr: jax.Array, progress: Progress, anneal: bool) -> jax.Array:
    """The lr optimizer ``name`` gets at this point: ``learning_rate``'s schedule, or ``lr`` as set
    for an optimizer registered ``scheduled=False``."""
    return learning_rate(lr, progress, anneal and _OPTIMIZERS[name].scheduled)


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
    """The optimizer ``name`` at this point of training: the scheduled learning rate (the lr as
    set for an optimizer registered ``scheduled=False``, the learned ones), and gradients clipped
    to a global norm of ``max_grad_norm`` first when given."""
    if name not in _OPTIMIZERS:
        check_optimizer(name)
    tx = _OPTIMIZERS[name].factory(OptimizerArgs(scheduled_lr(name, lr, progress, anneal), progress, eps, params))
    # Every optimizer takes optax's extra arguments (a learned one reads them; the rest ignore
    # them), so an agent passes its context the same way whatever it is configured with.
    tx = optax.with_extra_args_support(tx)
    return tx if max_grad_norm is None else optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)


def apply(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any) -> tuple[Any, Any]:
    """One step of ``tx``: new parameters and optimizer state."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


# The learned optimizers register themselves (after everything above, which they import).
from jaxrl.components import learned_optim as _learned_optim  # noqa: E402,F401
