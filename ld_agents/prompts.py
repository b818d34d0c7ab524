"""Prompt templates (``assets/prompts/``) filled from observations, and answer parsing.

The embedded model is a base model with no chat template, so every prompt is a plain
completion that ends with ``Answer:``; chat endpoints receive the same text as one user
message. The state text lists the legal target cells (the paper's "selection"), computed
by the same rule functions as the env. Parsing is lenient; what cannot be read becomes
``None`` (pursuit: ``NO_CHOICE`` for the env to count).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

from ld_agents.files import assets_dir
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import (
    EVADER_MOVES,
    MAX_STEPS,
    MAX_VIOLATIONS,
    MOVES,
    PURSUER_NAMES,
    Area,
    Cell,
    pursuer_action_mask,
)


@functools.cache
def template(name: str) -> str:
    """Load ``assets/prompts/<name>.txt`` (without its final newline)."""
    path = assets_dir() / "prompts" / f"{name}.txt"
    if not path.is_file():
        raise InvalidArgument(f"prompt template {name!r} not found at {path}")
    return path.read_text(encoding="utf-8").removesuffix("\n")


def fmt_cell(cell: Sequence[int]) -> str:
    return f"({int(cell[0])}, {int(cell[1])})"


def _area(obs: dict[str, np.ndarray]) -> Area | None:
    return tuple(int(v) for v in obs["restricted"]) if "restricted" in obs else None  # type: ignore[return-value]


def area_rule(area: Area | None) -> str:
    """The restricted-area clause of the rules (empty when there is no area)."""
    if area is None:
        return ""
    x0, y0, x1, y1 = area
    return template("area_rule").format(x0=x0, y0=y0, x1=x1, y1=y1)


def pursuer_targets_from_mask(obs: dict[str, np.ndarray]) -> list[list[Cell]]:
    """Per pursuer, the target cells its mask allows now, in ``MOVES`` order."""
    out = []
    for (x, y), row in zip(obs["pursuers"].tolist(), obs["action_mask"].tolist(), strict=True):
        out.append([(x + MOVES[k][0], y + MOVES[k][1]) for k in range(len(MOVES)) if row[k]])
    return out


def pursuit_pursuers_prompt(
    obs: dict[str, np.ndarray], size: int, rule_text: str | None = None, rule_mask: str = "env"
) -> str:
    """The raw pursuers' prompt: rules, state and each pursuer's legal target cells.

    ``rule_text``: a new rule in force, told as text. ``rule_mask``: ``"env"`` lists the
    cells the env's mask allows (a new rule's cells already left out); ``"base"`` lists the
    base game's legal cells, so the new rule is known from its text alone."""
    if rule_mask == "base":
        cells = [tuple(p) for p in obs["pursuers"].tolist()]
        base = dict(obs, action_mask=pursuer_action_mask(cells, size, _area(obs)))
        targets = pursuer_targets_from_mask(base)
    else:
        targets = pursuer_targets_from_mask(obs)
    rule = area_rule(_area(obs))
    if rule_text:
        rule += f"; and a new rule is in force: {rule_text.strip().rstrip('.')}"
    lines = [
        f"Pursuer {name} is at {fmt_cell(p)}. It may move to: "
        + ", ".join(fmt_cell(t) for t in cells)
        for name, p, cells in zip(PURSUER_NAMES, obs["pursuers"].tolist(), targets, strict=True)
    ]
    return template("pursuit_pursuers").format(
        size=size,
        max_xy=size - 1,
        area_rule=rule,
        max_steps=MAX_STEPS,
        max_violations=MAX_VIOLATIONS,
        evader=fmt_cell(obs["evader"]),
        pursuer_lines="\n".join(lines),
    )


def evader_targets_from_mask(obs: dict[str, np.ndarray]) -> list[Cell]:
    """The evader's legal target cells, in ``EVADER_MOVES`` order (stay first)."""
    ex, ey = obs["evader"].tolist()
    return [
        (ex + dx, ey + dy)
        for (dx, dy), ok in zip(EVADER_MOVES, obs["action_mask"].tolist(), strict=True)
        if ok
    ]


def pursuit_evader_prompt(obs: dict[str, np.ndarray], size: int) -> str:
    """The raw evader's prompt: rules, the pursuers' cells and its legal target cells."""
    lines = [
        f"Pursuer {name} is at {fmt_cell(p)}."
        for name, p in zip(PURSUER_NAMES, obs["pursuers"].tolist(), strict=True)
    ]
    return template("pursuit_evader").format(
        size=size,
        max_xy=size - 1,
        area_rule=area_rule(_area(obs)),
        max_steps=MAX_STEPS,
        evader=fmt_cell(obs["evader"]),
        pursuer_lines="\n".join(lines),
        targets=", ".join(fmt_cell(t) for t in evader_targets_from_mask(obs)),
    )


def _cards_text(codes: Sequence[int]) -> str:
    from ld_envs.twenty_one import EMPTY, HIDDEN, card_name

    names = ["one face down" if c == HIDDEN else card_name(c) for c in codes if c != EMPTY]
    return ", ".join(names) if names else "none"


def twentyone_prompt(obs: dict[str, np.ndarray]) -> str:
    """The raw 21-point player's prompt: rules, both hands as seen, who stood, the deck."""
    stood = [int(v) for v in obs["stood"]]
    return template("twentyone_player").format(
        own=_cards_text(obs["own"].tolist()),
        own_total=int(obs["own_total"]),
        opponent=_cards_text(obs["opponent"].tolist()),
        opponent_total=int(obs["opponent_visible_total"]),
        opponent_status="The opponent has stood." if stood[1] else "The opponent has not stood.",
        deck_left=int(obs["deck_left"]),
    )


_HIT_STAND = re.compile(r"\b(hit|stand)\b", re.IGNORECASE)


def parse_hit_stand(text: str) -> int | None:
    """1 for hit, 0 for stand (the first of the two words in the answer), else ``None``."""
    m = _HIT_STAND.search(text)
    if m is None:
        return None
    return 1 if m.group(1).lower() == "hit" else 0


_NUM = r"(-?\d{1,3})"
_PAIR = rf"\(?\s*{_NUM}\s*,\s*{_NUM}\s*\)?"
_LABELLED = re.compile(rf"\b([ABC])\b\s*(?::|->|=|moves? to|goes to|to)?\s*{_PAIR}")
_ANY_PAIR = re.compile(_PAIR)


def parse_pursuer_answer(text: str) -> list[Cell | None]:
    """Read three target cells from a free-text answer (``None`` where unreadable).

    Labelled cells (``A: (3, 4)``) win; otherwise the first three ``(x, y)`` pairs are
    taken in order A, B, C.
    """
    labelled: dict[str, Cell] = {}
    for m in _LABELLED.finditer(text):
        labelled.setdefault(m.group(1), (int(m.group(2)), int(m.group(3))))
    if labelled:
        return [labelled.get(name) for name in PURSUER_NAMES]
    pairs: list[Cell | None] = [(int(a), int(b)) for a, b in _ANY_PAIR.findall(text)[:3]]
    return pairs + [None] * (3 - len(pairs))


def parse_cell(text: str) -> Cell | None:
    """Read the first ``(x, y)`` pair of an answer, or ``None``."""
    m = _ANY_PAIR.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None
