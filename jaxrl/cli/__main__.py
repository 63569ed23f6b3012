"""``python -m jaxrl.cli``: the ``jaxrl`` command (importing this module runs nothing)."""

from jaxrl.cli import entry

if __name__ == "__main__":
    entry()
