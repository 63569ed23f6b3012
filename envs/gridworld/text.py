"""Grid-world levels as text, one block per level, blocks separated by blank lines::

    gridworld size=5 steps=50 lifetime=250
    object a reward=1 terminate=0 respawn=0.05
    object b reward=-1 terminate=0.5 respawn=0.1
    A....
    .#...
    ..a..
    .#..b
    .....

The header gives the side, the episode limit and the lifetime (agent updates; 0: not set), one
``object`` line per object slot in order, then ``size`` rows: ``#`` a wall, ``.`` a free cell,
``A`` the start, ``a``, ``b``, ... the objects. Numbers are written so that reading them back
gives the same float32 values.
"""

from __future__ import annotations

import string

import numpy as np

from envs.gridworld.level import GridLevel, make_level, stack, unstack

LETTERS = string.ascii_lowercase


def _number(x) -> str:
    return str(np.float32(x))  # the shortest text that reads back as the same float32


def to_text(level: GridLevel) -> str:
    level = unstack(stack([level]))[0]
    size, count = int(level.size), int(level.num_objects)
    lines = [f"gridworld size={size} steps={int(level.max_steps)} lifetime={int(level.lifetime)}"]
    rows = [["#" if level.walls[r, c] else "." for c in range(size)] for r in range(size)]
    rows[int(level.start[0])][int(level.start[1])] = "A"
    for k in range(count):
        lines.append(f"object {LETTERS[k]} reward={_number(level.reward[k])} terminate={_number(level.terminate[k])} "
                     f"respawn={_number(level.respawn[k])}")
        rows[int(level.object_pos[k, 0])][int(level.object_pos[k, 1])] = LETTERS[k]
    return "\n".join(lines + ["".join(row) for row in rows]) + "\n"


def levels_to_text(levels: GridLevel) -> str:
    """A batch of levels (leading axis) or one level as text blocks separated by blank lines."""
    batch = unstack(levels) if np.ndim(levels.size) == 1 else [levels]
    return "\n".join(to_text(level) for level in batch)


def _fields(words: list[str], where: str) -> dict[str, str]:
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"{where}: expected KEY=VALUE, got {word!r}")
        out[key] = value
    return out


def from_text(text: str, grid: int, max_objects: int) -> GridLevel:
    """One level from its block, padded to a ``grid x grid`` array and ``max_objects`` slots;
    ``ValueError`` with one line for anything malformed."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or not lines[0].startswith("gridworld "):
        raise ValueError("a grid-world level starts with a line 'gridworld size=N steps=T lifetime=L'")
    head = _fields(lines[0].split()[1:], "header")
    try:
        size, steps, lifetime = int(head["size"]), int(head["steps"]), int(head.get("lifetime", 0))
    except (KeyError, ValueError):
        raise ValueError(f"header needs integer size= and steps= (and lifetime=), got {lines[0]!r}") from None
    if not 2 <= size <= grid:
        raise ValueError(f"level size {size} does not fit this environment's {grid}x{grid} grid")
    objects_lines = [line for line in lines[1:] if line.startswith("object ")]
    rows = lines[1 + len(objects_lines):]
    if len(objects_lines) > max_objects:
        raise ValueError(f"{len(objects_lines)} objects do not fit this environment's {max_objects} slots")
    if len(rows) != size or any(len(row) != size for row in rows):
        raise ValueError(f"a level of size {size} needs {size} rows of {size} cells after its object lines")
    properties = {}
    for index, line in enumerate(objects_lines):
        parts = line.split()
        if len(parts) < 2 or parts[1] != LETTERS[index]:
            raise ValueError(f"object lines name the slots in order (a, b, ...); got {line!r}")
        values = _fields(parts[2:], f"object {parts[1]}")
        try:
            reward, terminate, respawn = (float(values[k]) for k in ("reward", "terminate", "respawn"))
        except (KeyError, ValueError):
            raise ValueError(f"object {parts[1]} needs numbers reward=, terminate= and respawn=") from None
        if not np.isfinite(reward) or not (0 <= terminate <= 1) or not (0 <= respawn <= 1):
            raise ValueError(f"object {parts[1]}: reward must be finite and terminate, respawn in [0, 1]")
        properties[parts[1]] = (reward, terminate, respawn)
    walls, start, cells = [], None, {}
    for r, row in enumerate(rows):
        for c, char in enumerate(row):
            if char == "#":
                walls.append((r, c))
            elif char == "A":
                if start is not None:
                    raise ValueError("a level has one start cell 'A'")
                start = (r, c)
            elif char in properties:
                if char in cells:
                    raise ValueError(f"object {char} appears twice")
                cells[char] = (r, c)
            elif char != ".":
                raise ValueError(f"unknown cell {char!r} (use # . A and the declared object letters)")
    if start is None:
        raise ValueError("a level needs a start cell 'A'")
    if set(cells) != set(properties):
        raise ValueError(f"objects declared but not placed: {', '.join(sorted(set(properties) - set(cells)))}")
    objects = [(cells[k], *properties[k]) for k in LETTERS[: len(properties)]]
    return make_level(size, start=start, objects=objects, walls=walls, max_steps=steps, lifetime=lifetime,
                      grid=grid, max_objects=max_objects)


def levels_from_text(text: str, grid: int, max_objects: int) -> GridLevel:
    """Every block of ``text`` (separated by blank lines), stacked."""
    blocks = [block for block in text.strip().split("\n\n") if block.strip()]
    if not blocks:
        raise ValueError("no levels in the text")
    return stack([from_text(block, grid, max_objects) for block in blocks])
