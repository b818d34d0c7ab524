"""What the LD student's selection errors cost, stage by stage, in exact 21-points value.

The LD chain plays 21 points in four stages (``hand``, ``risk``, ``opponent``,
``decide``); at each the student picks one function by scoring labels
(:mod:`ld_agents.ld.policy`) and ``ld_oracle`` picks the right one (the ground truth).
The student's pick depends on the state alone (the prompt shows the state, not the
previous stage's output), so :class:`StudentChoices` scores every stage of a state once
and any mixture of student and ground truth can then be played without the model.

Why the first decision only
---------------------------
The student reads the ranks of the cards in order, so an exact walk of the whole game
asks it at every rank sequence the game reaches: about 12.6 million against the dealer,
weeks of CPU (:mod:`ld_agents.baselines.optimal.exact_eval`). Its first decision of each
deal (two own cards, one visible opponent card: 2,184 rank sequences with the face-down
card) is a few thousand scorings, and every deal has one. So the values here are of
:class:`FirstDecisionMix`: at the first decision, the chain with the student's choice at
the stages ``S`` and the ground truth's at the others; at every later decision,
``ld_oracle``. With ``V(S)`` its exact expected reward:

- ``V(none)`` is ``ld_oracle``'s value (the ceiling the base allows);
  ``V(all)`` is the student's first decision followed by perfect selection;
- the first decision's loss is ``V(none) - V(all)``;
- stage ``s`` *alone* loses ``V(none) - V({s})``: the student's errors at ``s`` with
  every other stage right;
- fixing stage ``s`` gains ``V(all minus s) - V(all)``: what perfect selection at ``s``
  alone would recover from the student's first decision.

Later decisions are ``ld_oracle``'s, whose answers read card values as multisets, so the
walk merges them (``later=("class", "none")``): each value takes about a minute after
the first scoring.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.ld.chain import FunctionChainPolicy
from ld_agents.ld.prompts import state_text

logger = logging.getLogger(__name__)


def is_first_decision(state: dict[str, Any]) -> bool:
    """The deal's first decision: two own cards, the opponent's first visible card only."""
    shown = 1 + (0 if state.get("opponent_hidden") else 1)
    return len(state["my_cards"]) == 2 and len(state["opponent_cards"]) == shown


class StudentChoices:
    """The student's choice at every stage of a state (keyed by the state text it reads),
    scored once per state and stage through the policy's batched label scoring."""

    def __init__(
        self,
        student: Any,
        path: str | Path | None = None,
        chunk_size: int = 64,
        progress: bool = False,
    ) -> None:
        self.student = student
        self.chunk_size = chunk_size
        self.progress = progress
        self.base = student.base
        self.table: dict[str, dict[str, str]] = {}
        self.scored = 0
        self.seconds = 0.0
        #: a JSON file the table is kept in (read if there, rewritten after each fill)
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.is_file():
            self.table = json.loads(self.path.read_text(encoding="utf-8"))
            logger.info("student choices: %d states read from %s", len(self.table), self.path)

    def key(self, state: dict[str, Any]) -> str:
        return state_text(self.base.game, state)

    def fill(self, states: Iterable[dict[str, Any]]) -> None:
        """Score every stage of the states not yet in the table, in chunks of
        ``chunk_size`` states (one batch per stage), saving the table after each chunk;
        a tqdm bar when ``progress``."""
        from tqdm.auto import tqdm

        todo: dict[str, dict[str, Any]] = {}
        for st in states:
            k = self.key(st)
            if k not in self.table:
                todo.setdefault(k, st)
        if not todo:
            return
        keys = list(todo)
        bar = tqdm(
            total=len(keys),
            desc="student choices",
            unit="state",
            disable=not self.progress or len(keys) < self.chunk_size,
        )
        try:
            for i in range(0, len(keys), self.chunk_size):
                self._fill_chunk({k: todo[k] for k in keys[i : i + self.chunk_size]})
                bar.update(min(self.chunk_size, len(keys) - i))
        finally:
            bar.close()

    def _fill_chunk(self, todo: dict[str, dict[str, Any]]) -> None:
        start = time.perf_counter()
        keys, batch = list(todo), list(todo.values())
        rows: list[dict[str, str]] = [{} for _ in keys]
        stages = self.base.stage_names
        # every stage of every state in one backend call, as the policy's act_batch does
        shown, scored = self.student.score_batch([(st, state) for state in batch for st in stages])
        for i, (cands, scores) in enumerate(zip(shown, scored, strict=True)):
            best = max(range(len(scores)), key=scores.__getitem__)
            rows[i // len(stages)][stages[i % len(stages)]] = cands[best].name
        self.table.update(zip(keys, rows, strict=True))
        self.scored += len(keys)
        self.seconds += time.perf_counter() - start
        if self.path is not None:
            from ld_agents.files import write_json_atomic

            write_json_atomic(self.path, self.table)

    def choice(self, state: dict[str, Any], stage: str) -> str:
        return self.table[self.key(state)][stage]


class FirstDecisionMix(FunctionChainPolicy):
    """At the first decision, the chain with the student's choices at ``student_stages``
    and the ground truth's elsewhere; later, ``ld_oracle``. Deterministic; the first
    decision reads ranks in order, the later ones card values as multisets (declared
    here for the exact evaluation)."""

    deterministic = True
    observation_detail = "rank"
    observation_order = "all"

    def __init__(
        self,
        choices: StudentChoices,
        student_stages: Iterable[str],
        later_cache: dict[str, int] | None = None,
    ) -> None:
        student = choices.student
        super().__init__(student.base, chooser=self._choose, worker=student.worker)
        self.choices = choices
        self.student_stages = frozenset(student_stages)
        unknown = self.student_stages - set(student.base.stage_names)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}: {student.base.stage_names}")
        #: ld_oracle's later answers by the cards (its functions read them, not only the
        #: totals of the student's state line), shared between mixtures
        self.later_cache = {} if later_cache is None else later_cache
        shown = ",".join(sorted(self.student_stages)) or "none"
        self.name = f"ld first decision, student at {shown}"

    def _choose(self, stage: Any, cands: Any, state: dict[str, Any], prev: Any) -> str:
        if stage.name in self.student_stages and is_first_decision(state):
            return self.choices.choice(state, stage.name)
        return self.base.right_function(stage.name, state, prev)

    def act_batch(self, observations: Sequence[Any]) -> list[Any]:
        states = [self.state(o) for o in observations]
        self.choices.fill(st for st in states if is_first_decision(st))
        actions = []
        for obs, st in zip(observations, states, strict=True):
            if is_first_decision(st):
                actions.append(int(self.act(obs)))
                continue
            key = repr(
                (st["my_cards"], st["opponent_cards"], st["opponent_hidden"], st["opponent_stood"])
            )
            if key not in self.later_cache:
                self.later_cache[key] = int(self.act(obs))
            actions.append(self.later_cache[key])
        return actions


@dataclass
class StageValues:
    """Exact values of :class:`FirstDecisionMix` mixtures and the student's first-decision
    selection accuracy (see the module docstring for the definitions)."""

    opponent: str
    open_cards: bool
    #: V(S) by the sorted stage names joined with "," ("" = none: ld_oracle)
    values: dict[str, float]
    oracle: float
    student_first: float
    first_decision_loss: float
    #: per stage: V(none) - V({s}) and V(all - {s}) - V(all)
    loss_alone: dict[str, float]
    gain_if_fixed: dict[str, float]
    #: per stage: P(the student's choice is the ground truth's) over first decisions,
    #: weighted by their exact probability, and unweighted over the distinct states
    accuracy: dict[str, float]
    accuracy_unweighted: dict[str, float]
    first_states: int
    scoring_seconds: float
    seconds: float
    walks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _label(stages: Iterable[str]) -> str:
    return ",".join(sorted(stages))


def first_decision_accuracy(
    choices: StudentChoices, opponent: Any, open_cards: bool
) -> tuple[dict[str, float], dict[str, float], int]:
    """Per stage, the share of first decisions where the student picks the right
    function: weighted by each first state's exact probability, and unweighted."""
    from ld_agents.baselines.optimal.exact_eval import GameTree, card_detail

    tree = GameTree(None, None, card_detail("rank"), open_cards, True)  # type: ignore[arg-type]
    chain = FunctionChainPolicy(choices.base, worker=choices.student.worker)
    weights: dict[str, float] = {}
    states: dict[str, dict[str, Any]] = {}
    for node, masses in tree.initial().items():
        st = chain.state(tree.agent_obs(node))
        k = choices.key(st)
        states[k] = st
        weights[k] = weights.get(k, 0.0) + math.fsum(masses.values())
    choices.fill(states.values())
    weighted: dict[str, float] = {}
    plain: dict[str, float] = {}
    for stage in choices.base.stage_names:
        right = {}
        for k, st in states.items():
            right[k] = choices.table[k][stage] in choices.base.right_functions(stage, st)
        weighted[stage] = math.fsum(w for k, w in weights.items() if right[k])
        plain[stage] = sum(right.values()) / len(right)
    return weighted, plain, len(states)


def first_decision_stage_values(
    student: Any,
    opponent: Any = "dealer",
    open_cards: bool = False,
    progress: bool = True,
    choices_path: str | Path | None = None,
) -> StageValues:
    """Exact values of the first-decision mixtures (see the module docstring): ``none``,
    ``all``, each stage alone and all but each stage; and the per-stage accuracy.
    ``choices_path`` keeps the student's choices in a JSON file (a rerun reads them
    instead of scoring again: name a file per adapter)."""
    from ld_agents.baselines.optimal.exact_eval import exact_evaluate

    start = time.perf_counter()
    choices = StudentChoices(student, choices_path, progress=progress)
    stages = list(student.base.stage_names)
    weighted, plain, n_first = first_decision_accuracy(choices, opponent, open_cards)
    mixes = [(), tuple(stages)]
    mixes += [(s,) for s in stages]
    mixes += [tuple(x for x in stages if x != s) for s in stages]
    later: dict[str, int] = {}
    values: dict[str, float] = {}
    walks: dict[str, dict[str, Any]] = {}
    for mix in mixes:
        label = _label(mix)
        if label in values:
            continue
        policy = FirstDecisionMix(choices, mix, later)
        res = exact_evaluate(
            policy, opponent, open_cards, later=("class", "none"), progress=progress
        )
        values[label] = res.expected_reward
        walks[label] = res.to_dict()
        logger.info("first decision, student at [%s]: E=%+.6f", label, res.expected_reward)
    oracle, first = values[""], values[_label(stages)]
    return StageValues(
        opponent=opponent if isinstance(opponent, str) else type(opponent).__name__,
        open_cards=bool(open_cards),
        values=values,
        oracle=oracle,
        student_first=first,
        first_decision_loss=oracle - first,
        loss_alone={s: oracle - values[s] for s in stages},
        gain_if_fixed={s: values[_label(x for x in stages if x != s)] - first for s in stages},
        accuracy=weighted,
        accuracy_unweighted=plain,
        first_states=n_first,
        scoring_seconds=choices.seconds,
        seconds=time.perf_counter() - start,
        walks=walks,
    )


def check_first_decisions(student: Any, observations: Sequence[Any]) -> tuple[int, int]:
    """How many of the student's own actions (``act_batch``) on these first-decision
    observations equal :class:`FirstDecisionMix` with the student at every stage:
    ``(equal, n)``."""
    choices = StudentChoices(student)
    mix = FirstDecisionMix(choices, student.base.stage_names)
    own = [int(a) for a in student.act_batch(list(observations))]
    mixed = mix.act_batch(list(observations))
    return sum(a == b for a, b in zip(own, mixed, strict=True)), len(own)
