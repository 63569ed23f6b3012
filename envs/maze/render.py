"""Pictures of mazes: single frames, episode GIFs and grids of levels.

Before writing this we looked at the rendering of xminigrid (``xminigrid.rendering``: minigrid-
style cached RGB tiles per cell, drawn with point-in-shape helpers) and navix
(``navix.rendering``: a registry and cache of sprite images pasted per entity); neither is a
dependency of the kit, and the maze needs only three kinds of cell, so this module draws its own
with numpy (images) and Pillow (files), importing matplotlib only inside ``level_grid``.

Colours: walls (and the border) dark grey, floor light grey, goal green, the agent a red
triangle pointing the way it faces, as in the maze pictures of Dennis et al. (2020) and Jiang et
al. (2021).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import numpy as np

from envs.maze.level import Level, to_numpy

WALL_COLOUR = np.array([70, 70, 70], np.uint8)
FLOOR_COLOUR = np.array([225, 225, 225], np.uint8)
GOAL_COLOUR = np.array([40, 170, 60], np.uint8)
AGENT_COLOUR = np.array([215, 40, 40], np.uint8)
GRID_COLOUR = np.array([190, 190, 190], np.uint8)


def _triangle_mask(cell: int, direction: int) -> np.ndarray:
    """bool [cell, cell]: a triangle pointing east, rotated to ``direction`` (0 E, 1 S, 2 W, 3 N),
    from half-plane tests on pixel centres."""
    centres = (np.arange(cell) + 0.5) / cell
    y, x = np.meshgrid(centres, centres, indexing="ij")  # y down, x right, both in [0, 1]
    # Rotate the pixel back into the east-pointing frame: direction d is d quarter turns clockwise.
    for _ in range(direction % 4):
        x, y = y, 1.0 - x
    tip, top, bottom = (0.88, 0.5), (0.15, 0.15), (0.15, 0.85)

    def side(a, b):
        return (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])

    s1, s2, s3 = side(top, tip), side(tip, bottom), side(bottom, top)
    return ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))


def _pose_of(item: Any) -> tuple[Level, np.ndarray, int]:
    """The level and the agent pose to draw: a ``Level`` (its start pose), a ``MazeState`` (its
    current pose) or an editor state (what has been placed so far)."""
    if isinstance(item, Level):
        return item, np.asarray(item.agent_pos), int(item.agent_dir)
    if hasattr(item, "level") and isinstance(item.level, Level):
        return item.level, np.asarray(item.agent_pos), int(item.agent_dir)
    if hasattr(item, "wall_map"):
        level = Level(item.wall_map, item.goal_pos, item.agent_pos, item.agent_dir)
        return level, np.asarray(item.agent_pos), int(item.agent_dir)
    raise TypeError(f"cannot render a {type(item).__name__}: give a Level or a maze state")


def render_level(level: Any, cell: int = 16, agent_pos: Any = None, agent_dir: Any = None) -> np.ndarray:
    """uint8 [(H+2)*cell, (W+2)*cell, 3]: the maze with its border. ``level`` may also be a
    ``MazeState`` (the agent is then drawn where it is now); ``agent_pos``/``agent_dir``
    override the pose. Unplaced (out-of-grid) goal or agent are not drawn."""
    level, pos, direction = _pose_of(jax.device_get(level))
    level = to_numpy(level)
    pos = np.asarray(pos if agent_pos is None else agent_pos).reshape(2)
    direction = direction if agent_dir is None else int(agent_dir)
    walls = np.ones((level.wall_map.shape[0] + 2, level.wall_map.shape[1] + 2), bool)
    walls[1:-1, 1:-1] = np.asarray(level.wall_map, bool)
    tiles = np.where(walls[..., None], WALL_COLOUR, FLOOR_COLOUR)
    height, width = walls.shape

    def inside(p) -> bool:
        return 0 <= int(p[0]) < height - 2 and 0 <= int(p[1]) < width - 2

    goal = np.asarray(level.goal_pos)
    if inside(goal):
        tiles[int(goal[0]) + 1, int(goal[1]) + 1] = GOAL_COLOUR
    image = np.repeat(np.repeat(tiles, cell, axis=0), cell, axis=1).astype(np.uint8)
    if cell >= 4:  # thin grid lines on the floor help count cells
        floor = ~np.repeat(np.repeat(walls, cell, axis=0), cell, axis=1)
        lines = np.zeros(image.shape[:2], bool)
        lines[::cell, :] = lines[:, ::cell] = True
        image[floor & lines] = GRID_COLOUR
    if inside(pos):
        r, c = (int(pos[0]) + 1) * cell, (int(pos[1]) + 1) * cell
        image[r:r + cell, c:c + cell][_triangle_mask(cell, direction)] = AGENT_COLOUR
    return image


def render_frames(items: Any, cell: int = 16) -> list[np.ndarray]:
    """One image per level or state: a list of them, or one stacked ``Level``/state (leading
    axis), or a single one."""
    if isinstance(items, (list, tuple)):
        return [render_level(item, cell) for item in items]
    items = jax.device_get(items)
    walls = items.level.wall_map if hasattr(items, "level") else items.wall_map
    if np.ndim(walls) == 2:
        return [render_level(items, cell)]
    return [render_level(jax.tree.map(lambda x, i=i: x[i], items), cell) for i in range(np.shape(walls)[0])]


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes an RGB uint8 image to ``path`` as PNG."""
    from PIL import Image

    Image.fromarray(np.asarray(image, np.uint8)).save(path, format="PNG")


def save_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: int = 8) -> None:
    """Writes ``frames`` (RGB uint8, same size) to ``path`` as a looping GIF at ``fps``."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif needs at least one frame")
    images = [Image.fromarray(np.asarray(frame, np.uint8)) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(1, int(round(1000 / fps))), loop=0)


def render_episode(env: Any, params: Any, level: Level, policy_fn: Callable[[Any, jax.Array], Any],
                   key: jax.Array, max_steps: int | None = None, cell: int = 16) -> list[np.ndarray]:
    """Frames of one episode of ``policy_fn(obs, key) -> action`` on ``level``: the start, then
    one frame per step up to and including the step that ends the episode (the pose the goal was
    reached in, not the next episode's start). A host loop over jitted transitions; stops after
    ``max_steps`` steps (default: the episode limit)."""
    params = env.default_params if params is None else params
    reset_key, key = jax.random.split(key)
    obs, state = env.reset_to_level(reset_key, level, params)
    transition = jax.jit(env.transition)
    observe = jax.jit(env.observe)
    limit = int(max_steps if max_steps is not None else params.max_steps_in_episode)
    frames = [render_level(state, cell)]
    for _ in range(limit):
        key, act_key = jax.random.split(key)
        state, _, terminated, truncated = transition(state, policy_fn(obs, act_key), params)
        frames.append(render_level(state, cell))
        if bool(terminated) or bool(truncated):
            break
        obs = observe(state)
    return frames


def level_grid(levels: Any, columns: int = 4, titles: Sequence[str] | None = None, cell: int = 16):
    """A matplotlib ``Figure`` showing several levels (a list, a stacked ``Level`` or a dict of
    name -> level, whose names become the titles) in a grid of ``columns``."""
    from matplotlib.figure import Figure

    if isinstance(levels, dict):
        titles = list(levels) if titles is None else titles
        levels = list(levels.values())
    images = render_frames(levels, cell)
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(2.4 * columns, 2.5 * rows))
    for index in range(rows * columns):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index])
            if titles is not None and index < len(titles):
                axis.set_title(str(titles[index]), fontsize=9)
    figure.tight_layout()
    return figure
