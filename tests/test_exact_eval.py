"""The exact evaluation of 21-points policies by walking the game tree."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import ld_envs  # noqa: F401  (registers the ids)
from ld_agents.baselines.optimal import evaluate, solve
from ld_agents.baselines.optimal.answers import Traits, policy_traits
from ld_agents.baselines.optimal.exact_eval import (
    card_detail,
    estimate_queries,
    exact_evaluate,
)
from ld_agents.baselines.twenty_one import ScriptedPlayer
from ld_envs.errors import InvalidArgument
from ld_envs.twenty_one import HIT, STAND, DealerPlayer, RandomPlayer

#: exact (win, loss) of fixed agent policies against the dealer (tests/test_optimal.py)
GOLDEN_FIXED = {
    "dealer": (0.4319603606034532, 0.4682913954337093),
    "scripted": (0.43695867178978975, 0.4785667214006406),
    "random": (0.30963970604802776, 0.6496567715524809),
}


class Counting:
    """A deterministic fake that stands, counting how often each observation is asked."""

    deterministic = True
    observation_detail = "class"
    observation_order = "none"
    name = "counting"

    def __init__(self, hit_below: int = 0) -> None:
        self.hit_below = hit_below
        self.asked: dict[bytes, int] = {}
        self.calls = 0

    def act_batch(self, observations: list[dict[str, Any]]) -> list[int]:
        self.calls += 1
        out = []
        for obs in observations:
            key = b"".join(np.asarray(v).tobytes() for v in obs.values())
            self.asked[key] = self.asked.get(key, 0) + 1
            out.append(HIT if obs["own_total"] < self.hit_below else STAND)
        return out

    def act(self, obs: dict[str, Any]) -> int:
        return self.act_batch([obs])[0]


def test_optimal_equals_the_solver() -> None:
    """The optimal policy's exact value is the solver's (dealer, face-down card)."""
    res = exact_evaluate("optimal", "dealer", False, progress=False)
    sol = solve("dealer", False)
    assert res.win == pytest.approx(sol.win, abs=1e-12)
    assert res.loss == pytest.approx(sol.loss, abs=1e-12)
    assert res.expected_reward == pytest.approx(sol.expected_reward, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize(("opponent", "open_cards"), [("dealer", True), ("random", False)])
def test_optimal_equals_the_solver_everywhere(opponent: str, open_cards: bool) -> None:
    """The same with open cards and against the random opponent."""
    kwargs = {"opponent": opponent, "open_cards": open_cards}
    res = exact_evaluate("optimal", opponent, open_cards, policy_kwargs=kwargs, progress=False)
    assert res.expected_reward == pytest.approx(
        solve(opponent, open_cards).expected_reward, abs=1e-12
    )


@pytest.mark.parametrize("name", ["dealer", "scripted"])
def test_fixed_policies_equal_the_golden_values(name: str) -> None:
    """Dealer and scripted agree with the solver's evaluation (golden values)."""
    res = exact_evaluate(name, "dealer", False, progress=False)
    win, loss = GOLDEN_FIXED[name]
    assert res.win == pytest.approx(win, abs=1e-12)
    assert res.loss == pytest.approx(loss, abs=1e-12)
    assert res.draw == pytest.approx(1 - win - loss, abs=1e-12)


def test_scripted_against_random_equals_evaluate() -> None:
    """A random opponent's two branches are weighed by its hit probability."""
    res = exact_evaluate("scripted", "random", False, progress=False)
    assert res.expected_reward == pytest.approx(
        evaluate("scripted", "random", False).expected_reward, abs=1e-12
    )


def test_random_policy_is_refused() -> None:
    """A sampling policy is refused, naming the way to average it."""
    with pytest.raises(InvalidArgument, match=r"samples its actions.*stochastic='expect'"):
        exact_evaluate("random", "dealer", progress=False)


@pytest.mark.slow
def test_random_policy_in_expectation() -> None:
    """With stochastic='expect' the random policy is averaged over its action_probs."""
    res = exact_evaluate("random", "dealer", stochastic="expect", progress=False)
    win, loss = GOLDEN_FIXED["random"]
    assert (res.win, res.loss) == pytest.approx((win, loss), abs=1e-12)


def test_unknown_policy_is_refused() -> None:
    """A policy that declares nothing is refused with the attributes to declare."""

    class Anon:
        def act(self, obs: Any) -> int:
            return STAND

    with pytest.raises(InvalidArgument, match="observation_detail"):
        exact_evaluate(Anon(), progress=False)


def test_each_observation_is_asked_once() -> None:
    """The policy is asked once per distinct observation, in batches."""
    fake = Counting(hit_below=12)
    res = exact_evaluate(fake, "dealer", chunk_size=50, progress=False)
    assert max(fake.asked.values()) == 1
    assert res.observations == len(fake.asked) == sum(res.nodes_per_round)
    assert fake.calls == sum(math.ceil(n / 50) for n in res.nodes_per_round)


def test_monte_carlo_agrees_within_four_standard_errors() -> None:
    """20,000 sampled games of scripted land within 4 standard errors of the exact value."""
    exact = exact_evaluate("scripted", "dealer", False, progress=False)
    env = gym.make("TwentyOne-v0", opponent="dealer")
    player = ScriptedPlayer()
    rewards = np.empty(20_000)
    for i in range(len(rewards)):
        obs, _ = env.reset(seed=i)
        while True:
            obs, r, term, trunc, _ = env.step(player.act(obs))
            if term or trunc:
                rewards[i] = r
                break
    se = rewards.std(ddof=1) / math.sqrt(len(rewards))
    assert abs(rewards.mean() - exact.expected_reward) < 4 * se


def test_a_finer_first_decision_gives_the_same_value() -> None:
    """Walking the first round by ranks in order, then merging, changes nothing."""
    plain = exact_evaluate("scripted", "dealer", progress=False)
    finer = exact_evaluate(
        "scripted", "dealer", detail="rank", order="all", later=("class", "none"), progress=False
    )
    assert finer.expected_reward == pytest.approx(plain.expected_reward, abs=1e-13)
    assert finer.nodes_per_round[0] == 2184
    assert finer.assumed == ""


def test_assumed_detail_is_recorded() -> None:
    """Evaluating a policy at less detail than it reads is recorded as an assumption."""

    class Ranked(Counting):
        observation_detail = "rank"
        observation_order = "all"

    res = exact_evaluate(Ranked(), detail="class", order="none", progress=False)
    assert "detail class" in res.assumed and "order none" in res.assumed


def test_traits_of_shipped_policies() -> None:
    """Built-in players and the scripted rule have known traits."""
    assert policy_traits(DealerPlayer()) == Traits(True, "class", "none")
    assert policy_traits(RandomPlayer()) == Traits(False, "class", "none")
    assert policy_traits(ScriptedPlayer()) == Traits(True, "class", "none")


def test_card_details_partition_the_deck() -> None:
    """Every card detail lists each card once, with its value."""
    for name, n in (("class", 10), ("rank", 13), ("card", 26)):
        d = card_detail(name)
        assert len(d.counts) == n and sum(d.counts) == 26
        assert sorted(c for ids in d.ids for c in ids) == list(range(26))
        assert all(d.symbol(c) == s for s, ids in enumerate(d.ids) for c in ids)


def test_estimate_of_a_policy_that_stands() -> None:
    """A policy that always stands is asked at the first decisions only."""
    est = estimate_queries(Counting(), "dealer", sample=10_000)
    assert est.nodes_per_round == [541.0] and est.total == 541.0


@pytest.mark.slow
def test_ray_executor_gives_the_same_value() -> None:
    """Two Ray workers answer the same chunks: the same exact value."""
    serial = exact_evaluate("scripted", "dealer", progress=False)
    ray = exact_evaluate("scripted", "dealer", executor="ray", workers=2, progress=False)
    assert ray.expected_reward == serial.expected_reward
    assert ray.observations == serial.observations
