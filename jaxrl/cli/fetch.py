"""``jaxrl fetch-rule disco103``: downloads DiscoRL's published Disco103 weights from their public
repository, checks their sha256, and prints the attribution their licence asks for."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Any

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


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("fetch-rule", help="download a published learned update rule's weights (disco103)", description=(
        "Download the published weights of RULE from their public repository into --to (default "
        "$JAXRL_RULES_DIR or ~/.cache/jaxrl/rules), check their sha256 and print their attribution; "
        "then `jaxrl train disco --rule disco103` uses them."))
    parser.add_argument("rule", help=" | ".join(RULES))
    parser.add_argument("--to", default=None, help="file to write (default: the cache above)")


def run_command(args: argparse.Namespace) -> int:
    from jaxrl.core.values import ConfigError

    if args.rule not in RULES:
        raise ConfigError(f"unknown rule {args.rule!r}; choose one of {', '.join(RULES)}")
    entry = RULES[args.rule]
    target = Path(args.to).expanduser() if args.to else default_path(args.rule)
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(entry["url"], timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise ConfigError(f"cannot download {args.rule} from {entry['url']} ({getattr(error, 'reason', error)}): "
                          f"no network? Copy {entry['file']} there by hand and give --rule {args.rule}:PATH") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ConfigError(f"{args.rule}: the download's sha256 is {digest}, not {entry['sha256']}; nothing written")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
        target.with_name(target.name + ".NOTICE").write_text(entry["attribution"] + "\nLicence text: "
                                                             "https://www.apache.org/licenses/LICENSE-2.0\n")
    except OSError as error:
        raise ConfigError(f"cannot write {target}: {error.strerror or error}") from None
    print(f"{args.rule} -> {target} (sha256 checked)\n{entry['attribution']}")
    return 0
