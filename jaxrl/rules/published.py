"""Published learned update rules the kit can run, where their weights come from (pinned to a
commit, with their sha256) and where ``jaxrl fetch-rule`` puts them. No imports: the command line
reads it before anything heavy loads."""

from __future__ import annotations

import os
from pathlib import Path

RULES = {
    "disco103": {
        "url": "https://raw.githubusercontent.com/google-deepmind/disco_rl/9059a29f7121d60948f25ef165e08e050e9399c8/"
               "disco_rl/update_rules/weights/disco_103.npz",
        "sha256": "dac840a15b81e8805326363458c33979626172618f620d9e6e170315388530aa",
        "file": "disco_103.npz",
        "attribution": "Disco103 weights: Copyright 2025 Google LLC, https://github.com/google-deepmind/disco_rl, "
                       "Apache License 2.0 (the repository's other materials CC-BY 4.0), unmodified. Cite: J. Oh et al., "
                       "\"Discovering state-of-the-art reinforcement learning algorithms\", Nature (2025), "
                       "doi:10.1038/s41586-025-09761-x.",
    },
}


def default_path(name: str) -> Path:
    """Where ``fetch-rule`` puts a rule's weights and ``--rule NAME`` looks for them:
    ``$JAXRL_RULES_DIR`` or ``~/.cache/jaxrl/rules``."""
    root = Path(os.environ.get("JAXRL_RULES_DIR", Path.home() / ".cache" / "jaxrl" / "rules")).expanduser()
    return root / RULES[name]["file"]
