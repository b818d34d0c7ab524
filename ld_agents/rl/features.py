"""Feature functions: a game's ``Dict`` observation flattened into the vector a model reads.

Pure and numpy only: training (:class:`~ld_agents.rl.wrappers.FeatureObservation`) and
acting (:class:`~ld_agents.rl.policy.RLPolicy`) call the same function, so a saved model
acts on exactly what it was trained on. :func:`pursuit_features`,
:func:`twentyone_features`, and ``FEATURES`` (game -> function, length).

Pursuit features (``PURSUIT_FEATURES`` names them, 114 values, each in [-1, 1])
-------------------------------------------------------------------------------
With ``s = size - 1`` and the evader at ``(ex, ey)``:

=========================  ====  ==========================================================
block                      size  value
=========================  ====  ==========================================================
evader position            2     ``ex / s, ey / s`` (how close the board's edges are)
pursuer - evader           6     ``(px - ex) / s, (py - ey) / s`` per pursuer A, B, C
pursuer distance           3     Manhattan distance to the evader ``/ (2 s)``
pursuer position           6     ``px / s, py / s`` per pursuer
pursuer action mask        42    the env's (3, 14) int8 mask, flattened (legal moves now)
evader's legal moves       5     ``evader_targets`` of the rules as 0/1 (how trapped it is)
restricted area            5     ``1, (x0 - ex) / s, (y0 - ey) / s, (x1 - ex) / s,
                                 (y1 - ey) / s``; all 0 when there is no area
pursuer - evader, near     6     ``clip(px - ex, -3, 3) / 3``, same for y (detail up close)
move gain                  39    per pursuer and move of ``MOVES``: how much nearer (in
                                 Manhattan distance, over 2) that move takes it to the
                                 evader; the board and the area are in the mask block
=========================  ====  ==========================================================

The move-gain block tells each pursuer's head which of its 13 moves close in (the same
information the LLM policies get as their "selection" list, without the ranking); it
makes the first, approach-the-evader phase quick to learn.

The same 114 values exist with and without the restricted area, so a model trained on
``Pursuit-v0`` can be run (and fine-tuned) on ``PursuitRestricted-v0`` unchanged: that
is the new-rule experiment of ``benchmarks/studies/rl_new_rule.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ld_envs.pursuit import MOVES, N_PURSUER_ACTIONS, evader_targets, manhattan

Obs = dict[str, np.ndarray]

PURSUIT_FEATURES: list[str] = (
    ["evader_x", "evader_y"]
    + [f"{n}_{a}_rel" for n in "ABC" for a in "xy"]
    + [f"{n}_dist" for n in "ABC"]
    + [f"{n}_{a}" for n in "ABC" for a in "xy"]
    + [f"mask_{n}_{k}" for n in "ABC" for k in range(N_PURSUER_ACTIONS)]
    + [f"evader_move_{k}" for k in range(5)]
    + ["area", "area_x0_rel", "area_y0_rel", "area_x1_rel", "area_y1_rel"]
    + [f"{n}_{a}_near" for n in "ABC" for a in "xy"]
    + [f"gain_{n}_{k}" for n in "ABC" for k in range(len(MOVES))]
)
#: relative offsets are also given clipped at this many cells (fine detail near the evader)
NEAR = 3
N_PURSUIT_FEATURES = len(PURSUIT_FEATURES)


def _area_of(obs: Obs) -> tuple[int, int, int, int] | None:
    if "restricted" not in obs:
        return None
    x0, y0, x1, y1 = (int(v) for v in obs["restricted"])
    return (x0, y0, x1, y1)


def pursuit_features(obs: Obs, size: int) -> np.ndarray:
    """Flatten a pursuer-side ``Pursuit`` observation into 114 float32 values in [-1, 1].

    See the module docstring for the layout. The mask block is the env's own
    ``obs["action_mask"]``; the evader block comes from the rule function
    ``evader_targets``, so no rule is copied here.
    """
    s = float(size - 1)
    pursuers = [(int(p[0]), int(p[1])) for p in obs["pursuers"]]
    ex, ey = (int(v) for v in obs["evader"])
    area = _area_of(obs)
    out = np.zeros(N_PURSUIT_FEATURES, dtype=np.float32)
    out[0:2] = (ex / s, ey / s)
    for i, (px, py) in enumerate(pursuers):
        out[2 + 2 * i : 4 + 2 * i] = ((px - ex) / s, (py - ey) / s)
        out[8 + i] = manhattan((px, py), (ex, ey)) / (2 * s)
        out[11 + 2 * i : 13 + 2 * i] = (px / s, py / s)
    out[17:59] = np.asarray(obs["action_mask"], dtype=np.float32).reshape(-1)
    moves = evader_targets((ex, ey), pursuers, size, area)
    out[59:64] = [0.0 if m is None else 1.0 for m in moves]
    if area is not None:
        out[64:69] = (
            1.0,
            (area[0] - ex) / s,
            (area[1] - ey) / s,
            (area[2] - ex) / s,
            (area[3] - ey) / s,
        )
    gains = out[75:114].reshape(3, len(MOVES))
    for i, (px, py) in enumerate(pursuers):
        out[69 + 2 * i : 71 + 2 * i] = (
            max(-NEAR, min(NEAR, px - ex)) / NEAR,
            max(-NEAR, min(NEAR, py - ey)) / NEAR,
        )
        d = abs(px - ex) + abs(py - ey)
        for k, (dx, dy) in enumerate(MOVES):
            gains[i, k] = (d - abs(px + dx - ex) - abs(py + dy - ey)) / 2
    return out


TWENTYONE_FEATURES: list[str] = [
    "own_total",
    "opponent_visible_total",
    "total_gap",
    "own_soft",
    "own_stood",
    "opponent_stood",
    "deck_left",
    "own_cards",
    "opponent_cards",
    "opponent_hidden",
    "bust_probability",
    *[f"unseen_class_{k}" for k in range(10)],
]
N_TWENTYONE_FEATURES = len(TWENTYONE_FEATURES)


def twentyone_features(obs: Obs, size: int = 0) -> np.ndarray:
    """Flatten a ``TwentyOne`` observation into 21 float32 values in [-1, 1].

    Totals (own, the opponent's visible cards, their gap) over 31, whether an ace counts
    11 in the own hand, who has stood, cards left in the deck over 26, hand sizes over 9,
    whether the opponent's first card is face down, the probability that a hit busts
    (the rule function ``bust_probability``), and per value class (ace, 2..9, ten-valued)
    the share of its cards still unseen (``unseen_cards``): the card counting the
    public deck allows. ``size`` is unused (one signature for both games).
    """
    from ld_envs import twenty_one as t21

    own = t21.decode_hand(obs["own"])
    other_visible = t21.decode_hand(obs["opponent"])
    n_other = int(np.sum(np.asarray(obs["opponent"]) != t21.EMPTY))
    hidden = int(np.any(np.asarray(obs["opponent"]) == t21.HIDDEN))
    unseen = t21.unseen_cards(own, other_visible)
    counts = np.zeros(t21.N_CLASSES, dtype=np.float32)
    for c in unseen:
        counts[t21.card_class(c)] += 1
    counts /= np.asarray(t21.CLASS_COUNTS, dtype=np.float32)
    own_total = int(obs["own_total"])
    vis_total = int(obs["opponent_visible_total"])
    stood = np.asarray(obs["stood"]).reshape(-1)
    out = np.array(
        [
            own_total / t21.MAX_TOTAL,
            vis_total / t21.MAX_TOTAL,
            (own_total - vis_total) / t21.MAX_TOTAL,
            float(t21.is_soft(own)),
            float(stood[0]),
            float(stood[1]),
            int(obs["deck_left"]) / t21.N_CARDS,
            len(own) / t21.MAX_HAND,
            n_other / t21.MAX_HAND,
            float(hidden),
            t21.bust_probability(own, unseen),
            *counts,
        ],
        dtype=np.float32,
    )
    return np.clip(out, -1.0, 1.0)


#: game -> (feature function, number of features)
FEATURES: dict[str, tuple[Callable[[Obs, int], np.ndarray], int]] = {
    "pursuit": (pursuit_features, N_PURSUIT_FEATURES),
    "twentyone": (twentyone_features, N_TWENTYONE_FEATURES),
}
