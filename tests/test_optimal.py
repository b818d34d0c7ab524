"""The exact best response for 21 points: golden values, Monte Carlo, dominance, beliefs."""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
import ld_envs  # noqa: F401  (registers the ids)
from ld_agents.baselines.optimal import (
    FastSolver,
    OptimalPolicy,
    ReferenceSolver,
    Solution,
    _fhand,
    evaluate,
    fast_path_table,
    make_solver,
    solve,
    solver_for,
)
from ld_agents.baselines.twenty_one import ScriptedPlayer
from ld_envs.errors import InvalidArgument, UnknownName
from ld_envs.twenty_one import (
    CLASS_COUNTS,
    HIT,
    RANKS,
    STAND,
    SUITS,
    DealerPlayer,
    RandomPlayer,
)

#: exact (win, loss) of the best response, averaged over every deal
GOLDEN = {
    ("dealer", False): (0.45597370275732013, 0.45397427872887874),
    ("dealer", True): (0.48176065411952534, 0.41698166175966683),
    ("random", False): (0.6846619175132087, 0.26181660355722713),
    ("random", True): (0.7038472617583558, 0.23917523483721798),
}
#: exact (win, loss) of fixed agent policies against the dealer, face-down card hidden
GOLDEN_FIXED = {
    "dealer": (0.4319603606034532, 0.4682913954337093),
    "scripted": (0.43695867178978975, 0.4785667214006406),
    "random": (0.30963970604802776, 0.6496567715524809),
}


def C(name: str) -> int:
    return SUITS.index(name[-1]) * len(RANKS) + RANKS.index(name[:-1])


def stacked(*names: str) -> list[int]:
    return [C(n) for n in names]


class Answers:
    """A test opponent answering from a list (then standing)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)

    def act(self, obs: dict[str, Any]) -> int:
        return self.answers.pop(0) if self.answers else STAND


class OrderedDealer(DealerPlayer):
    """The dealer without the own-cards-only declaration: forces the general solver."""

    own_cards_only = False


def play(policy: Any, env: gym.Env, seeds: range) -> np.ndarray:
    rewards = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        terminated = False
        while not terminated:
            obs, reward, terminated, _, _ = env.step(policy.act(obs))
        rewards.append(reward)
    return np.array(rewards)


# ----------------------------------------------------------------------------- exact values


@pytest.mark.parametrize(("opponent", "open_cards"), list(GOLDEN))
def test_golden_exact_values(opponent, open_cards):
    """The exact win / loss / draw of the best response match the recorded values."""
    sol = solve(opponent, open_cards)
    win, loss = GOLDEN[(opponent, open_cards)]
    assert sol.win == pytest.approx(win, abs=1e-12)
    assert sol.loss == pytest.approx(loss, abs=1e-12)
    assert sol.draw == pytest.approx(1.0 - win - loss, abs=1e-12)
    assert sol.expected_reward == pytest.approx(win - loss, abs=1e-12)
    assert isinstance(sol, Solution) and sol.states > 0 and sol.seconds >= 0


def test_solutions_are_cached():
    """A second solve of a built-in opponent returns the cached result."""
    assert solve("dealer", False) is solve("dealer", False)


def test_seeing_the_hidden_card_is_worth_something():
    """Against either opponent, the open variant's optimum is at least the hidden one's."""
    for opponent in ("dealer", "random"):
        assert solve(opponent, True).expected_reward > solve(opponent, False).expected_reward


@pytest.mark.parametrize(
    ("opponent", "open_cards", "games"), [("dealer", False, 3000), ("random", True, 2000)]
)
def test_exact_figures_match_monte_carlo(opponent, open_cards, games):
    """Playing the env with the optimal policy reproduces the exact figures within 4 SE."""
    sol = solve(opponent, open_cards)
    policy = ld_agents.make("optimal", "TwentyOne-v0", opponent=opponent, open_cards=open_cards)
    env = gym.make("TwentyOne-v0", opponent=opponent, open_cards=open_cards)
    rewards = play(policy, env, range(games))
    for observed, exact in [
        ((rewards > 0).mean(), sol.win),
        ((rewards < 0).mean(), sol.loss),
        ((rewards == 0).mean(), sol.draw),
    ]:
        assert abs(observed - exact) <= 4 * math.sqrt(exact * (1 - exact) / games)
    se = math.sqrt((sol.win + sol.loss - sol.expected_reward**2) / games)
    assert abs(rewards.mean() - sol.expected_reward) <= 4 * se


@pytest.mark.parametrize("agent", list(GOLDEN_FIXED))
def test_optimum_beats_fixed_policies_exactly(agent):
    """Exact evaluation: dealer, scripted and random agents earn less than the optimum."""
    sol = evaluate(agent, "dealer", False)
    win, loss = GOLDEN_FIXED[agent]
    assert (sol.win, sol.loss) == pytest.approx((win, loss), abs=1e-12)
    assert sol.agent == agent
    assert sol.expected_reward < solve("dealer", False).expected_reward


# ----------------------------------------------------------------------------- solvers agree


def _fast_state(fast: FastSolver, ref_state: Any, open_cards: bool) -> Any:
    """The FastSolver state matching a ReferenceSolver initial state."""
    a, o, _, _ = ref_state
    if open_cards:
        h, rest = o[0][0], o[0][1:]
        u = [c - x for c, x in zip(CLASS_COUNTS, a[1], strict=True)]
        for k in rest:
            u[k] -= 1
        return (_fhand(a[0]), _fhand(rest), False, 1 << h, tuple(u))
    u = tuple(c - x - y for c, x, y in zip(CLASS_COUNTS, a[1], o[1], strict=True))
    return (_fhand(a[0]), _fhand(o[0]), False, fast._umask(u), u)


@pytest.mark.parametrize(
    ("player", "open_cards", "step"),
    [(DealerPlayer, False, 97), (RandomPlayer, False, 131), (DealerPlayer, True, 997)],
)
def test_fast_solver_matches_the_reference_solver(player, open_cards, step):
    """The multiset solver and the per-card reference solver give the same values."""
    fast = make_solver(player(), open_cards)
    ref = ReferenceSolver(player(), open_cards)
    assert isinstance(fast, FastSolver)
    for state, _ in ref.initial_states()[::step][:6]:
        expected = ref.value(state)
        got = fast.value(_fast_state(fast, state, open_cards))
        assert got[:2] == pytest.approx(expected[:2], abs=1e-12) and got[2] == expected[2]


def test_general_solver_on_ordered_cards_matches():
    """An opponent not declaring own_cards_only is solved on ordered cards, same values."""
    general = make_solver(OrderedDealer(), False)
    fast = solver_for("dealer", False)
    assert isinstance(general, ReferenceSolver) and not general.own_only
    states = [s for s, _ in general.initial_states() if s[0][2] >= 19][:2]
    for state in states:
        expected = fast.value(_fast_state(fast, state, False))
        assert general.value(state)[:2] == pytest.approx(expected[:2], abs=1e-12)


def test_whole_game_probability_adds_up():
    """The initial states' probabilities sum to 1 in both solvers and both variants."""
    for open_cards in (False, True):
        for solver in (
            solver_for("dealer", open_cards),
            ReferenceSolver(DealerPlayer(), open_cards),
        ):
            assert sum(p for _, p in solver.initial_states()) == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------- acting


def test_acting_reaches_only_solved_states():
    """After a solve, playing from observations finds every state in the table."""
    solve("dealer", False)
    policy = OptimalPolicy("dealer", False)
    before = policy.solver.n_states
    play(policy, gym.make("TwentyOne-v0"), range(300))
    assert policy.solver.n_states == before


def test_policy_is_a_function_of_the_observation():
    """Fresh policies and copied observations give the same actions."""
    env = gym.make("TwentyOne-v0", opponent="random")
    one, two = OptimalPolicy("random", False), OptimalPolicy("random", False)
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        terminated = False
        while not terminated:
            action = one.act(obs)
            assert two.act(copy.deepcopy(obs)) == action
            obs, _, terminated, _, _ = env.step(action)


def test_belief_conditions_on_the_dealer_standing():
    """A dealer that stood showing a 6 must hold an ace (soft 17): on 16 the optimum hits."""
    env = gym.make("TwentyOne-v0", opponent="dealer")
    env.reset(options={"deck": stacked("10S", "AS", "2S", "6S", "4S", "9H", "KH")})
    obs, *_ = env.step(HIT)  # agent 16; the dealer on soft 17 stands
    assert obs["stood"].tolist() == [0, 1] and obs["own_total"] == 16
    solver = solver_for("dealer", False)
    state = solver.state_from_observation(obs)
    assert state[3] == 1 << 0  # the face-down card can only be an ace
    assert solver.action(obs) == HIT  # standing on 16 against 17 loses for sure
    assert solver.value(state)[0] > 0.0


def test_belief_conditions_on_the_opponent_not_busting():
    """A random opponent that hit to a visible 20 and stayed in must hold an ace."""
    env = gym.make("TwentyOne-v0", opponent=Answers([HIT]))
    env.reset(options={"deck": stacked("2S", "AS", "3S", "KS", "4S", "QS", "5S")})
    obs, _, terminated, _, _ = env.step(HIT)
    assert not terminated and obs["opponent_visible_total"] == 20
    state = solver_for("random", False).state_from_observation(obs)
    assert state[3] == 1 << 0


def test_random_opponent_likelihood_is_flat_before_any_evidence():
    """At the deal the belief is every unseen value, weighted by how many are unseen."""
    env = gym.make("TwentyOne-v0", opponent="random")
    obs, _ = env.reset(options={"deck": stacked("2S", "AS", "3S", "AH", "4S")})
    state = solver_for("random", False).state_from_observation(obs)
    assert state[3] == 0b1111111111  # every value is possible (the AS is unseen)
    assert state[4] == (1, 1, 1, 2, 2, 2, 2, 2, 2, 8)  # weighted by the unseen counts


def test_best_response_to_a_general_policy_plays():
    """The optimum against the scripted player (ordered-card solver) plays legal episodes."""
    opponent = ScriptedPlayer()
    policy = ld_agents.make("optimal", "TwentyOne-v0", opponent=ScriptedPlayer())
    assert isinstance(policy.solver, ReferenceSolver)
    rewards = play(policy, gym.make("TwentyOne-v0", opponent=opponent), range(3))
    assert set(rewards.tolist()) <= {-1.0, 0.0, 1.0}


# ----------------------------------------------------------------------------- bad input


def test_unknown_opponent_name_lists_the_known():
    """An unknown opponent name fails listing the built-in ones."""
    with pytest.raises(UnknownName, match="dealer, random"):
        ld_agents.make("optimal", "TwentyOne-v0", opponent="croupier")


def test_opponent_without_action_probs_is_rejected():
    """The optimum needs the opponent's action probabilities."""
    with pytest.raises(InvalidArgument, match="action_probs"):
        OptimalPolicy(opponent=Answers([]))


def test_observation_of_the_other_variant_is_rejected():
    """A hidden-card policy given an open-card observation says so."""
    obs, _ = gym.make("TwentyOne-v0", open_cards=True).reset(seed=0)
    with pytest.raises(InvalidArgument, match="open_cards"):
        OptimalPolicy("dealer", open_cards=False).act(obs)


def test_impossible_observation_is_rejected():
    """An observation the opponent model cannot produce (a dealer standing below 13) fails."""
    env = gym.make("TwentyOne-v0", opponent=Answers([STAND]))
    env.reset(options={"deck": stacked("2H", "KS", "3S", "2S", "4S", "5S")})
    obs, *_ = env.step(HIT)
    assert obs["stood"][1] == 1 and obs["opponent_visible_total"] == 2
    with pytest.raises(InvalidArgument, match="probability 0"):
        OptimalPolicy("dealer", False).act(obs)


def test_exact_evaluation_needs_a_fast_opponent():
    """evaluate() refuses opponents outside the fast solver's class."""
    with pytest.raises(InvalidArgument, match="own-cards-only"):
        evaluate("dealer", OrderedDealer())
    assert fast_path_table(OrderedDealer(), False) is None


def test_policy_pickles_without_its_table():
    """A pickled optimal policy (built-in opponent) is small and acts the same."""
    policy = OptimalPolicy("dealer", False)
    policy.solution()
    blob = pickle.dumps(policy)
    assert len(blob) < 10_000
    clone = pickle.loads(blob)
    obs, _ = gym.make("TwentyOne-v0").reset(seed=1)
    assert clone.act(obs) == policy.act(obs)
    assert clone.solution() == policy.solution()
