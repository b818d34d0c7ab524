"""The fast solver: expectimax on card multisets, for own-cards-only opponents.

Applies to opponents that declare ``own_cards_only`` and hit with probability 0/1 (the
built-in ``dealer``) or one constant (``random``): :func:`fast_path_table` says whether it
does. Hands are ``(code, hard, has_ace)`` and the belief's likelihood is a bit mask.
"""

from __future__ import annotations

from typing import Any

from ld_agents.baselines.optimal.model import (
    CLASSES,
    EMPTY_HAND,
    TIE_EPS,
    OpponentModel,
    hand_of,
    observation_for,
    read_observation,
)
from ld_envs.errors import InvalidArgument
from ld_envs.twenty_one import (
    ACE_BONUS,
    CLASS_COUNTS,
    HIT,
    N_CARDS,
    N_CLASSES,
    STAND,
    TARGET,
)

# Hands are (code, hard, has_ace) with code = sum(count[k] * 3**k) (k < 9: at most 2 of a
# class) + count[9] * 3**9, so a multiset is one int. The belief's likelihood is a bit mask
# over the face-down card's class: exact when the opponent's hit probability is 0/1 for
# every hand (dealer) or one constant (random), because every factor it contributes is then
# 0 or a constant that normalisation removes. With the hidden card open the mask has one
# bit, so both variants share the code.

_POW = (*tuple(3**k for k in range(9)), 3**9)
_OFF = 9 * 3**9  # > every hand code
_ALL = (1 << N_CLASSES) - 1
_BITS: list[list[int]] = [[h for h in CLASSES if m >> h & 1] for m in range(1 << N_CLASSES)]

FHand = tuple[int, int, bool]
FState = tuple[FHand, FHand, bool, int, tuple[int, ...]]


def _fadd(hand: FHand, k: int) -> FHand:
    return hand[0] + _POW[k], hand[1] + k + 1, hand[2] or k == 0


def _fhand(classes: list[int] | tuple[int, ...]) -> FHand:
    hand: FHand = (0, 0, False)
    for k in classes:
        hand = _fadd(hand, k)
    return hand


def _ftotal(hard: int, ace: bool) -> int:
    return hard + ACE_BONUS if ace and hard + ACE_BONUS <= TARGET else hard


def _dec(u: tuple[int, ...], k: int) -> tuple[int, ...]:
    return (*u[:k], u[k] - 1, *u[k + 1 :])


def _classes_of(code: int) -> list[int]:
    """The value classes of a hand code, in class order."""
    out: list[int] = []
    for k in range(9):
        out += [k] * (code // _POW[k] % 3)
    return out + [9] * (code // _POW[9])


def _opponent_hands() -> list[list[int]]:
    """Every hand of >= 2 cards the opponent can act on (hard total <= 21), as classes."""
    out: list[list[int]] = []

    def rec(k: int, hard: int, cards: list[int]) -> None:
        if k == N_CLASSES:
            if len(cards) >= 2:
                out.append(list(cards))
            return
        for m in range(CLASS_COUNTS[k] + 1):
            if hard + m * (k + 1) > TARGET:
                break
            rec(k + 1, hard + m * (k + 1), cards + [k] * m)

    rec(0, 0, [])
    return out


def _own_cards_table(policy: Any, open_cards: bool) -> dict[int, float]:
    """P(hit) of an own-cards-only policy for every hand it can act on, by hand code."""
    model = OpponentModel(policy, open_cards)
    return {
        _fhand(classes)[0]: model.p_hit(hand_of(classes), EMPTY_HAND, False, N_CARDS - len(classes))
        for classes in _opponent_hands()
    }


def fast_path_table(policy: Any, open_cards: bool) -> dict[int, float] | None:
    """P(hit) per opponent hand code when :class:`FastSolver` applies, else None.

    It applies when the policy declares ``own_cards_only`` and its hit probabilities are
    all 0/1 or all one constant.
    """
    if not getattr(policy, "own_cards_only", False):
        return None
    table = _own_cards_table(policy, open_cards)
    values = set(table.values())
    if values <= {0.0, 1.0} or len(values) == 1:
        return table
    return None


class FastSolver:
    """Expectimax best response to an own-cards-only opponent with 0/1 or constant hit
    probabilities (the built-in ``dealer`` and ``random``), on card multisets.

    Branch weights use a closed form instead of a loop over the face-down card: with
    ``u`` the unseen counts, the number of ways to deal distinct cards of classes
    (h, c, d) is ``u_h (u_c - [c=h]) (u_d - [d=c] - [d=h])``, which is symmetric in the
    three, so sums over ``h`` reduce to prefix sums computed once per state.
    """

    def __init__(
        self, opponent: Any, open_cards: bool, table: dict[int, float], agent: Any = None
    ) -> None:
        self.open_cards = bool(open_cards)
        self.opponent = opponent
        self._p_hit = table
        self._opp: dict[int, tuple[list[float], int, int]] = {}
        self._values: dict[int, tuple[float, float, int]] = {}
        self._playouts: dict[int, tuple[float, float]] = {}
        # with an agent policy the solver evaluates it instead of maximising
        self._agent = agent
        self._agent_model = None if agent is None else OpponentModel(agent, self.open_cards)
        self._agent_p: dict[Any, float] = {}
        # an own-cards-only agent's probabilities come from its table of hands
        self._agent_table = (
            None
            if agent is None or not getattr(agent, "own_cards_only", False)
            else _own_cards_table(agent, self.open_cards)
        )

    @property
    def n_states(self) -> int:
        """Decision states evaluated so far."""
        return len(self._values)

    def _opp_row(self, o: FHand) -> tuple[list[float], int, int]:
        """For a visible opponent hand: P(hit) per face-down class, and the masks of the
        classes under which it may hit / may stand."""
        row = self._opp.get(o[0])
        if row is None:
            ph = [0.0] * N_CLASSES
            hit_ok = stand_ok = 0
            for h in CLASSES:
                held = o[0] // _POW[h] if h == 9 else o[0] // _POW[h] % 3
                if o[1] + h + 1 > TARGET or held >= CLASS_COUNTS[h]:
                    continue
                p = self._p_hit[o[0] + _POW[h]]
                ph[h] = p
                if p > 0.0:
                    hit_ok |= 1 << h
                if p < 1.0:
                    stand_ok |= 1 << h
            row = self._opp[o[0]] = (ph, hit_ok, stand_ok)
        return row

    # ------------------------------------------------------------- transitions

    @staticmethod
    def _umask(u: tuple[int, ...]) -> int:
        m = 0
        for k in CLASSES:
            if u[k]:
                m |= 1 << k
        return m

    def child(self, state: FState, c: int, opp_hit: bool, d: int | None) -> FState:
        """The state after the agent draws ``c`` and the opponent (if in) stands or hits ``d``."""
        a, o, stood, like, u = state
        u1 = _dec(u, c)
        a2 = _fadd(a, c)
        if stood:
            return a2, o, True, like & self._umask(u1), u1
        _, hit_ok, stand_ok = self._opp_row(o)
        deck_after = sum(u1) - 1
        if not opp_hit or d is None or deck_after <= 0:
            mask = like if deck_after <= 0 else like & stand_ok
            return a2, o, True, mask & self._umask(u1), u1
        u2 = _dec(u1, d)
        k = 19 - o[1] - d  # the opponent stays in iff h <= k
        nb = (1 << (min(k, 9) + 1)) - 1 if k >= 0 else 0
        return a2, _fadd(o, d), False, like & hit_ok & nb & self._umask(u2), u2

    # ------------------------------------------------------------- values

    def value(self, state: FState) -> tuple[float, float, int]:
        """(win, loss, action) of the optimal policy at a decision state."""
        return self._value(*state)

    def _value(
        self, a: FHand, o: FHand, stood: bool, like: int, u: tuple[int, ...]
    ) -> tuple[float, float, int]:
        if self.open_cards:  # every card is known: only the opponent's multiset matters
            key = (((a[0] * _OFF + o[0] + _POW[like.bit_length() - 1]) << 1) | stood) << 1
        else:
            key = ((((a[0] * _OFF + o[0]) << 1) | stood) << N_CLASSES) | like
        hit = self._values.get(key)
        if hit is not None:
            return hit
        total_w = 0
        for h in _BITS[like]:
            total_w += u[h]
        deck_n = sum(u) - 1
        if self._agent is not None:  # evaluate the given agent policy
            p = self._agent_hit_probability(a, o, stood, like, u) if deck_n > 0 else 0.0
            win = loss = 0.0
            if p < 1.0:
                s_win, s_loss = self._stand_value(a, o, stood, like, u, total_w)
                win, loss = (1.0 - p) * s_win, (1.0 - p) * s_loss
            if p > 0.0:
                h_win, h_loss = self._hit(a, o, stood, like, u, total_w, deck_n)
                win, loss = win + p * h_win, loss + p * h_loss
            result = (win, loss, HIT if p >= 0.5 else STAND)
            self._values[key] = result
            return result
        s_win, s_loss = self._stand_value(a, o, stood, like, u, total_w)
        result = (s_win, s_loss, STAND)
        if deck_n > 0:
            room = TARGET - a[1]  # a card of class c busts the agent iff c >= room
            p_bust = 0
            for c in range(max(room, 0), N_CLASSES):
                if u[c]:
                    p_bust += u[c] * (total_w - (like >> c & 1))
            # hitting wins at most when the next card does not bust: prune when that
            # bound cannot beat standing
            if 1.0 - 2.0 * p_bust / (deck_n * total_w) > s_win - s_loss + TIE_EPS:
                h_win, h_loss = self._hit(a, o, stood, like, u, total_w, deck_n)
                if h_win - h_loss > s_win - s_loss + TIE_EPS:
                    result = (h_win, h_loss, HIT)
        self._values[key] = result
        return result

    def _stand_value(
        self, a: FHand, o: FHand, stood: bool, like: int, u: tuple[int, ...], total_w: int
    ) -> tuple[float, float]:
        """(win, loss) of standing now."""
        if not stood:
            return self._stand(a, o, like, u)
        t_agent = _ftotal(a[1], a[2])
        win = loss = 0
        o_hard, o_ace = o[1], o[2]
        for h in _BITS[like]:
            t = _ftotal(o_hard + h + 1, o_ace or h == 0)
            if t_agent > t:
                win += u[h]
            elif t_agent < t:
                loss += u[h]
        return win / total_w, loss / total_w

    def _agent_hit_probability(
        self, a: FHand, o: FHand, stood: bool, like: int, u: tuple[int, ...]
    ) -> float:
        """P(hit) of the evaluated agent policy, from the observation it would see."""
        if self._agent_table is not None:
            return self._agent_table[a[0]] if a[1] <= TARGET else 0.0
        h = like.bit_length() - 1 if self.open_cards else 0
        key = (a[0], o[0], stood, h)
        p = self._agent_p.get(key)
        if p is None:
            if not self.open_cards:  # a placeholder for the face-down card (hidden anyway)
                h = (like & -like).bit_length() - 1
            obs = observation_for(
                _classes_of(a[0]),
                (h, *_classes_of(o[0])),
                False,
                stood,
                sum(u) - 1,
                self.open_cards,
            )
            probs = self._agent.action_probs(obs)
            p = self._agent_p[key] = float(probs[1])
        return p

    def _hit(
        self,
        a: FHand,
        o: FHand,
        stood: bool,
        like: int,
        u: tuple[int, ...],
        total_w: int,
        deck_n: int,
    ) -> tuple[float, float]:
        """(win, loss) of hitting now and playing optimally afterwards."""
        value = self._value
        umask = self._umask(u)
        win = loss = 0.0
        deck_after = deck_n - 1
        a_code, a_hard, a_ace = a
        if not stood and deck_after > 0:
            ph, hit_ok, stand_ok = self._opp_row(o)
            s0 = 0.0
            prefix = [0.0] * N_CLASSES
            run = 0.0
            for h in CLASSES:
                if like >> h & 1:
                    s0 += u[h] * (1.0 - ph[h])
                    run += u[h] * ph[h]
                prefix[h] = run
            hit_like = like & hit_ok
            # per opponent card d: the weight sums over h that keep it in (t0) or bust it,
            # the mask of h that keep it in, and its new visible hand
            rows = []
            if hit_like:
                o_code, o_hard, o_ace = o
                for d in CLASSES:
                    k = 19 - o_hard - d  # the opponent stays in iff h <= k
                    if k >= 0:
                        kk = k if k < 9 else 9
                        t0 = prefix[kk]
                        nb = hit_like & ((1 << (kk + 1)) - 1)
                    else:
                        t0 = 0.0
                        nb = 0
                    md = ph[d] if hit_like >> d & 1 else 0.0
                    rows.append(
                        (d, k, t0, prefix[9] - t0, nb, md, d <= k,
                         (o_code + _POW[d], o_hard + d + 1, o_ace or d == 0))
                    )  # fmt: skip
        for c in CLASSES:
            uc = u[c]
            if not uc:
                continue
            lc = like >> c & 1
            if a_hard + c + 1 > TARGET:  # the agent busts at once
                loss += uc * (total_w - lc)
                continue
            u1 = (*u[:c], uc - 1, *u[c + 1 :])
            umask1 = umask if uc > 1 else umask & ~(1 << c)
            a2 = (a_code + _POW[c], a_hard + c + 1, a_ace or c == 0)
            if stood or deck_after <= 0:  # (an opponent's hit from an empty deck is a stand)
                w = uc * (total_w - lc)
                if w > 0:
                    cw, cl, _ = value(a2, o, True, like & umask1, u1)
                    win += w * cw
                    loss += w * cl
                continue
            mc = ph[c] if lc else 0.0
            ws = uc * (s0 - (lc - mc))  # lc * (1 - ph[c])
            if ws > 0.0:
                cw, cl, _ = value(a2, o, True, like & stand_ok & umask1, u1)
                win += ws * cw
                loss += ws * cl
            for d, k, t, bust, nb, md, d_in, o2 in rows:
                ud = u1[d]
                if not ud:
                    continue
                if c <= k:
                    t -= mc
                else:
                    bust -= mc
                if d_in:
                    t -= md
                else:
                    bust -= md
                f = uc * ud / deck_after
                win += f * bust
                if t > 1e-12:
                    mask = nb & umask1 if ud > 1 else nb & umask1 & ~(1 << d)
                    u2 = (*u1[:d], ud - 1, *u1[d + 1 :])
                    cw, cl, _ = value(a2, o2, False, mask, u2)
                    win += f * t * cw
                    loss += f * t * cl
        scale = deck_n * total_w
        return win / scale, loss / scale

    def _stand(self, a: FHand, o: FHand, like: int, u: tuple[int, ...]) -> tuple[float, float]:
        """(win, loss) when the agent stands on ``a`` and the opponent (still in) plays out,
        averaged over the belief about the face-down card."""
        win = loss = 0.0
        total_w = 0
        a_key = a[0] * _OFF
        playout = self._playout
        deck_n = sum(u) - 1
        for h in _BITS[like]:
            uh = u[h]
            total_w += uh
            w, lo = playout(a_key, a, _fadd(o, h), _dec(u, h), deck_n)
            win += uh * w
            loss += uh * lo
        return win / total_w, loss / total_w

    def _playout(
        self, a_key: int, a: FHand, opp: FHand, deck: tuple[int, ...], deck_n: int
    ) -> tuple[float, float]:
        """(win, loss) for the agent standing on ``a`` while the opponent, holding ``opp``
        (every card), plays out from ``deck`` (``deck_n`` cards)."""
        key = a_key + opp[0]
        hit = self._playouts.get(key)
        if hit is not None:
            return hit
        p_hit = self._p_hit[opp[0]] if deck_n else 0.0
        win = loss = 0.0
        if p_hit < 1.0:
            t_agent = _ftotal(a[1], a[2])
            t_opp = _ftotal(opp[1], opp[2])
            if t_agent > t_opp:
                win = 1.0 - p_hit
            elif t_agent < t_opp:
                loss = 1.0 - p_hit
        if p_hit > 0.0:
            room = TARGET - opp[1]  # a card of class d busts the opponent iff d >= room
            f = p_hit / deck_n
            for d in CLASSES:
                ud = deck[d]
                if not ud:
                    continue
                if d >= room:
                    win += f * ud
                else:
                    cw, cl = self._playout(a_key, a, _fadd(opp, d), _dec(deck, d), deck_n - 1)
                    win += f * ud * cw
                    loss += f * ud * cl
        result = (win, loss)
        self._playouts[key] = result
        return result

    # ------------------------------------------------------------- from the deal

    def initial_states(self) -> list[tuple[FState, float]]:
        """Every first decision state with its exact probability."""
        out: dict[Any, tuple[FState, float]] = {}
        for a1 in CLASSES:
            for a2 in CLASSES:
                for o2 in CLASSES:
                    for h in CLASSES if self.open_cards else [None]:
                        counts = list(CLASS_COUNTS)
                        p, left = 1.0, N_CARDS
                        for k in (a1, a2, o2) if h is None else (a1, h, a2, o2):
                            p *= counts[k] / left
                            counts[k] -= 1
                            left -= 1
                        if p <= 0.0:
                            continue
                        if h is not None:
                            counts[h] += 1  # the open face-down card stays "unseen"
                        u = tuple(counts)
                        like = self._umask(u) if h is None else 1 << h
                        state: FState = (_fhand((a1, a2)), _fhand((o2,)), False, like, u)
                        key = (state[0][0], state[1][0], like)
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

    def state_from_observation(self, obs: dict[str, Any]) -> FState:
        """Replay the rounds an observation implies with the tree's own transitions."""
        a_seq, rest, h, opp_stood, rounds, opp_hits = read_observation(obs, self.open_cards)
        u_list = list(CLASS_COUNTS)
        for k in (*a_seq[:2], rest[0]):
            u_list[k] -= 1
        u = tuple(u_list)
        like = self._umask(u) if h is None else 1 << h
        state: FState = (_fhand(a_seq[:2]), _fhand(rest[:1]), False, like, u)
        for r in range(1, rounds + 1):
            hits = r <= opp_hits
            state = self.child(state, a_seq[1 + r], hits, rest[r] if hits else None)
            if not state[3]:
                raise InvalidArgument(
                    f"observation has probability 0 under the opponent model: {obs!r}"
                )
        if opp_stood != state[2]:
            raise InvalidArgument(f"observation is not reachable under the round order: {obs!r}")
        return state

    def action(self, obs: dict[str, Any]) -> int:
        """The optimal action in an observation (stand once the agent has stood)."""
        if obs["stood"][0]:
            return STAND
        return self.value(self.state_from_observation(obs))[2]
