"""Gymnasium conformance of every registered ld-gym id (STYLE: parametrised over all ids)."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ld_envs import GAME_OF_ENV

ENV_IDS = sorted(GAME_OF_ENV)


def obs_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(obs_equal(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id):
    """Gymnasium's env checker accepts the env."""
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_two_envs_with_one_seed_step_in_lockstep(env_id):
    """Two envs reset with one seed and fed the same actions give the same transitions."""
    a, b = gym.make(env_id), gym.make(env_id)
    oa, _ = a.reset(seed=123)
    ob, _ = b.reset(seed=123)
    assert obs_equal(oa, ob)
    a.action_space.seed(7)
    for _ in range(300):
        action = a.action_space.sample()
        ra, rb = a.step(action), b.step(action)
        assert obs_equal(ra[0], rb[0]) and ra[1:4] == rb[1:4]
        assert ra[4]["outcome"] == rb[4]["outcome"]
        if ra[2] or ra[3]:
            oa, _ = a.reset()
            ob, _ = b.reset()
            assert obs_equal(oa, ob)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_pickles_mid_episode_and_continues_identically(env_id):
    """A pickled env resumes exactly where the original is."""
    env = gym.make(env_id)
    env.reset(seed=5)
    env.action_space.seed(5)
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    if terminated or truncated:  # pickle a live episode, not a finished one
        env.reset(seed=6)
    clone = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    r1, r2 = env.step(action), clone.step(action)
    assert obs_equal(r1[0], r2[0]) and r1[1:4] == r2[1:4]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rgb_array_and_ansi_render(env_id):
    """rgb_array gives an HxWx3 uint8 frame; ansi a non-empty string; close twice is safe."""
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert frame.std() > 0
    env.close()
    env.close()
    text_env = gym.make(env_id, render_mode="ansi")
    text_env.reset(seed=0)
    assert isinstance(text_env.render(), str) and text_env.render().strip()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_human_render_opens_a_window_headless(env_id):
    """human mode draws into a pygame window (dummy video driver) and returns None."""
    env = gym.make(env_id, render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.close()
