"""The PettingZoo view of pursuit: API conformance, seeding, and the same game as Pursuit-v0."""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test

import ld_envs  # noqa: F401
from ld_agents.baselines.pursuit import ScriptedPursuers
from ld_envs import pursuit
from ld_envs import pursuit_parallel as pp
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import GreedyEvader, RandomEvader

VARIANTS = [pytest.param({}, id="open"), pytest.param({"restricted": "random"}, id="restricted")]


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_parallel_api_test_passes(kwargs: dict) -> None:
    """PettingZoo's parallel_api_test passes on both variants."""
    parallel_api_test(pp.parallel_env(**kwargs), num_cycles=400)


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_parallel_seed_test_passes(kwargs: dict) -> None:
    """PettingZoo's parallel_seed_test passes: same seed, same game."""
    parallel_seed_test(lambda: pp.parallel_env(**kwargs))


def _play_parallel(env: pp.PursuitParallelEnv, seed: int, evader: object) -> tuple:
    obs, infos = env.reset(seed=seed)
    if hasattr(evader, "reset"):
        evader.reset(seed=infos[pp.EVADER_AGENT]["policy_seed"])
    pursuers = ScriptedPursuers(size=env.size)
    while env.agents:
        if obs[pp.EVADER_AGENT]["turn"] == pp.PURSUERS_TURN:
            actions = pp.joint_pursuer_action(obs, pursuers)
            actions[pp.EVADER_AGENT] = 0
        else:
            actions = dict.fromkeys(env.agents, 0)
            actions[pp.EVADER_AGENT] = evader.act(obs[pp.EVADER_AGENT])
        obs, _, _, _, infos = env.step(actions)
    info = infos[pp.EVADER_AGENT]
    return info["outcome"], info["steps"], info["violations"], list(env.pursuers), env.evader_cell


def _play_gym(env_id: str, seed: int, evader: str) -> tuple:
    env = gym.make(env_id, evader=evader)
    obs, _ = env.reset(seed=seed)
    policy = ScriptedPursuers()
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(policy.act(obs))
        done = term or trunc
    base = env.unwrapped
    return info["outcome"], info["steps"], info["violations"], list(base.pursuers), base.evader_cell


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [("Pursuit-v0", {}), ("PursuitRestricted-v0", {"restricted": "random"})],
)
@pytest.mark.parametrize(("name", "cls"), [("greedy", GreedyEvader), ("random", RandomEvader)])
def test_replays_gym_env_exactly(env_id: str, kwargs: dict, name: str, cls: type) -> None:
    """Same seed, same start, same evader seed: the parallel game equals Pursuit-v0's."""
    env = pp.parallel_env(**kwargs)
    for seed in range(15):
        assert _play_parallel(env, seed, cls()) == _play_gym(env_id, seed, name), seed


def test_observations_lie_in_spaces_and_masks_follow_turns() -> None:
    """Every observation is in its agent's space; only the side on turn has choices."""
    env = pp.parallel_env(restricted="random")
    obs, _ = env.reset(seed=3)
    for _ in range(60):
        if not env.agents:
            break
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o), agent
            on_turn = (o["turn"] == pp.PURSUERS_TURN) == (agent != pp.EVADER_AGENT)
            if not on_turn:
                assert o["action_mask"].tolist() == [1] + [0] * (len(o["action_mask"]) - 1)
        turn = obs[pp.EVADER_AGENT]["turn"]
        if turn == pp.PURSUERS_TURN:
            full = pursuit.pursuer_action_mask(env.pursuers, env.size, env.area)
            for i, a in enumerate(pp.PURSUER_AGENTS):
                assert obs[a]["action_mask"].tolist() == full[i].tolist()
        else:
            moves = pursuit.evader_targets(env.evader_cell, env.pursuers, env.size, env.area)
            assert obs[pp.EVADER_AGENT]["action_mask"].tolist() == [m is not None for m in moves]
        actions = {a: env.action_space(a).sample(mask=obs[a]["action_mask"]) for a in env.agents}
        obs, *_ = env.step(actions)


def test_illegal_pursuer_choice_counts_and_is_penalised() -> None:
    """NO_CHOICE leaves the pursuer in place, counts one violation and costs it 0.1."""
    env = pp.parallel_env()
    env.reset(options={"pursuers": [(0, 0), (5, 5), (9, 9)], "evader": (15, 15)})
    actions = {"pursuer_A": pursuit.NO_CHOICE, "pursuer_B": 0, "pursuer_C": 0, "evader": 0}
    _, rewards, _, _, infos = env.step(actions)
    assert env.pursuers[0] == (0, 0)
    assert infos["evader"]["violations"] == 1
    assert rewards["pursuer_A"] == pytest.approx(-0.1)
    assert rewards["pursuer_B"] == 0.0


def test_uses_the_rule_functions_of_pursuit() -> None:
    """No rule is copied: the parallel env calls ld_envs.pursuit's functions."""
    for name in ("resolve_pursuers", "evader_targets", "captured", "pursuer_action_mask",
                 "draw_start", "draw_area", "validate_start"):  # fmt: skip
        assert getattr(pp, name) is getattr(pursuit, name)


def test_bad_arguments_fail_clearly() -> None:
    """Bad size, area and step-after-end raise InvalidArgument."""
    with pytest.raises(InvalidArgument, match="size"):
        pp.parallel_env(size=3)
    with pytest.raises(InvalidArgument, match="touches the edge"):
        pp.parallel_env(restricted=(0, 0))
    env = pp.parallel_env()
    env.reset(options={"pursuers": [(4, 5), (6, 5), (9, 9)], "evader": (5, 5)})
    env.step({"pursuer_A": 0, "pursuer_B": 0, "pursuer_C": 3, "evader": 0})  # C to (9, 10)
    env.step({"pursuer_A": 0, "pursuer_B": 0, "pursuer_C": 0, "evader": 0})  # evader stays
    env.step({"pursuer_A": 0, "pursuer_B": 0, "pursuer_C": 0, "evader": 0})
    for _ in range(200):
        if not env.agents:
            break
        env.step(dict.fromkeys(env.agents, 0))
    assert not env.agents
    with pytest.raises(InvalidArgument, match="reset"):
        env.step({})
