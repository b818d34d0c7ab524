"""Non-LLM policies for 21 points: random, dealer, and a scripted heuristic.

Every 21-point policy reads the observation of :func:`ld_envs.twenty_one.observation`
from its own side and answers 0 (stand) or 1 (hit), so one policy plays either side: as
the agent, or passed to the env as the opponent. Each also says how likely it is to hit
(``action_probs``), which lets ``ld_agents.baselines.optimal`` best-respond to it exactly.

``random`` and ``dealer`` are the env's own built-in opponents
(:class:`ld_envs.twenty_one.RandomPlayer`, :class:`ld_envs.twenty_one.DealerPlayer`),
registered here unchanged: one source of truth for their rules.
"""

from __future__ import annotations

from typing import Any

from ld_agents.base import Policy, register
from ld_envs.twenty_one import (
    DEALER_STANDS_AT,
    HIDDEN,
    HIT,
    STAND,
    TARGET,
    DealerPlayer,
    RandomPlayer,
    bust_probability,
    check_probability,
    check_total,
    decode_hand,
    hand_value,
    unseen_cards,
)

__all__ = ["DealerPlayer", "RandomPlayer", "ScriptedPlayer"]

Obs = dict[str, Any]


def opponent_totals(obs: Obs) -> list[int]:
    """The other player's possible current totals, one per candidate face-down card.

    With every card open it is the one exact total. With the first card face down the
    candidates are the cards this player cannot see (uniform; the other's decisions are
    not used to weigh them).
    """
    visible = decode_hand(obs["opponent"])
    if int(obs["opponent"][0]) != HIDDEN:
        return [hand_value(visible)]
    unseen = unseen_cards(decode_hand(obs["own"]), visible)
    return [hand_value([x, *visible]) for x in unseen]


class ScriptedPlayer(Policy):
    """A hand-written 21-point player that counts the unseen cards.

    With ``t`` its total and ``p_bust`` the chance that the next card busts it
    (:func:`ld_envs.twenty_one.bust_probability` over the cards it cannot see):

    1. ``t >= 21``: stand.
    2. The other has stood: standing wins with probability ``s``, the share of the
       other's possible totals (:func:`opponent_totals`) that ``t`` beats; hit when a safe
       card is likelier than that (``1 - p_bust > s``), else stand.
    3. The other is still in: hit when ``p_bust == 0``, or when ``t < stand_at`` (17)
       and ``p_bust < max_bust`` (0.5); else stand.

    Deterministic: ``action_probs`` is (1, 0) or (0, 1).
    """

    def __init__(
        self, stand_at: int = DEALER_STANDS_AT, max_bust: float = 0.5, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        self.stand_at = check_total("stand_at", stand_at)
        self.max_bust = check_probability("max_bust", max_bust)

    def decide(self, obs: Obs) -> int:
        """The rule above: 0 = stand, 1 = hit."""
        total = int(obs["own_total"])
        if total >= TARGET:
            return STAND
        own = decode_hand(obs["own"])
        visible = decode_hand(obs["opponent"])
        p_bust = bust_probability(own, unseen_cards(own, visible))
        if obs["stood"][1]:
            totals = opponent_totals(obs)
            s = sum(1 for t in totals if total > t) / len(totals)
            return HIT if 1.0 - p_bust > s else STAND
        if p_bust == 0.0 or (total < self.stand_at and p_bust < self.max_bust):
            return HIT
        return STAND

    def action_probs(self, obs: Obs) -> tuple[float, float]:
        """``(p_stand, p_hit)``: 0/1, as the rule is deterministic."""
        return (0.0, 1.0) if self.decide(obs) == HIT else (1.0, 0.0)

    def act(self, obs: Obs) -> int:
        return self.decide(obs)


@register("random", "twentyone")
def _random(env_id: str, seed: int | None = None, p_hit: float = 0.5) -> RandomPlayer:
    return RandomPlayer(seed=seed, p_hit=p_hit)


@register("dealer", "twentyone")
def _dealer(
    env_id: str, stands_at: int = DEALER_STANDS_AT, seed: int | None = None
) -> DealerPlayer:
    return DealerPlayer(seed=seed, stands_at=stands_at)


@register("scripted", "twentyone")
def _scripted(
    env_id: str,
    stand_at: int = DEALER_STANDS_AT,
    max_bust: float = 0.5,
    seed: int | None = None,
) -> ScriptedPlayer:
    return ScriptedPlayer(stand_at=stand_at, max_bust=max_bust, seed=seed)
