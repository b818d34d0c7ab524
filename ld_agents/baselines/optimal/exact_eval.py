"""Exact value of any observation-deterministic 21-points policy, by enumerating the game.

:func:`exact_evaluate` gives a policy's exact win / loss / draw probabilities and expected
reward against an opponent (``dealer``, ``random`` or any policy the evaluation can ask:
:mod:`~ld_agents.baselines.optimal.answers`), with the opponent's first card face down or
open. Nothing is sampled: the tree of every deck order, face-down card and opponent move
is walked round by round, and the policy is asked once per distinct observation.

How the tree is walked
----------------------
The deck is shuffled uniformly, so the next card is uniform over the cards not yet dealt.
Cards are enumerated at the card detail the two sides need (``class``: value classes;
``rank``: ranks without suits; ``card``: card ids), drawing a symbol with probability
(copies left) / (cards left); an observation shows representative card ids of its
symbols, and hands whose order neither side reads are kept sorted (merged).

- An *agent node* is what the agent sees (its cards, the opponent's visible cards, whether
  the opponent stood) with the joint probability ``P(node, h)`` of each face-down card
  ``h``. Given ``(node, h)`` the rest of the game does not depend on how it was reached
  (the deck left is every card not in it), so merging nodes is exact.
- Round by round, every agent node of the round is asked (one batch), then expanded:
  a stand sends each ``(node, h)`` to the opponent's play-out; a hit draws each card,
  busts or goes to the opponent's reply (asked in one batch on its own observations:
  its cards with ``h``, the agent's cards with the agent's first card face down); the
  opponent's stand or card (or bust) gives the next round's agent nodes.
- Play-outs (the agent stood, the opponent still in) are walked the same way at the end,
  merged over rounds, then the showdown. Probabilities are summed with ``math.fsum``.

A random opponent's (or an expected policy's) hit probability weighs both branches; a
deterministic policy's 0/1 prunes one. The figures equal the solver's where both apply
(the ``optimal`` policy's value is the solver's; ``scripted`` equals
:func:`~ld_agents.baselines.optimal.evaluate`), to float rounding.

Cost
----
Against the dealer with the face-down card, a dealer-like policy meets 991 first
observations and about 8.3 million value-class sequences in all (12.6 million rank
sequences; about 4 minutes of this walk on a 2-core CPU with a free policy), but about
120,000 value-class multisets: a policy whose answer reads hands as multisets (scripted,
dealer, rl, ld_oracle) takes 5 to 50 seconds. A policy that reads the order of the cards
and their ranks or suits (the LLM policies' prompts list each card in order) needs every
sequence: at 0.5 to 1 s per LLM answer on a 2-core CPU that is weeks (raw: over a
billion card sequences), so :func:`estimate_queries` estimates what the walk would take;
``detail=``/``order=`` walk such a policy at less detail as a recorded assumption
(``assumed``: exact for the policy reading canonical observations; about 120,000 answers
for a dealer-like policy, still hours), and ``later=`` walks a policy whose first
decision alone reads more (:mod:`ld_agents.ld.stage_value`).
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ld_agents.baselines.optimal.answers import (
    DETAILS,
    ORDERS,
    Answerer,
    Traits,
    build_policy,
    check_policy,
    finest,
    most_order,
    opponent_source,
    policy_label,
)
from ld_envs.errors import InvalidArgument, unknown_name
from ld_envs.twenty_one import (
    ACE_BONUS,
    CLASS_COUNTS,
    N_CARDS,
    N_RANKS,
    TARGET,
    card_class,
    check_flag,
    observation,
)

logger = logging.getLogger(__name__)

Seq = tuple[int, ...]
#: an agent node: (agent symbols, opponent's visible symbols, opponent stood)
Node = tuple[Seq, Seq, bool]
#: an opponent node: (agent symbols, opponent's symbols with the face-down one first)
Full = tuple[Seq, Seq]


# ----------------------------------------------------------------------------- card detail


@dataclass(frozen=True)
class CardDetail:
    """Cards as symbols: copies of each in the deck, their card ids, their hard value."""

    name: str
    counts: tuple[int, ...]
    ids: tuple[tuple[int, ...], ...]
    values: tuple[int, ...]

    def symbol(self, card: int) -> int:
        """The symbol of a card id."""
        if self.name == "class":
            return card_class(card)
        if self.name == "rank":
            return card % N_RANKS
        return card


def _ids_of(symbol_of: Callable[[int], int], n: int) -> tuple[tuple[int, ...], ...]:
    """Card ids of each symbol, by rank then suit (a hand of two ten-valued cards shows
    ``10S, 10H``)."""
    by_rank = sorted(range(N_CARDS), key=lambda c: (c % N_RANKS, c // N_RANKS))
    return tuple(tuple(c for c in by_rank if symbol_of(c) == s) for s in range(n))


@functools.cache
def card_detail(name: str) -> CardDetail:
    """The :class:`CardDetail` named ``class``, ``rank`` or ``card``."""
    if name == "class":
        ids = _ids_of(card_class, len(CLASS_COUNTS))
    elif name == "rank":
        ids = _ids_of(lambda c: c % N_RANKS, N_RANKS)
    elif name == "card":
        ids = tuple((c,) for c in range(N_CARDS))
    else:
        raise InvalidArgument(f"card detail must be 'class', 'rank' or 'card', got {name!r}")
    counts = tuple(len(i) for i in ids)
    values = tuple(min(i[0] % N_RANKS, 9) + 1 for i in ids)
    return CardDetail(name, counts, ids, values)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ExactResult:
    """Exact figures of a policy against an opponent, and what computing them took."""

    policy: str
    opponent: str
    open_cards: bool
    win: float
    loss: float
    draw: float
    expected_reward: float
    #: the card detail enumerated and whose card order was kept (see ``answers``)
    detail: str
    order: str
    #: distinct observations the policy was asked, and the opponent
    observations: int
    opponent_observations: int
    #: agent decision nodes per round
    nodes_per_round: list[int] = field(default_factory=list)
    #: wall seconds in all, and inside the policy's answers
    seconds: float = 0.0
    policy_seconds: float = 0.0
    executor: str = "serial"
    workers: int = 1
    #: "refuse" (deterministic) or "expect" (averaged over action_probs)
    stochastic: str = "refuse"
    #: what the evaluation assumed beyond the policy's traits ("" when nothing): the
    #: figures are then exact for the policy reading canonical observations
    assumed: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- the tree


class _Sum:
    """Exactly rounded running sum (``math.fsum`` over the parts, folded per round)."""

    def __init__(self) -> None:
        self.parts: list[float] = []

    def add(self, x: float) -> None:
        self.parts.append(x)

    def fold(self) -> float:
        value = math.fsum(self.parts)
        self.parts = [value]
        return value


class GameTree:
    """The exact walk of one agent policy against one opponent (see the module docstring).

    ``agent`` and ``opponent`` are :class:`Answerer` objects; ``order`` says whose card
    order is kept (``"all"``, ``"opponent"``, ``"none"``: the other hands are sorted);
    ``opponent_own_only``: the opponent reads its own cards alone (keys its answers by
    them). ``progress`` shows a tqdm bar of the observations answered.
    """

    def __init__(
        self,
        agent: Answerer,
        opponent: Answerer,
        detail: CardDetail,
        open_cards: bool,
        opponent_own_only: bool,
        order: str = "all",
        progress: bool = True,
        later: tuple[CardDetail, str] | None = None,
    ) -> None:
        self.agent = agent
        self.opponent = opponent
        self.d = detail
        self.open_cards = bool(open_cards)
        self.opponent_own_only = opponent_own_only
        self.sort_agent = order != "all"
        self.sort_opponent = order == "none"
        self.progress = progress
        #: the card detail and order from the second decision on (None: the same)
        self.later = later
        self._win = _Sum()
        self._loss = _Sum()
        self.nodes_per_round: list[int] = []
        self._playouts: dict[Full, float] = defaultdict(float)

    @property
    def win(self) -> float:
        return self._win.fold()

    @property
    def loss(self) -> float:
        return self._loss.fold()

    # ------------------------------------------------------------- hands and decks

    def hard(self, seq: Seq) -> int:
        values = self.d.values
        return sum(values[x] for x in seq)

    def total(self, seq: Seq) -> int:
        values = self.d.values
        hard = sum(values[x] for x in seq)
        if hard + ACE_BONUS <= TARGET and any(values[x] == 1 for x in seq):
            return hard + ACE_BONUS
        return hard

    def deck(self, a: Seq, full: Seq) -> list[int]:
        """Copies of each symbol left in the deck once ``a`` and ``full`` are dealt."""
        left = list(self.d.counts)
        for x in a:
            left[x] -= 1
        for x in full:
            left[x] -= 1
        return left

    def full(self, o: Seq, h: int) -> Seq:
        """The opponent's whole hand: ``o`` (open) or ``h`` then ``o`` (face down)."""
        return o if self.open_cards else (h, *o)

    def visible(self, full: Seq) -> Seq:
        return full if self.open_cards else full[1:]

    def add_agent(self, a: Seq, c: int) -> Seq:
        return tuple(sorted((*a, c))) if self.sort_agent else (*a, c)

    def add_opponent(self, o: Seq, d: int) -> Seq:
        """The opponent's visible cards with one more (sorted after the first card when
        open, as the first is then the face-down one turned up)."""
        if not self.sort_opponent:
            return (*o, d)
        if self.open_cards:
            return (o[0], *sorted((*o[1:], d)))
        return tuple(sorted((*o, d)))

    def _ids(self, *hands: Seq) -> list[list[int]]:
        """Representative card ids for the hands, copies taken in order of appearance."""
        used = [0] * len(self.d.counts)
        out = []
        for hand in hands:
            cards = []
            for x in hand:
                cards.append(self.d.ids[x][used[x]])
                used[x] += 1
            out.append(cards)
        return out

    # ------------------------------------------------------------- observations

    def agent_obs(self, node: Node) -> dict[str, Any]:
        a, o, stood = node
        own, other = self._ids(a, o)
        if not self.open_cards:  # a placeholder under the face-down card (never shown)
            other = [0, *other]
        deck_left = N_CARDS - len(a) - len(o) - (0 if self.open_cards else 1)
        return observation(own, other, False, stood, deck_left, self.open_cards)

    def opponent_key(self, a: Seq, full: Seq, agent_stood: bool) -> Any:
        if self.opponent_own_only:
            return (full, N_CARDS - len(a) - len(full))
        return (full, a if self.open_cards else a[1:], len(a), agent_stood)

    def opponent_obs_of(self, key: Any) -> dict[str, Any]:
        if self.opponent_own_only:
            full, deck_left = key
            (own,) = self._ids(full)
            return observation(own, [], False, False, deck_left, True)
        full, a_vis, n_a, agent_stood = key
        own, other = self._ids(full, a_vis)
        if not self.open_cards:
            other = [0, *other]
        deck_left = N_CARDS - n_a - len(full)
        return observation(own, other, False, agent_stood, deck_left, self.open_cards)

    # ------------------------------------------------------------- the walk

    def initial(self) -> dict[Node, dict[int, float]]:
        """Every first agent node with ``P(node, h)`` per face-down card."""
        nodes: dict[Node, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        counts = self.d.counts
        n = N_CARDS
        syms = range(len(counts))
        for a1 in syms:
            p1 = counts[a1] / n
            for h in syms:
                c_h = counts[h] - (h == a1)
                if c_h <= 0:
                    continue
                p2 = p1 * c_h / (n - 1)
                for a2 in syms:
                    c_a2 = counts[a2] - (a2 == a1) - (a2 == h)
                    if c_a2 <= 0:
                        continue
                    p3 = p2 * c_a2 / (n - 2)
                    a = self.add_agent((a1,), a2)
                    for o2 in syms:
                        c_o2 = counts[o2] - (o2 == a1) - (o2 == h) - (o2 == a2)
                        if c_o2 <= 0:
                            continue
                        o = (h, o2) if self.open_cards else (o2,)
                        nodes[(a, o, False)][h] += p3 * c_o2 / (n - 3)
        return nodes

    def run(self) -> tuple[float, float]:
        """Walk the whole tree; ``(win, loss)`` of the agent."""
        from tqdm.auto import tqdm

        bar = tqdm(total=0, desc="exact 21", unit="obs", disable=not self.progress)
        try:
            frontier = self.initial()
            while frontier:
                self.nodes_per_round.append(len(frontier))
                bar.set_postfix(round=len(self.nodes_per_round), nodes=len(frontier))
                frontier = self.round(frontier, bar)
                if self.later is not None and len(self.nodes_per_round) == 1:
                    frontier = self.coarsen(frontier, *self.later)
            self._play_out(bar)
        finally:
            bar.close()
        return self.win, self.loss

    def coarsen(
        self, frontier: dict[Node, dict[int, float]], detail: CardDetail, order: str
    ) -> dict[Node, dict[int, float]]:
        """Go on at a coarser card detail and less order (merging nodes): exact when
        neither side reads more from here on."""
        to = [detail.symbol(ids[0]) for ids in self.d.ids]
        self.d = detail
        self.agent.cache.clear()  # keys now name coarser symbols
        self.opponent.cache.clear()
        self.sort_agent = order != "all"
        self.sort_opponent = order == "none"

        def agent(a: Seq) -> Seq:
            a = tuple(to[x] for x in a)
            return tuple(sorted(a)) if self.sort_agent else a

        def opponent(o: Seq) -> Seq:
            o = tuple(to[x] for x in o)
            if not self.sort_opponent or not o:
                return o
            return (o[0], *sorted(o[1:])) if self.open_cards else tuple(sorted(o))

        nodes: dict[Node, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for (a, o, stood), masses in frontier.items():
            row = nodes[(agent(a), opponent(o), stood)]
            for h, m in masses.items():
                row[to[h]] += m
        playouts: dict[Full, float] = defaultdict(float)
        for (a, full), m in self._playouts.items():
            h = to[full[0]]
            playouts[(agent(a), self.full(opponent(self.visible(full)), h))] += m
        self._playouts = playouts
        return nodes

    def round(
        self, frontier: dict[Node, dict[int, float]], bar: Any = None
    ) -> dict[Node, dict[int, float]]:
        """Ask the agent at every node, expand; ask the opponent's replies; the next round."""
        self.agent.ask(list(frontier), self.agent_obs, bar)
        replies: dict[Full, float] = defaultdict(float)
        nxt: dict[Node, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for node, masses in frontier.items():
            self._expand(node, masses, self.agent.cache[node], replies, nxt)
        keys = {s: self.opponent_key(s[0], s[1], False) for s in replies}
        self.opponent.ask(list(set(keys.values())), self.opponent_obs_of, bar)
        for (a, full), mass in replies.items():
            self._reply(a, full, mass, self.opponent.cache[keys[(a, full)]], nxt)
        self._win.fold()
        self._loss.fold()
        return nxt

    def _expand(
        self,
        node: Node,
        masses: dict[int, float],
        p_hit: float,
        replies: dict[Full, float],
        nxt: dict[Node, dict[int, float]],
    ) -> None:
        a, o, stood = node
        hard = self.hard(a)
        values = self.d.values
        for h, m in masses.items():
            full = self.full(o, h)
            deck = self.deck(a, full)
            deck_n = sum(deck)
            p = p_hit if deck_n > 0 else 0.0  # a hit from an empty deck is a stand
            if p < 1.0:
                if stood:
                    self._showdown(self.total(a), self.total(full), m * (1.0 - p))
                else:
                    self._playouts[(a, full)] += m * (1.0 - p)
            if p <= 0.0:
                continue
            f = m * p / deck_n
            for c, left in enumerate(deck):
                if not left:
                    continue
                if hard + values[c] > TARGET:
                    self._loss.add(f * left)
                    continue
                a2 = self.add_agent(a, c)
                if stood:
                    nxt[(a2, o, True)][h] += f * left
                else:
                    replies[(a2, full)] += f * left

    def _reply(
        self, a: Seq, full: Seq, mass: float, q: float, nxt: dict[Node, dict[int, float]]
    ) -> None:
        """The opponent's turn after the agent's (non-busting) hit."""
        deck = self.deck(a, full)
        deck_n = sum(deck)
        if deck_n == 0:
            q = 0.0
        h, o = full[0], self.visible(full)
        if q < 1.0:
            nxt[(a, o, True)][h] += mass * (1.0 - q)
        if q <= 0.0:
            return
        hard = self.hard(full)
        f = mass * q / deck_n
        for d, left in enumerate(deck):
            if not left:
                continue
            if hard + self.d.values[d] > TARGET:
                self._win.add(f * left)
            else:
                nxt[(a, self.add_opponent(o, d), False)][h] += f * left

    def _play_out(self, bar: Any) -> None:
        """The opponent plays out against every agent that stood, then the showdown."""
        level = dict(self._playouts)
        self._playouts.clear()
        while level:
            keys = {s: self.opponent_key(s[0], s[1], True) for s in level}
            self.opponent.ask(list(set(keys.values())), self.opponent_obs_of, bar)
            nxt: dict[Full, float] = defaultdict(float)
            for (a, full), mass in level.items():
                q = self.opponent.cache[keys[(a, full)]]
                deck = self.deck(a, full)
                deck_n = sum(deck)
                if deck_n == 0:
                    q = 0.0
                if q < 1.0:
                    self._showdown(self.total(a), self.total(full), mass * (1.0 - q))
                if q <= 0.0:
                    continue
                hard = self.hard(full)
                f = mass * q / deck_n
                for d, left in enumerate(deck):
                    if not left:
                        continue
                    if hard + self.d.values[d] > TARGET:
                        self._win.add(f * left)
                    else:
                        o = self.add_opponent(self.visible(full), d)
                        nxt[(a, self.full(o, full[0]))] += f * left
            level = nxt
            self._win.fold()
            self._loss.fold()

    def _showdown(self, t_agent: int, t_opp: int, mass: float) -> None:
        if t_agent > t_opp:
            self._win.add(mass)
        elif t_agent < t_opp:
            self._loss.add(mass)


# ----------------------------------------------------------------------------- entry points


def _source(policy: Any, kwargs: dict[str, Any] | None) -> Any:
    """What builds the policy (here and in each Ray worker): a name with its kwargs becomes
    a factory; objects and factories pass through."""
    if isinstance(policy, str):
        from ld_agents.base import make

        return functools.partial(make, policy, "TwentyOne-v0", **(kwargs or {}))
    if kwargs:
        raise InvalidArgument("policy_kwargs go with a policy name, not a policy object")
    return policy


@dataclass
class _Side:
    policy: Any
    source: Any
    traits: Traits
    expect: bool


def _side(policy: Any, kwargs: dict[str, Any] | None, stochastic: str, side: str) -> _Side:
    source = _source(opponent_source(policy) if side == "opponent" else policy, kwargs)
    built = build_policy(source)
    traits = check_policy(built, stochastic if side == "agent" else "expect", side)
    return _Side(built, source, traits, not traits.deterministic)


def _walk_plan(
    ag: _Side, op: _Side, detail: str | None, order: str | None
) -> tuple[str, str, bool, str]:
    """The card detail and order to walk, whether the opponent reads its own cards alone,
    and what that assumes beyond the agent's traits ("" when nothing)."""
    own_only = bool(getattr(op.policy, "own_cards_only", False))
    if detail is not None and detail not in DETAILS:
        raise unknown_name("detail", detail, list(DETAILS))
    if order is not None and order not in ORDERS:
        raise unknown_name("order", order, list(ORDERS))
    op_order = "none" if own_only else op.traits.order
    level = finest(detail or ag.traits.detail, op.traits.detail)
    walk_order = most_order(order or ag.traits.order, op_order)
    assumed = []
    if DETAILS.index(level) < DETAILS.index(ag.traits.detail):
        assumed.append(f"detail {level} (the policy reads {ag.traits.detail})")
    if ORDERS.index(walk_order) < ORDERS.index(ag.traits.order):
        assumed.append(f"order {walk_order} (the policy reads order {ag.traits.order})")
    return level, walk_order, own_only, "; ".join(assumed)


def exact_evaluate(
    policy: Any,
    opponent: Any = "dealer",
    open_cards: bool = False,
    *,
    policy_kwargs: dict[str, Any] | None = None,
    opponent_kwargs: dict[str, Any] | None = None,
    stochastic: str = "refuse",
    detail: str | None = None,
    order: str | None = None,
    later: tuple[str, str] | None = None,
    executor: str = "serial",
    workers: int = 1,
    chunk_size: int = 64,
    progress: bool = True,
) -> ExactResult:
    """Exact win / loss / draw probabilities and expected reward of ``policy``.

    ``policy``: a registered 21-points policy name (built with ``policy_kwargs``), a policy
    object, or a zero-argument factory; it must be deterministic given its observation
    (:mod:`~ld_agents.baselines.optimal.answers`), or with ``stochastic="expect"`` have
    ``action_probs``. ``opponent``: ``"dealer"``, ``"random"``, a registered policy name
    (with ``opponent_kwargs``), an object or a factory; a sampling opponent is averaged
    over its ``action_probs``.

    ``detail`` and ``order`` override the policy's own card detail and card order
    (:class:`~ld_agents.baselines.optimal.answers.Traits`): coarser or less than it
    declares is an assumption, recorded in ``ExactResult.assumed`` (the figures are then
    exact for the policy reading canonical observations). ``later=(detail, order)``: the
    policy reads only that much from its second decision on (e.g. a policy whose first
    decision is an LLM's and whose later ones are ``ld_oracle``'s); the walk merges nodes
    accordingly after the first round.

    ``executor="ray"`` answers chunks of ``chunk_size`` observations on ``workers`` Ray
    actors, each building its own policy (pass a name or a factory: an LLM policy object
    may not pickle); ``progress`` shows a tqdm bar.
    """
    open_cards = check_flag("open_cards", open_cards)
    start = time.perf_counter()
    ag = _side(policy, policy_kwargs, stochastic, "agent")
    op = _side(opponent, opponent_kwargs, stochastic, "opponent")
    level, walk_order, own_only, assumed = _walk_plan(ag, op, detail, order)
    if assumed:
        logger.warning("exact 21: assuming %s", assumed)
    agent = Answerer(ag.policy, ag.source, ag.expect, chunk_size, executor, workers)
    # the opponent is asked in this process: built-ins are instant
    opp = Answerer(op.policy, op.source, op.expect, chunk_size)
    coarse = None
    if later is not None:
        later_level = finest(later[0], op.traits.detail)
        later_order = most_order(later[1], "none" if own_only else op.traits.order)
        _walk_plan(ag, op, later_level, later_order)  # checks the names
        coarse = (card_detail(later_level), later_order)
    tree = GameTree(
        agent, opp, card_detail(level), open_cards, own_only, walk_order, progress, coarse
    )
    try:
        win, loss = tree.run()
    finally:
        agent.close()
    seconds = time.perf_counter() - start
    opp_name = opponent if isinstance(opponent, str) else policy_label(op.policy)
    result = ExactResult(
        policy=policy if isinstance(policy, str) else policy_label(ag.policy),
        opponent=opp_name,
        open_cards=bool(open_cards),
        win=win,
        loss=loss,
        draw=math.fsum([1.0, -win, -loss]),
        expected_reward=win - loss,
        detail=level,
        order=walk_order,
        observations=agent.queried,
        opponent_observations=opp.queried,
        nodes_per_round=tree.nodes_per_round,
        seconds=seconds,
        policy_seconds=agent.seconds,
        executor=executor,
        workers=workers,
        stochastic="expect" if ag.expect else "refuse",
        assumed=assumed,
    )
    logger.info(
        "exact 21: %s vs %s (open_cards=%s, %s detail, order %s): E=%+.6f, %d observations, %.1f s",
        result.policy,
        opp_name,
        open_cards,
        level,
        walk_order,
        result.expected_reward,
        result.observations,
        seconds,
    )
    return result


# ----------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class QueryEstimate:
    """How many observations an exact evaluation would ask, estimated from a sample."""

    policy: str
    detail: str
    order: str
    #: estimated agent nodes per round (round 0 is exact)
    nodes_per_round: list[float]
    total: float
    #: nodes actually asked and the mean seconds per answer measured on them
    sampled: int
    seconds_per_observation: float
    projected_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_queries(
    policy: Any,
    opponent: Any = "dealer",
    open_cards: bool = False,
    *,
    policy_kwargs: dict[str, Any] | None = None,
    detail: str | None = None,
    order: str | None = None,
    sample: int = 100,
    seed: int = 0,
    chunk_size: int = 32,
) -> QueryEstimate:
    """Estimate an exact evaluation's size and time without walking the whole tree.

    With the card order kept (``order="all"``, every LLM policy) agent nodes form a tree:
    an observation tells its history, so round ``r + 1`` has as many nodes as round
    ``r``'s nodes have children. Each round asks the policy at ``sample`` nodes drawn
    uniformly from the previous sample's children and scales their child count by the
    round's estimated size over the sample: an unbiased estimate (with merged nodes, an
    upper bound). The seconds per answer are measured on the sampled nodes.
    """
    open_cards = check_flag("open_cards", open_cards)
    ag = _side(policy, policy_kwargs, "refuse", "agent")
    op = _side(opponent, None, "expect", "opponent")
    level, walk_order, own_only, _ = _walk_plan(ag, op, detail, order)
    agent = Answerer(ag.policy, ag.source, ag.expect, chunk_size)
    opp = Answerer(op.policy, op.source, op.expect, chunk_size)
    tree = GameTree(agent, opp, card_detail(level), open_cards, own_only, walk_order, False)
    rng = random.Random(seed)
    frontier = tree.initial()
    size = float(len(frontier))
    sizes: list[float] = []
    asked = 0
    while frontier and size >= 0.5:
        sizes.append(size)
        keys = list(frontier)
        chosen = keys if len(keys) <= sample else rng.sample(keys, sample)
        nxt = tree.round({k: frontier[k] for k in chosen})
        asked += len(chosen)
        size = size * len(nxt) / len(chosen)
        frontier = nxt
    seconds = agent.seconds / max(asked, 1)
    total = math.fsum(sizes)
    return QueryEstimate(
        policy=policy if isinstance(policy, str) else policy_label(ag.policy),
        detail=level,
        order=walk_order,
        nodes_per_round=sizes,
        total=total,
        sampled=asked,
        seconds_per_observation=seconds,
        projected_seconds=total * seconds,
    )


class _Unasked:
    """A stand-in opponent of given traits that is never asked (for counting)."""

    deterministic = True
    name = "unasked"

    def __init__(self, detail: str, order: str) -> None:
        self.observation_detail = detail
        self.observation_order = order

    def act(self, obs: Any) -> int:  # pragma: no cover - never asked
        raise AssertionError("the stand-in opponent is never asked")


def first_round_opponent_observations(
    policy: Any,
    open_cards: bool = False,
    *,
    opponent_detail: str = "card",
    opponent_order: str = "all",
    policy_kwargs: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """``(agent, opponent)`` distinct observations of the first round against an opponent
    that reads ``opponent_detail`` in ``opponent_order`` (and the agent's visible cards):
    the agent's first decisions, and the opponent's first decisions after them (its reply
    to each hit, the first step of its play-out after each stand). A lower bound on what
    an exact walk against such an opponent (e.g. the raw LLM, card ids in order) must
    ask; the opponent is not asked."""
    ag = _side(policy, policy_kwargs, "refuse", "agent")
    stub = _Unasked(opponent_detail, opponent_order)
    op = _Side(stub, stub, Traits(True, opponent_detail, opponent_order), False)
    level, walk_order, _, _ = _walk_plan(ag, op, None, None)
    agent = Answerer(ag.policy, ag.source, ag.expect)
    tree = GameTree(agent, Answerer(stub, stub, False), card_detail(level), open_cards, False,
                    walk_order, False)  # fmt: skip
    frontier = tree.initial()
    agent.ask(list(frontier), tree.agent_obs)
    replies: dict[Full, float] = defaultdict(float)
    nxt: dict[Node, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for node, masses in frontier.items():
        tree._expand(node, masses, agent.cache[node], replies, nxt)
    keys = {tree.opponent_key(a, full, False) for a, full in replies}
    keys |= {tree.opponent_key(a, full, True) for a, full in tree._playouts}
    return len(frontier), len(keys)
