"""Mazes as text, and files of them.

One row per line, the interior only: ``#`` wall, ``.`` free, ``G`` the goal, and the agent as
``>`` ``v`` ``<`` ``^`` facing east, south, west, north. A file holds mazes separated by blank
lines. Text is how people write training sets and holdout levels for the maze of Dennis et al.
(2020) and Jiang et al. (2021), so every error names what is wrong in one line, and a file's
errors name the file and the maze (counted from 1, as a person reads the file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from envs.maze.level import DEFAULT_SIZE, Level, make_level, stack_levels, to_numpy, unstack_levels

WALL, FREE, GOAL = "#", ".", "G"
AGENT_CHARS = ">v<^"  # index = agent_dir: east, south, west, north
ALLOWED = WALL + FREE + GOAL + AGENT_CHARS


def to_text(level: Level) -> str:
    """The level as text (no trailing newline); exact inverse of ``from_text``."""
    level = to_numpy(level)
    walls = np.asarray(level.wall_map, dtype=bool)
    grid = np.where(walls, WALL, FREE).astype("<U1")
    grid[int(level.goal_pos[0]), int(level.goal_pos[1])] = GOAL
    grid[int(level.agent_pos[0]), int(level.agent_pos[1])] = AGENT_CHARS[int(level.agent_dir) % 4]
    return "\n".join("".join(row) for row in grid)


def from_text(text: str, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE) -> Level:
    """The level written in ``text``; ``ValueError`` with a one-line message for a wrong size,
    an unknown character, or not exactly one goal and one agent. Blank lines around the maze and
    trailing spaces or carriage returns on a line are ignored."""
    rows = [line.rstrip() for line in text.strip("\n").split("\n")]
    while rows and not rows[-1]:
        rows.pop()
    expected = f"expected {height} rows of {width} characters"
    if len(rows) != height:
        raise ValueError(f"maze has {len(rows)} rows, {expected}")
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"row {r + 1} has {len(row)} characters, {expected}")
        for c, char in enumerate(row):
            if char not in ALLOWED:
                raise ValueError(f"unknown character {char!r} at row {r + 1}, column {c + 1} (use # . G > v < ^)")
    goals = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == GOAL]
    agents = [(r, c, AGENT_CHARS.index(ch)) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch in AGENT_CHARS]
    if len(goals) != 1:
        raise ValueError(f"maze has {len(goals) or 'no'} goals (G), expected exactly one")
    if len(agents) != 1:
        raise ValueError(f"maze has {len(agents) or 'no'} agents (> v < ^), expected exactly one")
    walls = np.array([[ch == WALL for ch in row] for row in rows], dtype=bool)
    (goal,), ((ar, ac, direction),) = goals, agents
    return make_level(walls, goal, (ar, ac), direction)


def _split_mazes(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each blank-line-separated block."""
    blocks, current, start = [], [], 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, "\n".join(current)))
            current = []
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def parse_levels(text: str, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE, *, source: str = "text",
                 require_solvable: bool = True) -> list[Level]:
    """The mazes of a blank-line-separated ``text``; errors name ``source`` and the maze."""
    from envs.maze.solver import solvable

    blocks = _split_mazes(text)
    if not blocks:
        raise ValueError(f"{source} contains no mazes")
    levels = []
    for index, (_, block) in enumerate(blocks, start=1):
        try:
            level = from_text(block, height, width)
        except ValueError as error:
            raise ValueError(f"maze {index} in {source}: {error}") from None
        if require_solvable and not solvable(level):
            raise ValueError(f"maze {index} in {source} is unsolvable: the goal cannot be reached")
        levels.append(level)
    return levels


def read_levels(path: str | os.PathLike, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE) -> list[Level]:
    """Every maze in the file ``path`` (mazes separated by blank lines), each checked to be well
    formed and solvable; ``FileNotFoundError`` or ``ValueError`` with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"maze file not found: {path}")
    return parse_levels(path.read_text(), height, width, source=str(path))


def _as_list(levels: Level | Sequence[Level]) -> list[Level]:
    if isinstance(levels, Level):
        return [levels] if np.ndim(levels.wall_map) == 2 else unstack_levels(to_numpy(levels))
    return list(levels)


def levels_to_text(levels: Level | Iterable[Level]) -> str:
    """Several levels (a list or a stacked ``Level``) as text separated by blank lines."""
    return "\n\n".join(to_text(level) for level in _as_list(levels)) + "\n"


def levels_from_text(text: str, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE) -> Level:
    """The mazes of ``text`` (as written by ``levels_to_text``) stacked on a leading axis."""
    return stack_levels(parse_levels(text, height, width, require_solvable=False))


def write_levels(path: str | os.PathLike, levels: Level | Iterable[Level]) -> None:
    """Writes ``levels`` (a list or a stacked ``Level``) to ``path`` in the format
    ``read_levels`` reads."""
    Path(path).write_text(levels_to_text(levels))
