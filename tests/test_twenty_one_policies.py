"""21-point baselines: registry, the env's own players, and the scripted heuristic's rules."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
import ld_envs  # noqa: F401  (registers the ids)
from ld_agents.baselines.twenty_one import ScriptedPlayer, opponent_totals
from ld_envs.errors import InvalidArgument
from ld_envs.twenty_one import (
    HIT,
    RANKS,
    STAND,
    SUITS,
    DealerPlayer,
    RandomPlayer,
    observation,
)


def C(name: str) -> int:
    return SUITS.index(name[-1]) * len(RANKS) + RANKS.index(name[:-1])


def obs_of(own: list[str], other: list[str], other_stood: bool = False, open_cards: bool = False):
    own_ids, other_ids = [C(n) for n in own], [C(n) for n in other]
    deck_left = 26 - len(own_ids) - len(other_ids)
    return observation(own_ids, other_ids, False, other_stood, deck_left, open_cards)


def test_registry_builds_the_env_players():
    """random and dealer are the env's own player classes; scripted is a Policy."""
    assert type(ld_agents.make("dealer", "TwentyOne-v0")) is DealerPlayer
    assert type(ld_agents.make("random", "TwentyOne-v0")) is RandomPlayer
    scripted = ld_agents.make("scripted", "TwentyOne-v0")
    assert isinstance(scripted, ScriptedPlayer) and isinstance(scripted, ld_agents.Policy)
    assert {"dealer", "random", "scripted", "optimal"} <= set(
        ld_agents.known_policies("TwentyOne-v0")
    )


def test_random_policy_is_reproducible_from_its_seed():
    """The random player draws from its own seeded generator."""
    obs = obs_of(["2S", "3S"], ["KS", "5S"])
    a = [ld_agents.make("random", "TwentyOne-v0", seed=3).act(obs)]
    one, two = RandomPlayer(seed=3), RandomPlayer(seed=3)
    assert [one.act(obs) for _ in range(40)] == [two.act(obs) for _ in range(40)]
    assert a[0] in (STAND, HIT)
    assert {one.act(obs) for _ in range(100)} == {STAND, HIT}
    with pytest.raises(InvalidArgument):
        RandomPlayer(p_hit=1.5)


def test_action_probs_agree_with_act():
    """Deterministic players' act is the action their action_probs puts weight 1 on."""
    env = gym.make("TwentyOne-v0", opponent="random")
    players = [DealerPlayer(), ScriptedPlayer()]
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        for player in players:
            probs = player.action_probs(obs)
            assert probs in ((1.0, 0.0), (0.0, 1.0))
            assert player.act(obs) == int(probs[1])


def test_scripted_stands_on_21():
    """Rule 1: on 21 or more the scripted player stands."""
    assert ScriptedPlayer().act(obs_of(["AS", "KS"], ["2S", "3S"])) == STAND


def test_scripted_hits_when_it_cannot_bust():
    """Rule 3: with no card able to bust it, it hits."""
    assert ScriptedPlayer().act(obs_of(["2S", "3S"], ["KS", "KH"])) == HIT


def test_scripted_stands_on_a_risky_16_against_an_opponent_still_in():
    """Rule 3: on 16 with a bust chance over one half, it stands."""
    assert ScriptedPlayer().act(obs_of(["KS", "6S"], ["2S", "9S"])) == STAND
    assert ScriptedPlayer(max_bust=0.9).act(obs_of(["KS", "6S"], ["2S", "9S"])) == HIT


def test_scripted_hits_behind_a_stood_opponent():
    """Rule 2: behind an opponent that stood on a sure 20, it hits; ahead, it stands."""
    behind = obs_of(["KS", "6S"], ["KH", "QS"], other_stood=True, open_cards=True)
    ahead = obs_of(["KS", "AS"], ["KH", "QS"], other_stood=True, open_cards=True)
    assert ScriptedPlayer().act(behind) == HIT
    assert ScriptedPlayer().act(ahead) == STAND


def test_opponent_totals_count_the_hidden_card_candidates():
    """With a face-down card every unseen card is a candidate; open cards give one total."""
    hidden = obs_of(["KS", "6S"], ["AS", "9S"])
    totals = opponent_totals(hidden)
    assert len(totals) == 23 and max(totals) == 20 and min(totals) == 11
    assert opponent_totals(obs_of(["KS", "6S"], ["AS", "9S"], open_cards=True)) == [20]


def test_scripted_plays_either_side_of_the_env():
    """The scripted player works as agent and as the env's opponent."""
    env = gym.make("TwentyOne-v0", opponent=ScriptedPlayer())
    agent = ScriptedPlayer()
    rewards = []
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        terminated = False
        while not terminated:
            obs, reward, terminated, _, _ = env.step(agent.act(obs))
        rewards.append(reward)
    assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
