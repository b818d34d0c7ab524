"""The PettingZoo view of pursuit: API conformance, seeding, and the same game as Pursuit-v0."""

from __future__ import annotations

import logging
import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pettingzoo")

with warnings.catch_warnings():  # pettingzoo.test imports its games through an old API
    warnings.filterwarnings("ignore", "The old environment creation API", DeprecationWarning)
    from pettingzoo.test import parallel_api_test, parallel_seed_test

import ld_envs  # noqa: F401
from ld_agents.baselines.pursuit import ScriptedPursuers
from ld_envs import pursuit
from ld_envs import pursuit_parallel as pp
from ld_envs.errors import InvalidAction, InvalidArgument, UnknownKeyword, UnknownName
from ld_envs.pursuit import GreedyEvader, RandomEvader

VARIANTS = [pytest.param({}, id="open"), pytest.param({"restricted": "random"}, id="restricted")]


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_parallel_api_test_passes(kwargs: dict, caplog: pytest.LogCaptureFixture) -> None:
    """PettingZoo's parallel_api_test passes on both variants, with no warning or log."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        parallel_api_test(pp.parallel_env(**kwargs), num_cycles=400)
    assert [str(w.message) for w in caught] == []
    assert caplog.records == []


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_parallel_seed_test_passes(kwargs: dict) -> None:
    """PettingZoo's parallel_seed_test passes: same seed, same game."""
    parallel_seed_test(lambda: pp.parallel_env(**kwargs))


def test_pettingzoo_reset_probe_is_taken_silently(caplog: pytest.LogCaptureFixture) -> None:
    """PettingZoo's probe options={"options": 1} sets nothing and logs nothing."""
    env = pp.parallel_env()
    with caplog.at_level(logging.WARNING):
        env.reset(seed=0, options={"options": 1, "preset": "figure5"})
    assert caplog.records == []
    assert env.pursuers == [(3, 8), (14, 19), (17, 2)]


def test_unknown_and_nested_reset_options_are_refused() -> None:
    """A misspelled option fails as in Pursuit-v0; options nested in "options" are named."""
    assert _error(lambda: pp.parallel_env().reset(options={"presets": "figure5"})) == _error(
        lambda: pursuit.PursuitEnv().reset(options={"presets": "figure5"})
    )
    with pytest.raises(InvalidArgument, match="not nested"):
        pp.parallel_env().reset(options={"options": {"preset": "figure5"}})


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


class _ReplayEvader:
    """An evader controller for PursuitEnv that plays the choices the test hands it."""

    def __init__(self) -> None:
        self.seed: int | None = None
        self.choice: object = None
        self.seen: list[list[int]] = []

    def reset(self, seed: int | None = None) -> None:
        self.seed = seed

    def act(self, obs: dict) -> object:
        self.seen.append(obs["action_mask"].tolist())
        return self.choice


def _pursuer_actions(rng: np.random.Generator, mask: np.ndarray) -> list[int]:
    """Mostly legal moves, sometimes any entry (NO_CHOICE and illegal moves included)."""
    return [
        int(rng.integers(pursuit.N_PURSUER_ACTIONS))
        if rng.random() < 0.1
        else int(rng.choice(np.flatnonzero(row)))
        for row in mask
    ]


def _evader_choice(rng: np.random.Generator, mask: np.ndarray) -> object:
    """Mostly a legal move, sometimes any move of Discrete(5), illegal ones included (an
    action outside the space is refused by the parallel env: see
    test_bad_evader_action_is_refused_like_a_bad_pursuer_action)."""
    if rng.random() < 0.1:
        return int(rng.integers(len(pursuit.EVADER_MOVES)))
    return int(rng.choice(np.flatnonzero(mask)))


def _board(env: pursuit.PursuitEnv) -> tuple:
    return (
        list(env.pursuers), env.evader_cell, env.area, env.steps, env.violations,
        env.evader_violations, env.outcome,
    )  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"restricted": "random"}, {"restricted": (4, 6), "size": 15}, {"max_violations": 2}],
)
def test_same_game_as_pursuit_env_for_the_same_actions(kwargs: dict) -> None:
    """Same seed, same actions (illegal ones too): the same states, masks, ends and counts."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        seat = _ReplayEvader()
        single = pursuit.PursuitEnv(evader=seat, **kwargs)
        obs_g, _ = single.reset(seed=seed)
        env = pp.parallel_env(**kwargs)
        obs, infos = env.reset(seed=seed)
        assert infos[pp.EVADER_AGENT]["policy_seed"] == seat.seed
        assert _board(env) == _board(single)
        evader_masks = []
        while env.agents:
            for i, agent in enumerate(pp.PURSUER_AGENTS):
                assert obs[agent]["action_mask"].tolist() == obs_g["action_mask"][i].tolist()
            joint = _pursuer_actions(rng, obs_g["action_mask"])
            actions = dict(zip(pp.PURSUER_AGENTS, joint, strict=True))
            obs, _, terms, truncs, infos = env.step({**actions, pp.EVADER_AGENT: 0})
            if env.agents:
                seat.choice = _evader_choice(rng, obs[pp.EVADER_AGENT]["action_mask"])
                evader_masks.append(obs[pp.EVADER_AGENT]["action_mask"].tolist())
                actions = dict.fromkeys(pp.PURSUER_AGENTS, 0)
                obs, _, terms, truncs, infos = env.step({**actions, pp.EVADER_AGENT: seat.choice})
            obs_g, _, term, trunc, info_g = single.step(joint)
            assert _board(env) == _board(single), seed
            assert (terms[pp.EVADER_AGENT], truncs[pp.EVADER_AGENT]) == (term, trunc)
            assert infos[pp.EVADER_AGENT]["violations"] == info_g["violations"]
        assert evader_masks == seat.seen
        assert single.outcome is not None


def _error(call: object) -> tuple[type, str]:
    try:
        call()  # type: ignore[operator]
    except Exception as exc:  # the test compares whatever is raised
        return type(exc), str(exc)
    raise AssertionError("no error raised")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 3},
        {"size": "21"},
        {"restricted": (0, 0)},
        {"restricted": "middle"},
        {"restricted": ("a",)},
        {"render_mode": "window"},
        {"max_steps": 0},
    ],
)
def test_bad_arguments_raise_what_pursuit_env_raises(kwargs: dict) -> None:
    """A bad constructor argument fails with PursuitEnv's error and message."""
    assert _error(lambda: pp.parallel_env(**kwargs)) == _error(lambda: pursuit.PursuitEnv(**kwargs))


@pytest.mark.parametrize(
    ("kwargs", "options"),
    [
        ({}, {"preset": "figure6"}),
        ({}, {"pursuers": [(0, 0), (1, 1), (2, 2)]}),
        ({}, {"pursuers": [(0, 0), (0, 0), (2, 2)], "evader": (9, 9)}),
        ({}, {"pursuers": [(0, 0), (1, 1), (2, 2)], "evader": (21, 3)}),
        ({}, {"pursuers": [(5, 5), (5, 7), (4, 6)], "evader": (5, 6)}),
        ({}, {"pursuers": [(0, 0), (1, 1)], "evader": (9, 9)}),
        ({}, {"restricted": (3, 3)}),
        ({"restricted": "random"}, {"restricted": (0, 3)}),
        ({"restricted": (3, 3)}, {"pursuers": [(4, 4), (1, 1), (2, 2)], "evader": (9, 9)}),
    ],
)
def test_bad_reset_options_raise_what_pursuit_env_raises(kwargs: dict, options: dict) -> None:
    """A bad start or area in reset options fails with PursuitEnv's error and message."""
    assert _error(lambda: pp.parallel_env(**kwargs).reset(seed=0, options=options)) == _error(
        lambda: pursuit.PursuitEnv(**kwargs).reset(seed=0, options=options)
    )


@pytest.mark.parametrize("bad", [14, -1, 2.5, "a", True])
def test_bad_pursuer_action_raises_what_pursuit_env_raises(bad: object) -> None:
    """An entry outside Discrete(14) fails with PursuitEnv's error type, in the agent's own
    terms (its name and its space, not the joint action), and nothing is applied."""
    env = pp.parallel_env()
    env.reset(seed=0)
    single = pursuit.PursuitEnv()
    single.reset(seed=0)
    error = _error(lambda: env.step({"pursuer_A": bad, "pursuer_B": 0, "pursuer_C": 0}))
    assert error[0] is _error(lambda: single.step([bad, 0, 0]))[0] is InvalidAction
    assert error[1].startswith("pursuer_A's action is an int in [0, 13]")
    assert env.steps == 0 and env.agents  # nothing was applied


def _evader_turn_env() -> pp.PursuitParallelEnv:
    """A parallel env reset and stepped once: the evader is on turn."""
    env = pp.parallel_env()
    env.reset(seed=0)
    env.step(dict.fromkeys(pp.AGENTS, 0))
    assert env.turn == pp.EVADER_TURN
    return env


@pytest.mark.parametrize("bad", [7, -1, 5, 2.5, "x", None, True, np.float64(1.0)])
def test_bad_evader_action_is_refused_like_a_bad_pursuer_action(bad: object) -> None:
    """An evader action outside Discrete(5) raises InvalidAction (as a pursuer entry outside
    Discrete(14) does) naming the space, and nothing is applied."""
    env = _evader_turn_env()
    before = (env.evader_cell, env.evader_violations, env.steps, env.turn)
    with pytest.raises(InvalidAction, match=r"evader's action is an int in \[0, 4\]"):
        env.step({**dict.fromkeys(pp.PURSUER_AGENTS, 0), pp.EVADER_AGENT: bad})
    assert (env.evader_cell, env.evader_violations, env.steps, env.turn) == before


def test_missing_evader_action_on_its_turn_is_refused() -> None:
    """On the evader's turn its action is needed: Discrete(5) has no "no choice" entry."""
    env = _evader_turn_env()
    with pytest.raises(InvalidAction, match="evader's turn"):
        env.step(dict.fromkeys(pp.PURSUER_AGENTS, 0))
    assert env.evader_violations == 0 and env.turn == pp.EVADER_TURN


def test_evader_actions_in_the_space_still_play() -> None:
    """A masked-out evader move in Discrete(5) (numpy ints included) counts an evader
    violation and the game goes on, as in Pursuit-v0."""
    env = pp.parallel_env()
    env.reset(options={"pursuers": [(0, 0), (0, 2), (0, 4)], "evader": (20, 20)})
    env.step(dict.fromkeys(pp.AGENTS, 0))
    right = pursuit.EVADER_MOVES.index((1, 0))  # off the board from (20, 20)
    env.step({pp.EVADER_AGENT: np.int64(right)})
    assert env.evader_violations == 1 and env.evader_cell == (20, 20)
    env.step(dict.fromkeys(pp.AGENTS, 0))
    env.step({pp.EVADER_AGENT: np.array([pursuit.EVADER_MOVES.index((-1, 0))])})
    assert env.evader_cell == (19, 20)


@pytest.mark.parametrize("turn", ["pursuers", "evader"])
def test_unknown_agent_names_are_refused_listing_the_agents(turn: str) -> None:
    """Misspelled agent names raise UnknownName naming them, the closest name and the
    four agents, on either side's turn; nothing is applied."""
    env = _evader_turn_env() if turn == "evader" else pp.parallel_env()
    if turn == "pursuers":
        env.reset(seed=0)
    before = (list(env.pursuers), env.evader_cell, env.violations, env.steps, env.turn)
    actions = {"pursuer_a": 0, "pursuer_b": 0, "pursuer_c": 0, "evader": 0}
    with pytest.raises(UnknownName) as info:
        env.step(actions)
    message = str(info.value)
    assert "'pursuer_a' (did you mean 'pursuer_A'?)" in message
    assert "pursuer_A, pursuer_B, pursuer_C, evader" in message
    assert (list(env.pursuers), env.evader_cell, env.violations, env.steps, env.turn) == before


def test_actions_that_are_no_dict_are_refused() -> None:
    """step() with a list names the dict it takes."""
    env = pp.parallel_env()
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="dict of actions keyed by agent name"):
        env.step([0, 0, 0, 0])


def test_unknown_argument_lists_the_accepted_ones() -> None:
    """parallel_env(foo=1) raises UnknownKeyword (a TypeError) listing the arguments it
    takes, with the closest one for a typo."""
    with pytest.raises(UnknownKeyword, match=r"takes no argument 'foo'; it takes: size, "):
        pp.parallel_env(foo=1)
    with pytest.raises(TypeError, match=r"did you mean 'restricted'\?.*render_mode"):
        pp.parallel_env(restrictd="random")


def test_rules_reach_every_agent_and_pass_the_api_test() -> None:
    """``parallel_env(rules=...)`` plays Pursuit-v0's rules: every agent observes the
    forbidden cells (the same grid as Pursuit-v0's), and PettingZoo's API test passes."""
    import gymnasium as gym
    from pettingzoo.test import parallel_api_test

    band = [{"kind": "band", "axis": "row", "span": [9, 10]}]
    env = pp.parallel_env(rules=band)
    obs, _ = env.reset(seed=3)
    single, _ = gym.make("Pursuit-v0", rules=band).reset(seed=3)
    for agent in env.agents:
        assert env.observation_space(agent)["forbidden"].shape == (4, 21, 21)
        np.testing.assert_array_equal(obs[agent]["forbidden"], single["forbidden"])
    assert obs["pursuer_A"]["forbidden"][0, :, 9].all()
    assert "forbidden" not in pp.parallel_env().reset(seed=3)[0]["evader"]
    parallel_api_test(pp.parallel_env(rules=band), num_cycles=100)
