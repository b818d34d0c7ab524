"""How the exact evaluation asks a policy: what it may assume, caching, batching, Ray.

A policy is asked once per distinct observation, and the evaluation must know three
things about it (:class:`Traits`):

- ``deterministic``: its action is a function of the observation alone (no sampling). A
  policy that samples is refused, or (``stochastic="expect"``) averaged over its
  ``action_probs(obs) -> (p_stand, p_hit)`` where it has that method.
- ``detail``: the coarsest card detail its answer can depend on: ``"class"`` (card
  values only: ace, 2..9, ten-valued), ``"rank"`` (A, 2..10, J, Q, K, without suits) or
  ``"card"`` (the exact card ids, suits included).
- ``order``: whose card order its answer can depend on: ``"none"`` (hands as multisets),
  ``"opponent"`` (the opponent's visible cards in order, its own as a multiset) or
  ``"all"``. Observations that differ only in what the policy ignores are merged.

Finer detail and more order mean more distinct observations: against the dealer, a
dealer-like policy meets about 8.3 million value-class sequences and 12.6 million rank
sequences, but about 120,000 value-class multisets (seconds for a non-LLM policy).

A policy declares them with the attributes ``deterministic`` (bool),
``observation_detail`` (one of :data:`DETAILS`) and ``observation_order`` (one of
:data:`ORDERS`, default ``"all"``); otherwise :data:`KNOWN` (by class, the first match
along the class's MRO) gives them for every shipped 21-points policy:

=========================  =============  ======  ========  ============================
class                      deterministic  detail  order     why
=========================  =============  ======  ========  ============================
``DealerPlayer``           yes            class   none      its own total
``RandomPlayer``           no (p_hit)     class   none      a coin; ``action_probs``
``ScriptedPlayer``         yes            class   none      totals, counts of values
``OptimalPolicy``          yes            class   opponent  it replays the opponent's
                                                            hits in order (its belief
                                                            reads them)
``RLPolicy``               its flag       class   none      totals, counts of values
``FunctionChainPolicy``    yes            class   none      ``ld_oracle`` on the shipped
                                                            base: its functions read
                                                            values and counts (another
                                                            base or chooser: rank, all)
``LDPolicy``               yes            class   none      ``ld`` on the shipped base:
                                                            label scoring of a state line
                                                            of totals; its functions as
                                                            above (another base: rank,
                                                            all)
``RawTwentyOne`` (raw, kd) yes            card    all       greedy decoding of a prompt
                                                            naming each card and suit
=========================  =============  ======  ========  ============================

"Deterministic" for an LLM policy means greedy decoding (or label scoring): one answer
per prompt. A batched forward pass may round differently from an unbatched one, so a
near-tie can flip between two runs; the evaluation defines the policy's answer as the
one it gave when asked (once, cached).

An evaluation may also *assume* a coarser detail or less order than a policy declares
(``exact_evaluate(..., detail=, order=)``): it is then exact for the policy reading
canonical observations (each hand sorted, representative cards of each value), which
equals the policy itself wherever its answer does not depend on what was dropped; the
result says so (``assumed``).

:class:`Answerer` holds a policy's answers (``p_hit`` per observation key) and fills them
in chunks through ``act_batch`` (the LLM policies batch their model calls there), on this
process (``executor="serial"``, the default) or on ``workers`` Ray actors, each building
its own copy of the policy (``executor="ray"``), with a tqdm progress bar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from ld_envs.errors import InvalidArgument, unknown_name
from ld_envs.twenty_one import HIT, OPPONENTS, STAND

logger = logging.getLogger(__name__)

#: card detail from coarse to fine
DETAILS = ("class", "rank", "card")
#: card order a policy may read, from none to all
ORDERS = ("none", "opponent", "all")
EXECUTORS = ("serial", "ray")
STOCHASTIC = ("refuse", "expect")


@dataclass(frozen=True)
class Traits:
    """What the exact evaluation may assume about a policy (see the module docstring)."""

    deterministic: bool
    detail: str
    order: str = "all"


def _rl_traits(policy: Any) -> Traits:
    return Traits(bool(getattr(policy, "deterministic", True)), "class", "none")


def _reads_shipped_twentyone_functions(policy: Any) -> bool:
    """Whether the policy runs the shipped 21-points base's functions (which total the
    hands and count the unseen cards: card values as multisets)."""
    base = getattr(policy, "base", None)
    if base is None or base.game != "twentyone":
        return False
    from ld_agents.ld.base import shipped_base

    shipped = shipped_base("twentyone")
    return {f.name: f.source for f in base.functions} == {
        f.name: f.source for f in shipped.functions
    }


def _chain_traits(policy: Any) -> Traits:
    """``ld_oracle`` on the shipped 21-points base reads values and counts only (its
    functions total the hands and count the unseen cards; its chooser reads who stood and
    the visible total); any other base or chooser: ranks in order."""
    if getattr(policy, "custom_chooser", None) is None and _reads_shipped_twentyone_functions(
        policy
    ):
        return Traits(True, "class", "none")
    return Traits(True, "rank", "all")


def _ld_traits(policy: Any) -> Traits:
    """The LD student on the shipped 21-points base: its functions read card values as
    multisets, and its selection reads a state line of totals
    (:func:`ld_agents.ld.prompts.twentyone_state_text`); any other base: ranks in order."""
    if _reads_shipped_twentyone_functions(policy):
        return Traits(True, "class", "none")
    return Traits(True, "rank", "all")


#: traits of the shipped 21-points policies, by ``module.qualname`` of their class
KNOWN: dict[str, Traits | Callable[[Any], Traits]] = {
    "ld_envs.twenty_one.DealerPlayer": Traits(True, "class", "none"),
    "ld_envs.twenty_one.RandomPlayer": Traits(False, "class", "none"),
    "ld_agents.baselines.twenty_one.ScriptedPlayer": Traits(True, "class", "none"),
    "ld_agents.baselines.optimal.policy.OptimalPolicy": Traits(True, "class", "opponent"),
    "ld_agents.rl.policy.RLPolicy": _rl_traits,
    "ld_agents.ld.policy.LDPolicy": _ld_traits,
    "ld_agents.ld.chain.FunctionChainPolicy": _chain_traits,
    "ld_agents.raw.RawTwentyOne": Traits(True, "card", "all"),
}


def policy_label(policy: Any) -> str:
    """A policy's table name: its ``name``, else its class name."""
    return str(getattr(policy, "name", "") or type(policy).__name__)


def policy_traits(policy: Any) -> Traits | None:
    """The policy's declared traits, else :data:`KNOWN`'s, else ``None`` (unknown)."""
    declared = getattr(policy, "observation_detail", None)
    if declared is not None:
        if declared not in DETAILS:
            raise unknown_name("observation_detail", declared, list(DETAILS))
        order = getattr(policy, "observation_order", "all")
        if order not in ORDERS:
            raise unknown_name("observation_order", order, list(ORDERS))
        return Traits(bool(getattr(policy, "deterministic", False)), declared, order)
    for cls in type(policy).__mro__:
        known = KNOWN.get(f"{cls.__module__}.{cls.__qualname__}")
        if known is not None:
            return known(policy) if callable(known) else known
    return None


def finest(*details: str) -> str:
    """The finest of several card details (``"card"`` beats ``"rank"`` beats ``"class"``)."""
    return max(details, key=DETAILS.index)


def most_order(*orders: str) -> str:
    """The most order of several (``"all"`` beats ``"opponent"`` beats ``"none"``)."""
    return max(orders, key=ORDERS.index)


def check_policy(policy: Any, stochastic: str = "refuse", side: str = "agent") -> Traits:
    """The traits of a policy the evaluation can use; a clear error for one it cannot."""
    if stochastic not in STOCHASTIC:
        raise unknown_name("stochastic", stochastic, list(STOCHASTIC))
    traits = policy_traits(policy)
    label = policy_label(policy)
    if traits is None:
        raise InvalidArgument(
            f"the exact evaluation cannot tell whether the {side} policy {label!r} "
            f"({type(policy).__name__}) is deterministic given its observation; declare it "
            f"with the attributes deterministic = True and observation_detail = 'card' "
            f"('rank' or 'class' when its answer ignores suits, or suits and J/Q/K vs 10)"
        )
    if traits.deterministic:
        return traits
    has_probs = callable(getattr(policy, "action_probs", None))
    if stochastic == "expect" and has_probs:
        return traits
    how = (
        "pass stochastic='expect' (--stochastic expect) to average over its action_probs"
        if has_probs
        else "it has no action_probs(obs) to average over"
    )
    raise InvalidArgument(
        f"the {side} policy {label!r} samples its actions, so no single answer per "
        f"observation exists and it is not evaluated exactly; {how}"
    )


# ----------------------------------------------------------------------------- asking


def _as_p_hit(answer: Any, label: str) -> float:
    try:
        a = int(answer)
    except (TypeError, ValueError):
        a = -1
    if a not in (STAND, HIT):
        raise InvalidArgument(
            f"policy {label!r} answered {answer!r}; a 21-points action is 0 (stand) or 1 (hit)"
        )
    return float(a)


def answer_chunk(policy: Any, observations: Sequence[dict[str, Any]], expect: bool) -> list[float]:
    """P(hit) for each observation: the deterministic answer through ``act_batch``, or
    (``expect``) the policy's ``action_probs``."""
    label = policy_label(policy)
    if expect:
        out = []
        for obs in observations:
            probs = policy.action_probs(obs)
            p = float(probs[1])
            if not 0.0 <= p <= 1.0 or abs(float(probs[0]) + p - 1.0) > 1e-9:
                raise InvalidArgument(
                    f"{label}.action_probs returned {probs!r}; expected (p_stand, p_hit) "
                    f"summing to 1"
                )
            out.append(p)
        return out
    batch = getattr(policy, "act_batch", None)
    answers = (
        batch(list(observations)) if callable(batch) else [policy.act(o) for o in observations]
    )
    return [_as_p_hit(a, label) for a in answers]


def build_policy(source: Any) -> Any:
    """A policy from a source: a policy object as it is, a zero-argument factory called,
    or a registered 21-points policy name (``ld_agents.make``)."""
    if isinstance(source, str):
        from ld_agents.base import make

        return make(source, "TwentyOne-v0")
    if callable(getattr(source, "act", None)):
        return source
    if callable(source):
        return source()
    raise InvalidArgument(
        f"a policy is a registered name, an object with act(obs) or a factory; got "
        f"{type(source).__name__}"
    )


def opponent_source(opponent: Any) -> Any:
    """A built-in opponent name (``dealer``, ``random``) as the env's own player."""
    if isinstance(opponent, str) and opponent in OPPONENTS:
        return OPPONENTS[opponent]()
    return opponent


class Answerer:
    """One side's answers, ``p_hit`` per observation key, filled in batched chunks.

    ``ask(keys, make_obs)`` answers every key not yet cached: it builds the observations
    with ``make_obs(key)``, cuts them into ``chunk_size`` chunks and answers them on the
    executor, updating ``bar`` (a tqdm bar or ``None``). ``queried`` counts the distinct
    observations asked, ``seconds`` the wall time spent answering.
    """

    def __init__(
        self,
        policy: Any,
        source: Any,
        expect: bool,
        chunk_size: int = 64,
        executor: str = "serial",
        workers: int = 1,
    ) -> None:
        if executor not in EXECUTORS:
            raise unknown_name("executor", executor, list(EXECUTORS))
        if chunk_size < 1:
            raise InvalidArgument(f"chunk_size must be >= 1, got {chunk_size}")
        if workers < 1:
            raise InvalidArgument(f"workers must be >= 1, got {workers}")
        self.policy = policy
        self.source = source
        self.expect = expect
        self.chunk_size = chunk_size
        self.executor = executor
        self.workers = workers
        self.cache: dict[Hashable, float] = {}
        self.queried = 0
        self.seconds = 0.0
        self._pool: RayPool | None = None

    def ask(
        self, keys: Sequence[Hashable], make_obs: Callable[[Any], dict[str, Any]], bar: Any = None
    ) -> None:
        """Answer every key of ``keys`` not yet in the cache."""
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if not todo:
            return
        if bar is not None:
            bar.total = (bar.total or 0) + len(todo)
            bar.refresh()
        start = time.perf_counter()
        chunks = [todo[i : i + self.chunk_size] for i in range(0, len(todo), self.chunk_size)]
        if self.executor == "serial":
            for chunk in chunks:
                answers = answer_chunk(self.policy, [make_obs(k) for k in chunk], self.expect)
                self._store(chunk, answers, bar)
        else:
            if self._pool is None:
                self._pool = RayPool(self.source, self.expect, self.workers)
            self._pool.run(chunks, make_obs, lambda c, a: self._store(c, a, bar))
        self.seconds += time.perf_counter() - start
        self.queried += len(todo)

    def _store(self, chunk: Sequence[Hashable], answers: Sequence[float], bar: Any) -> None:
        self.cache.update(zip(chunk, answers, strict=True))
        if bar is not None:
            bar.update(len(chunk))

    def close(self) -> None:
        """Stop the Ray actors (if any); safe to call twice."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class RayPool:
    """``workers`` Ray actors, each holding its own policy built from ``source``."""

    def __init__(self, source: Any, expect: bool, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise InvalidArgument(
                "executor 'ray' needs Ray: pip install 'ld-gym[ray]' (or use executor='serial')"
            ) from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            self.started = True
        actor = ray.remote(num_cpus=1, max_restarts=0)(_PolicyActor)
        self.actors = [actor.remote(source, expect) for _ in range(workers)]

    def run(
        self,
        chunks: Sequence[Sequence[Hashable]],
        make_obs: Callable[[Any], dict[str, Any]],
        store: Callable[[Sequence[Hashable], Sequence[float]], None],
    ) -> None:
        """Answer every chunk on the actors (one chunk per free actor), storing results
        as they come back."""
        ray = self.ray
        queue = list(chunks)
        running: dict[Any, tuple[Any, Sequence[Hashable]]] = {}
        free = list(self.actors)
        while queue or running:
            while queue and free:
                chunk = queue.pop(0)
                actor = free.pop()
                ref = actor.answer.remote([make_obs(k) for k in chunk])
                running[ref] = (actor, chunk)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                actor, chunk = running.pop(ref)
                store(chunk, ray.get(ref))
                free.append(actor)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started:
            self.ray.shutdown()
            self.started = False


class _PolicyActor:
    """A Ray actor answering chunks with its own copy of the policy."""

    def __init__(self, source: Any, expect: bool) -> None:
        self.policy = build_policy(source)
        self.expect = expect

    def answer(self, observations: Sequence[dict[str, Any]]) -> list[float]:
        return answer_chunk(self.policy, observations, self.expect)
