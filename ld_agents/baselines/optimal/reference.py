"""The reference solver: expectimax on ordered card sequences, for any opponent.

Exact for every opponent with ``action_probs`` (a float likelihood over the face-down
card), much slower for a full solve than :class:`~ld_agents.baselines.optimal.fast.FastSolver`,
which the tests check against it.
"""

from __future__ import annotations

from typing import Any

from ld_agents.baselines.optimal.model import (
    CLASSES,
    TIE_EPS,
    Hand,
    OpponentModel,
    add_card,
    hand_of,
    hand_total,
    read_observation,
    showdown,
)
from ld_envs.errors import InvalidArgument
from ld_envs.twenty_one import (
    CLASS_COUNTS,
    HIT,
    N_CARDS,
    N_CLASSES,
    STAND,
    TARGET,
)

#: a decision state: agent hand, opponent's visible hand (every card when open), whether
#: the opponent has stood, and the likelihood over the face-down card (None when open)
State = tuple[Hand, Hand, bool, tuple[float, ...] | None]


class ReferenceSolver:
    """Expectimax best response to any opponent with ``action_probs``, on ordered card
    sequences with a float likelihood; exact for every such opponent, and the reference
    that :class:`FastSolver` is tested against."""

    def __init__(self, opponent: Any, open_cards: bool = False) -> None:
        self.open_cards = bool(open_cards)
        self.model = OpponentModel(opponent, self.open_cards)
        self.own_only = self.model.own_only
        self._values: dict[Any, tuple[float, float, int]] = {}
        self._playouts: dict[Any, tuple[float, float]] = {}

    @property
    def n_states(self) -> int:
        """Decision states evaluated so far."""
        return len(self._values)

    # ------------------------------------------------------------- helpers

    def _key(self, state: State) -> Any:
        a, o, stood, like = state
        if self.own_only:
            return (a[1], o[1], stood, like)
        return (a[0], o[0], stood, like)

    @staticmethod
    def _unseen(a: Hand, o: Hand) -> list[int]:
        ac, oc = a[1], o[1]
        return [CLASS_COUNTS[k] - ac[k] - oc[k] for k in CLASSES]

    def _belief(self, like: tuple[float, ...] | None, unseen: list[int]) -> list[tuple[Any, float]]:
        """(h, weight) pairs; h is None when every card is open."""
        if like is None:
            return [(None, 1.0)]
        return [(h, unseen[h] * like[h]) for h in CLASSES if unseen[h] and like[h]]

    @staticmethod
    def _normalise(like: list[float], unseen: list[int]) -> tuple[float, ...] | None:
        like = [v if unseen[h] else 0.0 for h, v in enumerate(like)]
        top = max(like)
        if top <= 0.0:
            return None  # unreachable
        return tuple(v / top for v in like)

    def _opp_hand(self, o: Hand, h: int | None) -> Hand:
        if h is None:
            return o
        return ((h, *o[0]), (*o[1][:h], o[1][h] + 1, *o[1][h + 1 :]), o[2] + h + 1)

    # ------------------------------------------------------------- playout (agent stood)

    def _playout(self, a: Hand, opp: Hand) -> tuple[float, float]:
        """(win, loss) for the agent, standing on ``a``, while the opponent (full hand
        ``opp``, still in) plays out from the deck of the cards neither holds."""
        key = (a[1], opp[1]) if self.own_only else (a[0], opp[0])
        hit = self._playouts.get(key)
        if hit is not None:
            return hit
        deck = self._unseen(a, opp)
        n = sum(deck)
        p_hit = self.model.p_hit(opp, a, True, n) if n else 0.0
        t_agent = hand_total(a[2], a[1])
        win, loss = showdown(t_agent, hand_total(opp[2], opp[1]))
        win *= 1.0 - p_hit
        loss *= 1.0 - p_hit
        if p_hit > 0.0:
            for d in CLASSES:
                if not deck[d]:
                    continue
                p = p_hit * deck[d] / n
                if opp[2] + d + 1 > TARGET:
                    win += p
                else:
                    w, lo = self._playout(a, add_card(opp, d))
                    win += p * w
                    loss += p * lo
        self._playouts[key] = (win, loss)
        return win, loss

    # ------------------------------------------------------------- agent decisions

    def value(self, state: State) -> tuple[float, float, int]:
        """(win, loss, action) of the optimal policy at a decision state."""
        key = self._key(state)
        hit = self._values.get(key)
        if hit is not None:
            return hit
        a, o, stood, like = state
        unseen = self._unseen(a, o)
        belief = self._belief(like, unseen)
        total_w = sum(w for _, w in belief)
        t_agent = hand_total(a[2], a[1])

        # stand
        s_win = s_loss = 0.0
        for h, w in belief:
            opp = self._opp_hand(o, h)
            if stood:
                sw, sl = showdown(t_agent, hand_total(opp[2], opp[1]))
            else:
                sw, sl = self._playout(a, opp)
            s_win += w * sw
            s_loss += w * sl
        s_win /= total_w
        s_loss /= total_w
        result = (s_win, s_loss, STAND)

        n_unseen = sum(unseen)
        deck_n = n_unseen - (0 if like is None else 1)
        if deck_n > 0:  # a hit from an empty deck is a stand
            # upper bound of hitting: every card that does not bust the agent wins
            p_bust = 0.0
            for h, w in belief:
                for c in CLASSES:
                    if a[2] + c + 1 > TARGET:
                        left = unseen[c] - (c == h)
                        p_bust += w * left / deck_n
            p_bust /= total_w
            if 1.0 - 2.0 * p_bust > s_win - s_loss + TIE_EPS:
                h_win, h_loss = self._hit_value(state, unseen, belief, total_w, deck_n)
                if h_win - h_loss > s_win - s_loss + TIE_EPS:
                    result = (h_win, h_loss, HIT)
        self._values[key] = result
        return result

    def _hit_value(
        self,
        state: State,
        unseen: list[int],
        belief: list[tuple[Any, float]],
        total_w: float,
        deck_n: int,
    ) -> tuple[float, float]:
        a, _o, _stood, _like = state
        win = loss = 0.0
        for c in CLASSES:
            if not unseen[c]:
                continue
            if a[2] + c + 1 > TARGET:  # the agent busts at once
                for h, w in belief:
                    loss += w * (unseen[c] - (c == h)) / deck_n
                continue
            for child, weight, w_win, w_loss in self._children(state, c, unseen, belief, deck_n):
                win += w_win
                loss += w_loss
                if child is not None and weight > 0.0:
                    cw, cl, _ = self.value(child)
                    win += weight * cw
                    loss += weight * cl
        return win / total_w, loss / total_w

    def _children(
        self,
        state: State,
        c: int,
        unseen: list[int],
        belief: list[tuple[Any, float]],
        deck_n: int,
    ) -> list[tuple[State | None, float, float, float]]:
        """Branches after the agent draws a (non-busting) card of class ``c``.

        Returns ``(child, weight, win_weight, loss_weight)`` rows with unnormalised
        weights (summing with the belief weights); ``child`` is None for a row that only
        carries a terminal weight.
        """
        a, o, stood, like = state
        a2 = add_card(a, c)
        rows: list[tuple[State | None, float, float, float]] = []
        if stood:  # the opponent has stood: nothing else happens this round
            weight = sum(w * (unseen[c] - (c == h)) / deck_n for h, w in belief)
            rows.append(((a2, o, True, like), weight, 0.0, 0.0))
            return rows
        deck_after = deck_n - 1
        u1 = list(unseen)
        u1[c] -= 1
        # per face-down card: P(draw c), P(opponent hits)
        stand_w = 0.0
        stand_like = [0.0] * N_CLASSES
        hit_rows: list[tuple[Any, float, float]] = []
        for h, w in belief:
            pc = w * (unseen[c] - (c == h)) / deck_n
            if pc <= 0.0:
                continue
            opp = self._opp_hand(o, h)
            p_hit = self.model.p_hit(opp, a2, False, deck_after) if deck_after else 0.0
            stand_w += pc * (1.0 - p_hit)
            if h is not None:
                stand_like[h] = like[h] * (1.0 - p_hit)  # type: ignore[index]
            if p_hit > 0.0:
                hit_rows.append((h, pc * p_hit, p_hit))
        if stand_w > 0.0:
            child_like = None if like is None else self._normalise(stand_like, u1)
            rows.append(((a2, o, True, child_like), stand_w, 0.0, 0.0))
        if not hit_rows:
            return rows
        for d in CLASSES:
            if not u1[d]:
                continue
            u2 = list(u1)
            u2[d] -= 1
            weight = bust_w = 0.0
            child_like_raw = [0.0] * N_CLASSES
            for h, pw, p_hit in hit_rows:
                left = u1[d] - (d == h)
                if left <= 0:
                    continue
                pd = pw * left / deck_after
                hard = o[2] + d + 1 + (0 if h is None else h + 1)
                if hard > TARGET:
                    bust_w += pd
                else:
                    weight += pd
                    if h is not None:
                        child_like_raw[h] = like[h] * p_hit  # type: ignore[index]
            if weight > 0.0:
                child_like = None if like is None else self._normalise(child_like_raw, u2)
                rows.append(((a2, add_card(o, d), False, child_like), weight, bust_w, 0.0))
            elif bust_w > 0.0:
                rows.append((None, 0.0, bust_w, 0.0))
        return rows

    # ------------------------------------------------------------- from the deal

    def initial_states(self) -> list[tuple[State, float]]:
        """Every first decision state with its exact probability."""
        out: dict[Any, tuple[State, float]] = {}
        full = list(CLASS_COUNTS)
        n = N_CARDS

        def draw(counts: list[int], k: int, left: int) -> float:
            p = counts[k] / left
            counts[k] -= 1
            return p

        for a1 in CLASSES:
            for o1 in [None] if not self.open_cards else list(CLASSES):
                for a2 in CLASSES:
                    for o2 in CLASSES:
                        counts = list(full)
                        p = draw(counts, a1, n)
                        left = n - 1
                        if o1 is not None:
                            if not counts[o1]:
                                continue
                            p *= draw(counts, o1, left)
                            left -= 1
                        if not counts[a2]:
                            continue
                        p *= draw(counts, a2, left)
                        left -= 1
                        if not counts[o2]:
                            continue
                        p *= draw(counts, o2, left)
                        a = hand_of((a1, a2))
                        if o1 is None:
                            like: tuple[float, ...] | None = self._normalise(
                                [1.0] * N_CLASSES, counts
                            )
                            o = hand_of((o2,))
                        else:
                            like = None
                            o = hand_of((o1, o2))
                        state: State = (a, o, False, like)
                        key = self._key(state)
                        prev = out.get(key)
                        out[key] = (state, p + (prev[1] if prev else 0.0))
        return list(out.values())

    def solve(self) -> tuple[float, float]:
        """(win, loss) of the optimal policy averaged exactly over every deal."""
        win = loss = 0.0
        for state, p in self.initial_states():
            w, lo, _ = self.value(state)
            win += p * w
            loss += p * lo
        return win, loss

    # ------------------------------------------------------------- from an observation

    def state_from_observation(self, obs: dict[str, Any]) -> State:
        """Replay the rounds an observation implies with the tree's own transitions."""
        a_seq, rest, h, opp_stood, rounds, opp_hits = read_observation(obs, self.open_cards)
        o_seq = rest if h is None else [h, *rest]
        first_o = 1 if h is None else 2
        a = hand_of(a_seq[:2])
        o = hand_of(o_seq[:first_o])
        like = self._normalise([1.0] * N_CLASSES, self._unseen(a, o)) if h is None else None
        state: State = (a, o, False, like)
        for r in range(1, rounds + 1):
            a_st, o_st, stood, like_st = state
            unseen = self._unseen(a_st, o_st)
            belief = self._belief(like_st, unseen)
            deck_n = sum(unseen) - (1 if h is None else 0)
            rows = self._children(state, a_seq[1 + r], unseen, belief, deck_n)
            if stood or r > opp_hits:
                want: tuple[Any, bool] = (o_st[0], True)
            else:
                want = ((*o_st[0], o_seq[first_o + r - 1]), False)
            match = [
                row[0] for row in rows if row[0] is not None and (row[0][1][0], row[0][2]) == want
            ]
            if not match:
                raise InvalidArgument(
                    f"observation has probability 0 under the opponent model: {obs!r}"
                )
            state = match[0]
        if opp_stood != state[2]:
            raise InvalidArgument(f"observation is not reachable under the round order: {obs!r}")
        return state

    def action(self, obs: dict[str, Any]) -> int:
        """The optimal action in an observation (stand once the agent has stood)."""
        if obs["stood"][0]:
            return STAND
        return self.value(self.state_from_observation(obs))[2]
