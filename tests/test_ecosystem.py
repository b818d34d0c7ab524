"""The ecosystem's own tools on every registered id: Gymnasium's vector envs, pickling and
deep copies at any point (rendered or not), action masks, and SB3's checker (with the one
warning the public contract keeps, pinned here)."""

from __future__ import annotations

import copy
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest

import ld_envs

IDS = sorted(ld_envs.GAME_OF_ENV)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_runs_whole_games_with_autoreset(env_id, mode):
    """Several games in a vector env, played past their ends (autoreset), with one info
    type per key; pursuit's action mask comes through stacked per env."""
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode=mode)
    try:
        envs.action_space.seed(0)
        _, info = envs.reset(seed=0)
        ended = 0
        for _ in range(150):
            _, _, term, trunc, info = envs.step(envs.action_space.sample())
            ended += int(np.sum(term | trunc))
            if "action_mask" in info:
                assert info["action_mask"].shape == (3, 3, 14)
                assert info["action_mask"].dtype == np.int8
        assert ended > 0
    finally:
        envs.close()


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("render_mode", [None, "rgb_array", "ansi"])
def test_pickle_and_deepcopy_at_any_point(env_id, render_mode):
    """Before and after rendering, mid-episode: a copy goes on exactly as the original."""
    env = gym.make(env_id, render_mode=render_mode)
    env.reset(seed=3)
    env.action_space.seed(3)
    for step in range(6):
        if render_mode is not None and step % 2:
            env.render()
        for clone in (pickle.loads(pickle.dumps(env)), copy.deepcopy(env)):
            action = env.action_space.sample()
            a, b = copy.deepcopy(env).step(action), clone.step(action)
            assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
            assert a[1:4] == b[1:4]
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    if render_mode == "rgb_array":
        frame = pickle.loads(pickle.dumps(env)).render()
        assert frame.shape == env.render().shape


@pytest.mark.parametrize("env_id", IDS)
def test_every_env_offers_action_masks(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    mask = env.unwrapped.action_masks()
    space = env.action_space
    size = int(np.sum(space.nvec)) if hasattr(space, "nvec") else int(space.n)
    assert mask.dtype == np.int8 and mask.shape == (size,)
    assert mask.any()


#: SB3's checker recommends 1-D observation entries; the contract (SPEC section 6) fixes
#: pursuit's "pursuers" as (3, 2) rows A, B, C and its mask as (3, 14) per pursuer, which
#: every policy and prompt reads. SB3's own MultiInputPolicy flattens them, and
#: ld_agents.rl.features flattens them for our models. So these warnings stay, and only them.
CONTRACT_SHAPES = {"pursuers", "action_mask", "forbidden"}


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env_warns_only_about_the_contract_shapes(env_id):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make(env_id))
    for w in caught:
        text = str(w.message)
        assert "unconventional shape" in text, text
        assert text.split("observation ")[1].split(" has")[0] in CONTRACT_SHAPES, text


def test_sb3_check_env_with_rules_adds_only_the_forbidden_grid_image_advice():
    """With extra rules, the only further advice is about ``"forbidden"`` read as an image
    (dtype, bounds, resolution: docs/ecosystem.md); SB3 does not take it for one."""
    from stable_baselines3.common.env_checker import check_env
    from stable_baselines3.common.preprocessing import is_image_space

    env = gym.make("Pursuit-v0", rules=["wall"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    image = [str(w.message) for w in caught if "unconventional shape" not in str(w.message)]
    assert len(image) == 3
    assert all("image" in text for text in image)
    assert sum("forbidden" in text for text in image) == 2  # the third names no observation
    assert not is_image_space(env.observation_space["forbidden"])
