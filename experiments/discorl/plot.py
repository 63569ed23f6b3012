"""One figure and one table of the Disco103 study from the three `experiments/compare.py` runs in
catch/, Breakout-MinAtar/ and SpaceInvaders-MinAtar/ (see README.md for their commands): the
variants under short names, the same plot and table as compare.py draws for one run.

    python experiments/discorl/plot.py       # writes results.png and summary.md here
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from compare import markdown, plot  # noqa: E402

RUNS = {"Catch-bsuite": "catch", "Breakout-MinAtar": "Breakout-MinAtar", "SpaceInvaders-MinAtar": "SpaceInvaders-MinAtar"}
DISCO = "disco:hidden_sizes=64x64,action_hidden=32,"
NAMES = {f"{DISCO}num_envs=2,replay_capacity=28672,batch_size=32": "disco103, replay ratio 16 (2 envs)",
         f"{DISCO}num_envs=2": "disco103, on-policy, 2 envs", f"{DISCO}num_envs=8": "disco103, on-policy, 8 envs",
         "ppo": "ppo", "a2c": "a2c"}


def main() -> None:
    results = pd.concat([pd.read_csv(HERE / run / "results.csv") for run in RUNS.values()], ignore_index=True)
    table = pd.concat([pd.read_csv(HERE / run / "summary.csv") for run in RUNS.values()], ignore_index=True)
    results["variant"], table["variant"] = results.variant.map(NAMES), table.variant.map(NAMES)
    labels = [name for name in NAMES.values() if name in set(table.variant)]
    plot(results, table, list(RUNS), labels, HERE / "results.png")
    (HERE / "summary.md").write_text(markdown(table))
    print(markdown(table))


if __name__ == "__main__":
    main()
