"""Pursuit rendering puts every piece where the state says (pixel checks)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import ld_envs  # noqa: F401
from ld_envs.pursuit_render import AREA, EVADER, PURSUER, cell_center


def pixel(frame: np.ndarray, xy: tuple[int, int]) -> tuple[int, ...]:
    col, row = xy
    return tuple(int(v) for v in frame[row, col])


def test_pieces_and_area_are_drawn_at_their_cells():
    """Evader, pursuers and restricted block have their colours at their cells' pixels."""
    env = gym.make("PursuitRestricted-v0", render_mode="rgb_array", restricted=(8, 8))
    env.reset(seed=0, options={"preset": "figure5"})
    frame = env.render()
    size = env.unwrapped.size
    assert frame.shape == (36 + 28 * size, 28 * size, 3)
    assert pixel(frame, cell_center((20, 18), size)) == EVADER
    for cell in [(3, 8), (14, 19), (17, 2)]:
        cx, cy = cell_center(cell, size)
        # the label sits at the centre; the disc's colour shows just off it
        assert pixel(frame, (cx - 9, cy)) == PURSUER
    assert pixel(frame, cell_center((10, 10), size)) == AREA
    assert pixel(frame, cell_center((0, 0), size)) != AREA


def test_a_wide_board_draws_smaller_cells_within_the_frame_limit():
    """Past 73 cells the cells shrink, so a 1000-cell board is a frame of about 2,000 px a
    side (at 28 px it would be 3 GB and pygame crashed), with the pieces still at their
    cells."""
    from ld_envs.pursuit_render import MAX_BOARD_PX, cell_px

    assert cell_px(21) == 28 and cell_px(73) == 28 and cell_px(74) < 28
    env = gym.make("Pursuit-v0", render_mode="rgb_array", size=1000)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape[1] <= MAX_BOARD_PX and frame.shape[0] <= MAX_BOARD_PX + 36
    assert pixel(frame, cell_center(env.unwrapped.evader_cell, 1000)) == EVADER


def test_y_grows_upwards_like_the_paper_figure():
    """A cell with larger y is drawn higher (smaller row) in the frame."""
    size = 21
    assert cell_center((3, 10), size)[1] < cell_center((3, 2), size)[1]


def test_ansi_board_places_letters():
    """The text board shows A, B, C and E at their cells, y upwards."""
    env = gym.make("Pursuit-v0", render_mode="ansi")
    env.reset(seed=0, options={"preset": "figure5"})
    rows = env.render().splitlines()[1:]
    size = len(rows)

    def at(x: int, y: int) -> str:
        return rows[size - 1 - y][x]

    assert (at(3, 8), at(14, 19), at(17, 2), at(20, 18)) == ("A", "B", "C", "E")
