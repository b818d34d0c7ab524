"""The ecosystem's checkers and wrappers on every registered id and render mode: Gymnasium's
``check_env`` and passive checker, the standard wrappers (``RecordVideo`` included), sb3-contrib's
``MaskablePPO`` on the plain ``gym.make`` env, PettingZoo's ``api_test`` on ``parallel_to_aec``
(with the advice the contract keeps, pinned), and the pursuit mask's known limit.

Every check records Python warnings and log records of level WARNING and asserts there are
none (``docs/ecosystem.md`` says what each checker covers). The ``human`` mode draws to
SDL's dummy video driver (``tests/conftest.py``): no window can open here, but the whole
drawing path runs.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pygame  # noqa: F401  (imported before any warning is recorded)
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import (
    FlattenObservation,
    HumanRendering,
    PassiveEnvChecker,
    RecordEpisodeStatistics,
    RecordVideo,
    TimeLimit,
)

import ld_envs
from ld_envs import pursuit

IDS = sorted(ld_envs.GAME_OF_ENV)
RENDER_MODES = [None, "rgb_array", "ansi", "human"]


@pytest.fixture(autouse=True)
def fast_human_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """``human`` frames are paced at ``render_fps`` (2-4 a second); here they need not be."""
    from ld_envs.pursuit import PursuitEnv
    from ld_envs.twenty_one import TwentyOneEnv

    for cls in (PursuitEnv, TwentyOneEnv):
        monkeypatch.setitem(cls.metadata, "render_fps", 1000)


@contextlib.contextmanager
def no_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail when the block emits a Python warning or logs at WARNING or above."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        yield
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def play(env: gym.Env, seed: int, max_steps: int = 300, render: bool = False) -> dict:
    """Play one episode with masked random actions; return the last info."""
    _, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(max_steps):
        mask = env.unwrapped.action_masks()
        if isinstance(env.action_space, spaces.MultiDiscrete):
            action = env.action_space.sample(mask=tuple(mask.reshape(3, -1)))
        else:
            action = env.action_space.sample(mask=mask)
        _, _, term, trunc, info = env.step(action)
        if render:
            env.render()
        if term or trunc:
            break
    return info


# ----------------------------------------------------------------- Gymnasium's checkers


@pytest.mark.parametrize("render_mode", RENDER_MODES)
@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env_passes_silently(env_id, render_mode, caplog):
    """check_env (render and close checks included) passes with no warning."""
    env = gym.make(env_id, render_mode=render_mode)
    with no_warnings(caplog):
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("render_mode", RENDER_MODES)
@pytest.mark.parametrize("env_id", IDS)
def test_passive_checker_sees_whole_games_silently(env_id, render_mode, caplog):
    """gym.make's PassiveEnvChecker watches two whole episodes, rendered, with no warning."""
    with no_warnings(caplog):
        env = gym.make(env_id, render_mode=render_mode)
        assert any(isinstance(w, PassiveEnvChecker) for w in _wrappers(env))
        for seed in (0, 1):
            assert play(env, seed, render=render_mode is not None)["outcome"] is not None
        env.close()
        env.close()  # closing twice is allowed


def test_two_human_windows_survive_one_closing(caplog):
    """pygame has one display: closing one human env must not break another one's frames."""
    with no_warnings(caplog):
        first = gym.make("Pursuit-v0", render_mode="human")
        second = gym.make("TwentyOne-v0", render_mode="human")
        first.reset(seed=0)
        second.reset(seed=0)
        second.close()
        first.step(first.action_space.sample())  # draws again
        first.close()


def _wrappers(env: gym.Env) -> list[gym.Env]:
    out = [env]
    while isinstance(out[-1], gym.Wrapper):
        out.append(out[-1].env)
    return out


# ----------------------------------------------------------------- standard wrappers


@pytest.mark.parametrize("env_id", IDS)
def test_record_episode_statistics(env_id, caplog):
    """The episode's return and length come out in info["episode"] at its end."""
    with no_warnings(caplog):
        env = RecordEpisodeStatistics(gym.make(env_id))
        env.reset(seed=0)
        total, length, done = 0.0, 0, False
        while not done:
            _, reward, term, trunc, info = env.step(env.action_space.sample())
            total, length, done = total + reward, length + 1, term or trunc
    assert info["episode"]["l"] == length
    assert info["episode"]["r"] == pytest.approx(total)


@pytest.mark.parametrize("env_id", IDS)
def test_time_limit_truncates(env_id, caplog):
    """TimeLimit cuts an episode at its limit (the envs set no limit of their own)."""
    assert gym.spec(env_id).max_episode_steps is None
    with no_warnings(caplog):
        env = TimeLimit(gym.make(env_id), max_episode_steps=2)
        truncated = 0
        for seed in range(10):
            env.reset(seed=seed)
            env.action_space.seed(seed)  # the sampled actions too: a reproducible count
            ended_at = None
            for length in (1, 2, 3):
                _, _, term, trunc, _ = env.step(env.action_space.sample())
                if term or trunc:
                    ended_at = length
                    break
            assert ended_at is not None and ended_at <= 2
            truncated += trunc
    assert truncated > 0


@pytest.mark.parametrize("env_id", IDS)
def test_flatten_observation_round_trips(env_id, caplog):
    """FlattenObservation gives one vector in its space that unflattens to the env's obs."""
    with no_warnings(caplog):
        base = gym.make(env_id)
        env = FlattenObservation(gym.make(env_id))
        flat, _ = env.reset(seed=4)
        obs, _ = base.reset(seed=4)
        assert env.observation_space.contains(flat)
        back = spaces.unflatten(base.observation_space, flat)
        assert all(np.array_equal(back[k], obs[k]) for k in obs)
        play(env, 4)


@pytest.mark.parametrize("env_id", IDS)
def test_record_video_writes_an_mp4(env_id, tmp_path, caplog):
    """RecordVideo (moviepy, the ``video`` extra) writes one mp4 for the episode."""
    pytest.importorskip("moviepy")
    folder = tmp_path / "videos"
    with no_warnings(caplog):
        env = RecordVideo(
            gym.make(env_id, render_mode="rgb_array"),
            str(folder),
            episode_trigger=lambda episode: episode == 0,
            disable_logger=True,
        )
        play(env, 0)
        env.close()
    (video,) = folder.glob("*.mp4")
    head = video.read_bytes()[:12]
    assert head[4:8] == b"ftyp", head  # an ISO media file


@pytest.mark.parametrize("env_id", IDS)
def test_human_rendering_wrapper(env_id, caplog):
    """HumanRendering shows the rgb_array frames in a window (dummy driver here)."""
    with no_warnings(caplog):
        env = HumanRendering(gym.make(env_id, render_mode="rgb_array"))
        play(env, 0, max_steps=5)
        env.close()


# ----------------------------------------------------------------- sb3-contrib


@pytest.mark.parametrize("env_id", IDS)
def test_maskable_ppo_learns_on_the_plain_env(env_id, caplog):
    """MaskablePPO("MultiInputPolicy", gym.make(id)) trains a few hundred steps, silently,
    sampling only actions its masks allow; get_action_masks reads the env's own mask."""
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = gym.make(env_id)
    with no_warnings(caplog):
        _, info = env.reset(seed=0)
        mask = get_action_masks(env)
        assert np.array_equal(mask, env.unwrapped.action_masks())
        if "action_mask" in info:
            assert np.array_equal(mask, info["action_mask"].reshape(-1))
        model = MaskablePPO(
            "MultiInputPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu"
        )
        model.learn(total_timesteps=256)
        buffer = model.rollout_buffer
        obs, _ = env.reset(seed=1)
        action, _ = model.predict(obs, action_masks=get_action_masks(env), deterministic=True)
    assert env.action_space.contains(np.asarray(action, dtype=np.int64))
    sizes = env.action_space.nvec if hasattr(env.action_space, "nvec") else [env.action_space.n]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    actions = buffer.actions.reshape(-1, len(sizes)).astype(int)
    masks = buffer.action_masks.reshape(len(actions), -1)
    assert masks[np.arange(len(actions))[:, None], actions + offsets].all()


# ----------------------------------------------------------------- PettingZoo


#: What PettingZoo's api_test advises on the AEC view of pursuit, kept on purpose
#: (docs/ecosystem.md): the observation is Pursuit-v0's Dict plus "turn" and the agent's
#: mask, so every ld-gym policy acts on it unchanged (PettingZoo's own masked envs, such
#: as chess and connect four, use dicts too and are exempted by name in the checker); the
#: agents are named after the paper's pursuers A, B, C; the evader has 5 moves and the
#: pursuers 14, so their masks, and hence their observation spaces, differ in size.
KEPT_PETTINGZOO_ADVICE = {
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be gymnasium.spaces.box or "
    "gymnasium.spaces.discrete",
    'We recommend agents to be named in the format <descriptor>_<number>, like "player_0"',
    "Agents have different observation space sizes",
}


#: PettingZoo's own deprecation notice, raised once when pettingzoo.test imports its games
PETTINGZOO_IMPORT = "ignore:The old environment creation API:DeprecationWarning"


@pytest.mark.filterwarnings(PETTINGZOO_IMPORT)
@pytest.mark.parametrize("kwargs", [{}, {"restricted": "random"}], ids=["open", "restricted"])
def test_pettingzoo_api_test_on_parallel_to_aec(kwargs, caplog):
    """api_test passes on parallel_to_aec(parallel_env()); its only advice is the kept one,
    and the env logs nothing (PettingZoo's reset probe {"options": 1} is taken silently)."""
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import api_test
    from pettingzoo.utils.conversions import parallel_to_aec

    from ld_envs import pursuit_parallel as pp

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        api_test(parallel_to_aec(pp.parallel_env(**kwargs)), num_cycles=300)
    assert {str(w.message) for w in caught} == KEPT_PETTINGZOO_ADVICE
    assert [r.getMessage() for r in caplog.records] == []


@pytest.mark.filterwarnings(PETTINGZOO_IMPORT)
@pytest.mark.parametrize("kwargs", [{}, {"restricted": "random"}], ids=["open", "restricted"])
def test_pettingzoo_parallel_tests_pass_silently(kwargs, caplog):
    """parallel_api_test and parallel_seed_test pass with no warning and no log."""
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    from ld_envs import pursuit_parallel as pp

    with no_warnings(caplog):
        parallel_api_test(pp.parallel_env(**kwargs), num_cycles=300)
        parallel_seed_test(lambda: pp.parallel_env(**kwargs))


# ----------------------------------------------------------------- the mask's known limit


def test_pursuit_mask_is_per_pursuer_so_a_joint_action_can_collide():
    """Both A and B may move to the cell between them by the mask; played together, B's
    move is refused (A took the cell first) and counts one violation (docs/rl.md)."""
    env = gym.make("Pursuit-v0")
    obs, _ = env.reset(options={"pursuers": [(5, 5), (7, 5), (15, 15)], "evader": (10, 12)})
    right, left = pursuit.MOVES.index((1, 0)), pursuit.MOVES.index((-1, 0))
    assert obs["action_mask"][0, right] and obs["action_mask"][1, left]
    _, _, _, _, info = env.step([right, left, 0])
    assert env.unwrapped.pursuers[:2] == [(6, 5), (7, 5)]
    assert info["violations"] == 1


def test_shipped_rl_policy_violations_are_only_such_collisions():
    """The shipped masked model's violations (13 benchmark starts, seed 1000) are all of
    that one kind: B or C naming the cell an earlier pursuer has just moved to."""
    pytest.importorskip("sb3_contrib")
    import ld_agents
    from ld_agents.seeding import episode_seed

    policy = ld_agents.make("rl", "Pursuit-v0")
    env = gym.make("Pursuit-v0")
    for episode in range(13):
        obs, _ = env.reset(seed=episode_seed(1000, episode))
        done = False
        while not done:
            action = policy.act(obs)
            before = list(env.unwrapped.pursuers)
            assert all(obs["action_mask"][i, a] for i, a in enumerate(action))
            targets = pursuit.decode_action(before, action)
            after, illegal = pursuit.resolve_pursuers(before, targets, 21, None)
            for i in np.flatnonzero(illegal):
                assert targets[i] in after[:i], (episode, before, targets)
            obs, _, term, trunc, _ = env.step(action)
            done = term or trunc
