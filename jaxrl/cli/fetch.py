"""``jaxrl fetch-rule disco103``: downloads DiscoRL's published Disco103 weights from their public
repository, checks their sha256, and prints the attribution their licence asks for."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from jaxrl.rules.published import RULES, default_path

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
