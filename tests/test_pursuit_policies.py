"""Pursuit baselines: registry, random (masked and blind), scripted pursuers, evaders."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ld_agents
from ld_envs.errors import InvalidArgument, UnknownName
from ld_envs.pursuit import NO_CHOICE, GreedyEvader, RandomEvader


def play(env_id: str, policy, seed: int, **env_kwargs) -> dict:
    env = gym.make(env_id, **env_kwargs)
    obs, info = env.reset(seed=seed)
    policy.reset(seed=seed)
    while True:
        obs, _, term, trunc, info = env.step(policy.act(obs))
        if term or trunc:
            return info


def test_unknown_policy_lists_known_names():
    """An unknown policy name fails listing those registered for the env."""
    with pytest.raises(UnknownName, match="scripted") as err:
        ld_agents.make("clever", "Pursuit-v0")
    assert "random" in str(err.value)
    with pytest.raises(UnknownName, match="Pursuit-v0"):
        ld_agents.make("scripted", "Chess-v0")


def test_make_names_policy_and_builds_evaders_by_side():
    """make() sets the table name; side='evader' builds evader policies."""
    assert ld_agents.make("scripted", "Pursuit-v0").name == "scripted"
    assert isinstance(ld_agents.make("random", "Pursuit-v0", side="evader"), RandomEvader)
    assert isinstance(ld_agents.make("greedy", "Pursuit-v0"), GreedyEvader)
    with pytest.raises(InvalidArgument, match="side"):
        ld_agents.make("random", "Pursuit-v0", side="referee")


@pytest.mark.parametrize("env_id", ["Pursuit-v0", "PursuitRestricted-v0"])
def test_scripted_pursuers_capture_the_greedy_evader_from_every_start(env_id):
    """The scripted pursuer succeeds on the 200 benchmark starts (sweep seed 0) of both envs."""
    from benchmarks.rollout import episode_seed

    policy = ld_agents.make("scripted", env_id)
    outcomes = [play(env_id, policy, episode_seed(0, i)) for i in range(200)]
    assert all(o["outcome"] == "success" for o in outcomes)
    assert all(o["violations"] == 0 for o in outcomes)
    assert np.mean([o["steps"] for o in outcomes]) < 16


def test_masked_random_never_violates_alone_blind_random_does():
    """Mask-aware random makes no single-pursuer violation; the blind one makes many."""
    masked = ld_agents.make("random", "Pursuit-v0", seed=0)
    blind = ld_agents.make("random_blind", "Pursuit-v0", seed=0)
    env = gym.make("Pursuit-v0")
    obs, info = env.reset(seed=0)
    for _ in range(50):
        action = masked.act(obs)
        assert all(info["action_mask"][i, a] == 1 for i, a in enumerate(action))
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            obs, info = env.reset()
    blind_outcomes = [play("Pursuit-v0", blind, s)["outcome"] for s in range(20)]
    assert blind_outcomes.count("failure_with_violation") >= 15


def test_policies_own_their_generator():
    """Seeding a policy repeats its choices; global numpy random state is untouched."""
    state = np.random.get_state()[1].copy()
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(seed=1)
    a = ld_agents.make("random", "Pursuit-v0", seed=3)
    b = ld_agents.make("random", "Pursuit-v0", seed=3)
    assert [a.act(obs).tolist() for _ in range(5)] == [b.act(obs).tolist() for _ in range(5)]
    a.reset(seed=9)
    b.reset(seed=9)
    assert a.act(obs).tolist() == b.act(obs).tolist()
    assert np.array_equal(np.random.get_state()[1], state)


def test_act_batch_matches_act():
    """The default act_batch returns act's answers in order."""
    policy = ld_agents.make("scripted", "Pursuit-v0")
    env = gym.make("Pursuit-v0")
    observations = [env.reset(seed=s)[0] for s in range(5)]
    batch = policy.act_batch(observations)
    assert [b.tolist() for b in batch] == [policy.act(o).tolist() for o in observations]
    assert all(NO_CHOICE not in b for b in batch)
