"""The agents, one file each. An agent registers itself when its module is imported; the built-in
ones are registered here by name only, so that ``import jaxrl`` (and a PPO run) never imports the
others (DQN's replay pulls in flashbax, for one)."""

from jaxrl.core.contract import register_lazy

_BUILT_IN = {
    "ppo": "ppo",
    "a2c": "a2c",
    "mdpo": "ppo",
    "lpo": "lpo",
    "ta-lpo": "lpo",
    "dpo": "lpo",
    "dqn": "dqn",
    "pqn": "pqn",
    "sac": "sac",
    "td3": "td3",
    "dsac-t": "dsac_t",
    "mdpo-off": "mdpo_off",
    "stream-q": "stream_q",
    "stream-sarsa": "stream_q",
    "stream-ac": "stream_ac",
    "rarl": "adversarial",
    "qarl": "adversarial",
    "es": "evolution",
    "ga": "evolution",
}
for _name, _module in _BUILT_IN.items():
    register_lazy(_name, f"jaxrl.algorithms.{_module}")
for _name in ("dr", "plr", "robust-plr", "accel", "sfl"):  # curricula over recurrent PPO
    register_lazy(_name, "jaxrl.curricula.curriculum")
register_lazy("paired", "jaxrl.curricula.paired")
for _name in ("task-dr", "alp-gmm", "again"):  # curricula over continuous task spaces, PPO
    register_lazy(_name, "jaxrl.curricula.task_curriculum")
for _name in ("lpg", "ta-lpg"):  # agents trained by a learned update rule
    register_lazy(_name, "jaxrl.rules.agent")
register_lazy("disco", "jaxrl.rules.disco_agent")
