"""``python -m jaxrl.cli``: the ``jaxrl`` command."""

from jaxrl.cli import entry

entry()
