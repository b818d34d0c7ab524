"""Rendering of the pursuit game: pygame frames (``rgb_array``/``human``) and a text board.

Board coordinates have ``y`` growing upwards, as in the paper's Figure 5: cell ``(x, y)``
is drawn in column ``x`` and row ``size - 1 - y`` from the top. pygame is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ld_envs.pursuit import PURSUER_NAMES, in_area

if TYPE_CHECKING:
    from ld_envs.pursuit import Cell, PursuitEnv

#: a cell's side in pixels on boards up to MAX_BOARD_PX // CELL_PX cells wide (73)
CELL_PX = 28
#: the board's largest side in pixels: on larger boards cells shrink (to MIN_CELL_PX)
MAX_BOARD_PX = 2048
MIN_CELL_PX = 2
HEADER_PX = 36
BACKGROUND = (250, 250, 246)
GRID = (214, 214, 208)
AREA = (120, 120, 120)
RULE_EVERY = (150, 130, 130)  # an extra rule's cell forbidden to every piece
RULE_SOME = (222, 200, 200)  # forbidden to some pieces only
PURSUER = (31, 119, 180)  # blue, as in the paper
EVADER = (255, 127, 14)  # orange, as in the paper
TEXT = (30, 30, 30)
LABEL = (255, 255, 255)


def cell_px(size: int) -> int:
    """A cell's side in pixels on a ``size`` board: ``CELL_PX``, smaller on boards wider
    than ``MAX_BOARD_PX`` (a 1000-cell board at 28 px would need a 3 GB frame)."""
    return max(MIN_CELL_PX, min(CELL_PX, MAX_BOARD_PX // size))


def cell_center(cell: Cell, size: int) -> tuple[int, int]:
    """Pixel (column, row) of the centre of board cell ``(x, y)`` in an ``rgb_array`` frame."""
    x, y = cell
    px = cell_px(size)
    return x * px + px // 2, HEADER_PX + (size - 1 - y) * px + px // 2


def rule_cells(env: PursuitEnv) -> tuple[set[Cell], set[Cell]]:
    """The cells the extra rules forbid now: (to every piece, to some pieces only)."""
    if not getattr(env, "rules", None):
        return set(), set()
    sets = list(env.forbidden_now().values())
    every = set.intersection(*(set(c) for c in sets))
    return every, set().union(*sets) - every


def ansi(env: PursuitEnv) -> str:
    """A text board: ``A``/``B``/``C`` pursuers, ``E`` evader, ``#`` restricted, ``.`` free;
    the extra rules' cells: ``%`` forbidden to every piece, ``+`` to some pieces only.

    A pursuer sharing the evader's cell is shown in lower case.
    """
    size = env.size
    every, some = rule_cells(env)

    def mark(c: Cell) -> str:
        if in_area(c, env.area):
            return "#"
        return "%" if c in every else "+" if c in some else "."

    grid = [[mark((x, y)) for x in range(size)] for y in range(size)]
    ex, ey = env.evader_cell
    grid[ey][ex] = "E"
    for name, (x, y) in zip(PURSUER_NAMES, env.pursuers, strict=True):
        grid[y][x] = name.lower() if (x, y) == (ex, ey) else name
    rows = ["".join(r) for r in reversed(grid)]  # y grows upwards
    header = f"step {env.steps}  violations {env.violations}  outcome {env.outcome}"
    return "\n".join([header, *rows]) + "\n"


class PursuitRenderer:
    """Draws a :class:`PursuitEnv` with pygame, to an array or a window."""

    def __init__(self, size: int, mode: str) -> None:
        import os

        if mode == "rgb_array":
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        import pygame

        if mode == "human":
            pygame.display.init()
        pygame.font.init()  # not pygame.init(): no audio device is wanted
        self.pygame = pygame
        self.size = size
        self.mode = mode
        self.px = cell_px(size)
        self.shape = (size * self.px, HEADER_PX + size * self.px)
        self.surface = pygame.Surface(self.shape)
        self.font = pygame.font.Font(None, 22)
        self.label_font = pygame.font.Font(None, 20)
        self.window: Any = None
        self.clock: Any = None

    def draw(self, env: PursuitEnv) -> np.ndarray | None:
        pg, s, n, px = self.pygame, self.surface, self.size, self.px
        s.fill(BACKGROUND)
        for k in range(n + 1):
            pg.draw.line(s, GRID, (k * px, HEADER_PX), (k * px, HEADER_PX + n * px))
            pg.draw.line(s, GRID, (0, HEADER_PX + k * px), (n * px, HEADER_PX + k * px))
        every, some = rule_cells(env)
        for cells, colour in ((some, RULE_SOME), (every, RULE_EVERY)):
            for x, y in cells:
                top = HEADER_PX + (n - 1 - y) * px
                pg.draw.rect(s, colour, (x * px + 1, top + 1, px - 1, px - 1))
        if env.area is not None:
            x0, y0, x1, y1 = env.area
            left, top = x0 * px, HEADER_PX + (n - 1 - y1) * px
            rect = (left, top, (x1 - x0 + 1) * px, (y1 - y0 + 1) * px)
            pg.draw.rect(s, AREA, rect)
        radius = max(1, px // 2 - 3 * px // CELL_PX)
        pg.draw.circle(s, EVADER, cell_center(env.evader_cell, n), radius)
        for name, cell in zip(PURSUER_NAMES, env.pursuers, strict=True):
            centre = cell_center(cell, n)
            # a pursuer on the evader's cell is drawn smaller so both stay visible
            r = max(1, radius - 4 * px // CELL_PX) if cell == env.evader_cell else radius
            pg.draw.circle(s, PURSUER, centre, r)
            if px == CELL_PX:  # no room for a label on smaller cells
                text = self.label_font.render(name, True, LABEL)
                s.blit(text, text.get_rect(center=centre))
        header = f"step {env.steps}   violations {env.violations}"
        if env.outcome:
            header += f"   {env.outcome}"
        s.blit(self.font.render(header, True, TEXT), (6, 10))

        if self.mode == "human":
            # another env's close() may have quit pygame's one display: open it again
            if self.window is None or pg.display.get_surface() is None:
                pg.display.init()
                self.window = pg.display.set_mode(self.shape)
                pg.display.set_caption("ld-gym pursuit")
                self.clock = pg.time.Clock()
            self.window.blit(s, (0, 0))
            pg.event.pump()
            pg.display.update()
            self.clock.tick(env.metadata["render_fps"])
            return None
        return np.transpose(np.array(pg.surfarray.pixels3d(s)), axes=(1, 0, 2)).copy()

    def close(self) -> None:
        if self.window is not None:
            self.pygame.display.quit()
            self.window = None
