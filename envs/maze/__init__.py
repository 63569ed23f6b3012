"""The UED grid maze (Dennis et al., 2020; Jiang et al., 2021): levels as pytrees, the
partially observable environment, its generators and ACCEL mutations, text files of mazes, a
breadth-first solver, named holdout mazes, the PAIRED editor and pictures.

``envs.make("maze", max_steps_in_episode=..., n_walls=...)`` builds ``(Maze(), params)``.
Importing this package is cheap: no arrays are made and matplotlib is not loaded.

    level.py      Level, stack_levels, unstack_levels, is_valid_level
    env.py        Maze, MazeParams, MazeState
    generator.py  random_level, empty_level, perfect_maze
    mutation.py   mutate_level, edit_level
    text.py       to_text, from_text, read_levels, write_levels, levels_to_text, levels_from_text
    solver.py     shortest_path_length, shortest_path_lengths, solvable, reachable_cells
    holdouts.py   HOLDOUT_NAMES, holdout_levels, holdout_texts (and HOLDOUTS, built on use)
    editor.py     MazeEditor, EditorParams, EditorState
    render.py     render_level, render_frames, save_png, save_gif, render_episode, level_grid
"""

from __future__ import annotations

from typing import Any

from envs.maze.editor import EditorParams, EditorState, MazeEditor
from envs.maze.env import FORWARD, TURN_LEFT, TURN_RIGHT, Maze, MazeParams, MazeState
from envs.maze.generator import empty_level, perfect_maze, random_level
from envs.maze.holdouts import HOLDOUT_NAMES, holdout_levels, holdout_texts
from envs.maze.level import (
    DIRECTION_VECTORS,
    Level,
    is_valid_level,
    make_level,
    stack_levels,
    to_numpy,
    unstack_levels,
)
from envs.maze.mutation import edit_level, mutate_level
from envs.maze.render import level_grid, render_episode, render_frames, render_level, save_gif, save_png
from envs.maze.solver import reachable_cells, shortest_path_length, shortest_path_lengths, solvable
from envs.maze.text import from_text, levels_from_text, levels_to_text, read_levels, to_text, write_levels
from envs.registry import register, replace_params

__all__ = [
    "DIRECTION_VECTORS",
    "EditorParams",
    "EditorState",
    "FORWARD",
    "HOLDOUTS",
    "HOLDOUT_NAMES",
    "Level",
    "Maze",
    "MazeEditor",
    "MazeParams",
    "MazeState",
    "TURN_LEFT",
    "TURN_RIGHT",
    "edit_level",
    "empty_level",
    "from_text",
    "holdout_levels",
    "holdout_texts",
    "is_valid_level",
    "level_grid",
    "levels_from_text",
    "levels_to_text",
    "make_level",
    "mutate_level",
    "perfect_maze",
    "random_level",
    "reachable_cells",
    "read_levels",
    "render_episode",
    "render_frames",
    "render_level",
    "save_gif",
    "save_png",
    "shortest_path_length",
    "shortest_path_lengths",
    "solvable",
    "stack_levels",
    "to_numpy",
    "to_text",
    "unstack_levels",
    "write_levels",
]


def __getattr__(name: str) -> Any:
    # HOLDOUTS is built on first use so that importing the package makes no arrays.
    if name == "HOLDOUTS":
        return holdout_levels()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse_override(field: str, value: Any, default: Any) -> Any:
    """Text from the command line (``--env-set n_walls=50``) becomes the field's type; anything
    else is left for ``replace_params`` to check."""
    if isinstance(value, str) and isinstance(default, int) and not isinstance(default, bool):
        try:
            return int(value)
        except ValueError:
            pass
    return value


def make_maze(**overrides: Any) -> tuple[Maze, MazeParams]:
    """The registry's factory: ``(Maze(), MazeParams)`` with ``overrides`` of the params' fields
    (``max_steps_in_episode``, ``n_walls``, ``exact_walls``), each checked by ``envs.registry.replace_params``."""
    env = Maze()
    defaults = env.default_params
    parsed = {k: _parse_override(k, v, getattr(defaults, k, None)) for k, v in overrides.items()}
    params = replace_params("maze", defaults, parsed)
    if params.exact_walls not in (0, 1):
        from envs.registry import InvalidEnvSetting

        raise InvalidEnvSetting(f"maze exact_walls must be 0 (n_walls an upper bound, JaxUED's) or 1 (exactly n_walls), "
                                f"got {params.exact_walls!r}")
    return env, params


register("maze", make_maze)
