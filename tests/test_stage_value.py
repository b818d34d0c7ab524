"""The LD student's stage-by-stage first-decision values, with a fake student (no model)."""

from __future__ import annotations

from typing import Any

import pytest

import ld_agents
from ld_agents.baselines.optimal.exact_eval import GameTree, card_detail, exact_evaluate
from ld_agents.ld.base import shipped_base
from ld_agents.ld.sandbox import Limits, SandboxWorker
from ld_agents.ld.stage_value import (
    FirstDecisionMix,
    StudentChoices,
    first_decision_accuracy,
    is_first_decision,
)


class FakeStudent:
    """Scores the right function highest (``right=True``) or the first candidate."""

    def __init__(self, right: bool) -> None:
        self.base = shipped_base("twentyone")
        self.worker = SandboxWorker(Limits())
        self.right = right
        self.scored = 0

    def score_batch(self, items: list[tuple[str, dict[str, Any]]]) -> tuple[Any, Any]:
        shown, scores = [], []
        for stage, st in items:
            cands = self.base.stage_candidates(stage)
            self.scored += 1
            best = self.base.right_function(stage, st) if self.right else cands[0].name
            shown.append(cands)
            scores.append([1.0 if c.name == best else 0.0 for c in cands])
        return shown, scores


def test_the_fake_student_scores_as_the_policy_does() -> None:
    """The fake keeps the real policy's ``score_batch`` signature (a list of (stage,
    state) pairs), so these tests break when the policy's changes."""
    import inspect

    from ld_agents.ld.policy import LDPolicy

    real = list(inspect.signature(LDPolicy.score_batch).parameters)
    assert list(inspect.signature(FakeStudent.score_batch).parameters) == real


@pytest.fixture(scope="module")
def first_obs() -> list[dict[str, Any]]:
    tree = GameTree(None, None, card_detail("rank"), False, True)  # type: ignore[arg-type]
    return [tree.agent_obs(n) for n in list(tree.initial())[::50]]


def test_a_right_student_acts_as_ld_oracle(first_obs: list[dict[str, Any]]) -> None:
    """With a student that always picks the ground truth, the mixture is ld_oracle."""
    oracle = ld_agents.make("ld_oracle", "TwentyOne-v0")
    mix = FirstDecisionMix(StudentChoices(FakeStudent(right=True)), ["hand", "decide"])
    assert mix.act_batch(first_obs) == [int(oracle.act(o)) for o in first_obs]


def test_each_state_is_scored_once(first_obs: list[dict[str, Any]]) -> None:
    """The choice table scores each first-decision state once per stage."""
    student = FakeStudent(right=False)
    choices = StudentChoices(student)
    mix = FirstDecisionMix(choices, student.base.stage_names)
    mix.act_batch(first_obs)
    mix.act_batch(first_obs)
    states = {choices.key(mix.state(o)) for o in first_obs}
    assert student.scored == len(states) * len(student.base.stage_names)
    assert all(is_first_decision(mix.state(o)) for o in first_obs)


def test_a_right_student_is_fully_accurate() -> None:
    """The weighted accuracy of a ground-truth student is 1 at every stage."""
    import itertools

    from ld_agents.ld.prompts import state_text
    from ld_envs.twenty_one import RANKS

    weighted, plain, n = first_decision_accuracy(
        StudentChoices(FakeStudent(right=True)), "dealer", False
    )
    # one per distinct state line: two own cards against one visible card, 2 of each rank
    lines = {
        state_text(
            "twentyone",
            {
                "my_cards": [a, b],
                "opponent_cards": [c],
                "opponent_hidden": 1,
                "opponent_stood": False,
            },
        )
        for a, b, c in itertools.product(RANKS, repeat=3)
        if not a == b == c
    }
    assert n == len(lines)
    assert all(v == pytest.approx(1.0) for v in weighted.values())
    assert all(v == 1.0 for v in plain.values())


@pytest.mark.slow
def test_mixture_with_a_right_student_has_ld_oracles_value() -> None:
    """Walked exactly, the mixture with a right student is worth ld_oracle's value."""
    mix = FirstDecisionMix(StudentChoices(FakeStudent(right=True)), ["decide"])
    res = exact_evaluate(mix, "dealer", later=("class", "none"), progress=False)
    oracle = exact_evaluate("ld_oracle", "dealer", progress=False)
    assert res.expected_reward == pytest.approx(oracle.expected_reward, abs=1e-12)


def test_ld_oracle_reads_card_values_as_multisets() -> None:
    """ld_oracle on the shipped base is declared (class, none), and its answers do not
    change when the hands are reordered or a ten-valued card is swapped for another."""
    import random

    from ld_agents.baselines.optimal.answers import Traits, policy_traits
    from ld_envs.twenty_one import observation

    oracle = ld_agents.make("ld_oracle", "TwentyOne-v0")
    assert policy_traits(oracle) == Traits(True, "class", "none")
    rng = random.Random(0)
    for _ in range(60):
        cards = rng.sample(range(26), 6)
        own, other = cards[:3], cards[3:]
        stood = rng.random() < 0.5
        base = oracle.act(observation(own, other, False, stood, 20))
        swapped = [c if c % 13 < 9 else (c // 13) * 13 + 9 for c in own]  # J/Q/K -> 10
        if len(set(swapped) | set(other)) == 6:
            assert oracle.act(observation(swapped[::-1], other, False, stood, 20)) == base
        assert (
            oracle.act(observation(own[::-1], [other[0], *other[:0:-1]], False, stood, 20)) == base
        )


def test_the_students_state_line_reads_card_values_as_multisets() -> None:
    """The 21-points state line the student reads gives totals only: reordering the hands
    or swapping a ten-valued card for another leaves it unchanged, so the ``ld`` policy on
    the shipped base is declared (class, none); cards with other totals change it."""
    import random

    from ld_agents.baselines.optimal.answers import Traits, policy_traits
    from ld_agents.ld.chain import FunctionChainPolicy
    from ld_agents.ld.policy import LDPolicy
    from ld_agents.ld.prompts import state_text
    from ld_envs.twenty_one import observation

    chain = FunctionChainPolicy(shipped_base("twentyone"))
    rng = random.Random(1)
    seen = set()
    for _ in range(200):
        cards = rng.sample(range(26), 5)
        own, other = cards[:2], cards[2:]
        stood = rng.random() < 0.5
        line = state_text("twentyone", chain.state(observation(own, other, False, stood, 20)))
        swapped = [c if c % 13 < 9 else (c // 13) * 13 + 9 for c in own]  # J/Q/K -> 10
        if len(set(swapped) | set(other)) == 5:
            obs = observation(swapped[::-1], [other[0], *other[:0:-1]], False, stood, 20)
            assert state_text("twentyone", chain.state(obs)) == line
        seen.add(line)
    assert len(seen) > 50  # the totals do tell states apart
    chain.close()

    class Student(LDPolicy):
        def __init__(self, base: Any) -> None:  # traits read the base only: no model
            self.base = base

    assert policy_traits(Student(shipped_base("twentyone"))) == Traits(True, "class", "none")
    assert policy_traits(Student(shipped_base("pursuit"))) == Traits(True, "rank", "all")
