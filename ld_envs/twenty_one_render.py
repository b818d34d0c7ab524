"""Rendering of the 21-points game: pygame frames (``rgb_array``/``human``) and text.

The frame shows the opponent's hand on top and the agent's below, one card per slot
(:func:`card_rect`). The opponent's first card is drawn face down while the episode runs
(unless ``open_cards``) and turned over at the end. pygame is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ld_envs.twenty_one import (
    AGENT,
    MAX_HAND,
    OPPONENT,
    RANKS,
    card_name,
    hand_value,
    suit_of,
)

if TYPE_CHECKING:
    from ld_envs.twenty_one import TwentyOneEnv

CARD_W, CARD_H = 60, 84
GAP = 10
MARGIN = 16
HEADER_PX = 34
LABEL_PX = 24
WIDTH = 2 * MARGIN + MAX_HAND * CARD_W + (MAX_HAND - 1) * GAP
HEIGHT = HEADER_PX + 2 * (LABEL_PX + CARD_H) + 2 * MARGIN

BACKGROUND = (32, 110, 64)  # table green
FACE = (252, 252, 248)
BACK = (40, 70, 160)
BACK_LINE = (200, 210, 240)
EDGE = (20, 20, 20)
BLACK_SUIT = (20, 20, 20)
RED_SUIT = (200, 30, 30)
TEXT = (245, 245, 245)

#: row of each player's hand in the frame (the opponent on top)
ROW = {OPPONENT: 0, AGENT: 1}


def card_rect(player: int, slot: int) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` in pixels of ``player``'s card in ``slot``."""
    left = MARGIN + slot * (CARD_W + GAP)
    top = HEADER_PX + ROW[player] * (LABEL_PX + CARD_H + MARGIN) + LABEL_PX
    return left, top, CARD_W, CARD_H


def face_down(env: TwentyOneEnv, player: int, slot: int) -> bool:
    """Whether a card is drawn face down: the opponent's first, until the episode ends."""
    return player == OPPONENT and slot == 0 and not env.open_cards and env.outcome is None


def ansi(env: TwentyOneEnv) -> str:
    """A text view: both hands (``??`` for the face-down card), totals, deck, outcome."""
    lines = []
    for label, player in (("opponent", OPPONENT), ("agent   ", AGENT)):
        cards = env.hands[player]
        shown = ["??" if face_down(env, player, i) else card_name(c) for i, c in enumerate(cards)]
        visible = [c for i, c in enumerate(cards) if not face_down(env, player, i)]
        total = hand_value(visible)
        hidden = len(visible) < len(cards)
        state = "stood" if env.stood[player] else "in"
        lines.append(
            f"{label}: {' '.join(shown):<30} total {'?+' if hidden else ''}{total:>2}  ({state})"
        )
    lines.append(f"deck: {len(env._deck)} cards   outcome: {env.outcome}")
    return "\n".join(lines) + "\n"


class TwentyOneRenderer:
    """Draws a :class:`TwentyOneEnv` with pygame, to an array or a window."""

    def __init__(self, mode: str) -> None:
        import os

        if mode == "rgb_array":
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        import pygame

        if mode == "human":
            pygame.display.init()
        pygame.font.init()  # not pygame.init(): no audio device is wanted
        self.pygame = pygame
        self.mode = mode
        self.surface = pygame.Surface((WIDTH, HEIGHT))
        self.font = pygame.font.Font(None, 24)
        self.rank_font = pygame.font.Font(None, 30)
        self.window: Any = None
        self.clock: Any = None

    def _card(self, rect: tuple[int, int, int, int], card: int, down: bool) -> None:
        pg, s = self.pygame, self.surface
        left, top, w, h = rect
        if down:
            pg.draw.rect(s, BACK, rect, border_radius=6)
            pg.draw.rect(s, BACK_LINE, (left + 6, top + 6, w - 12, h - 12), width=2)
            pg.draw.line(s, BACK_LINE, (left + 6, top + 6), (left + w - 7, top + h - 7), 2)
            pg.draw.line(s, BACK_LINE, (left + w - 7, top + 6), (left + 6, top + h - 7), 2)
        else:
            pg.draw.rect(s, FACE, rect, border_radius=6)
            colour = RED_SUIT if suit_of(card) == 1 else BLACK_SUIT
            rank = self.rank_font.render(RANKS[card % len(RANKS)], True, colour)
            s.blit(rank, (left + 5, top + 5))
            suit = self.font.render("H" if suit_of(card) == 1 else "S", True, colour)
            s.blit(suit, suit.get_rect(center=(left + w // 2, top + h // 2 + 4)))
        pg.draw.rect(s, EDGE, rect, width=1, border_radius=6)

    def draw(self, env: TwentyOneEnv) -> np.ndarray | None:
        pg, s = self.pygame, self.surface
        s.fill(BACKGROUND)
        header = f"deck {len(env._deck)}"
        if env.outcome:
            header += f"   agent {env.outcome}"
        s.blit(self.font.render(header, True, TEXT), (MARGIN, 10))
        for player, label in ((OPPONENT, "opponent"), (AGENT, "agent")):
            cards = env.hands[player]
            visible = [c for i, c in enumerate(cards) if not face_down(env, player, i)]
            hidden = len(visible) < len(cards)
            text = f"{label}: {'?+' if hidden else ''}{hand_value(visible)}"
            if env.stood[player]:
                text += "  (stood)"
            left, top, _, _ = card_rect(player, 0)
            s.blit(self.font.render(text, True, TEXT), (left, top - LABEL_PX + 4))
            for slot, card in enumerate(cards[:MAX_HAND]):
                self._card(card_rect(player, slot), card, face_down(env, player, slot))

        if self.mode == "human":
            # another env's close() may have quit pygame's one display: open it again
            if self.window is None or pg.display.get_surface() is None:
                pg.display.init()
                self.window = pg.display.set_mode((WIDTH, HEIGHT))
                pg.display.set_caption("ld-gym 21 points")
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
