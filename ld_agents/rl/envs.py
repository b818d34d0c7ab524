"""The training envs of a MaskablePPO run: one env, and the vector of them.

:func:`make_env` stacks ``gym.make``, the feature wrapper of :mod:`ld_agents.rl.wrappers`,
Stable-Baselines3's ``Monitor`` and the training-only shaping wrapper;
:func:`make_vec_env` puts ``config.n_envs`` of them in a ``DummyVecEnv`` or
``SubprocVecEnv``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from ld_agents.base import game_of
from ld_agents.rl.config import RLConfig
from ld_agents.rl.wrappers import (
    AreaBlindMask,
    FeatureObservation,
    PursuitShaping,
    action_masks_of,
)
from ld_envs.errors import InvalidArgument, LdGymError


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    shaping_coef: float = 0.0,
    shaping_gamma: float = 1.0,
    mask_area: bool = True,
) -> gym.Env:
    """One training env: ``gym.make`` -> (:class:`AreaBlindMask` when ``mask_area`` is
    False) -> :class:`FeatureObservation` -> ``Monitor`` -> :class:`PursuitShaping`
    (pursuit; a ``shaping_coef`` of 0 adds nothing but ``info["is_success"]``).

    ``Monitor`` sits inside the shaping, so the logged episode returns are the env's own.
    """
    from stable_baselines3.common.monitor import Monitor

    env: gym.Env = gym.make(env_id, **env_kwargs)
    if not mask_area and game_of(env_id) == "pursuit":
        env = AreaBlindMask(env)
    env = FeatureObservation(env)
    env = Monitor(env)
    if game_of(env_id) == "pursuit":
        # always add it (coef 0 = no change) so info["is_success"] is logged
        env = PursuitShaping(env, coef=shaping_coef, gamma=shaping_gamma)
    else:
        env = _SuccessInfo(env)
    return env


class _SuccessInfo(gym.Wrapper):
    """Sets ``info["is_success"]`` (a win) at the end of a TwentyOne episode."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = dict(info)
            info["is_success"] = float(reward) > 0
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Pass the wrapped env's mask through."""
        return action_masks_of(self.env)


def _env_fn(config: RLConfig) -> gym.Env:
    return make_env(
        config.env_id,
        config.env_kwargs,
        config.shaping_coef,
        config.shaping_gamma,
        config.mask_area,
    )


def check_env(config: RLConfig) -> tuple[Any, Any]:
    """Build (and close) one training env of ``config``; return its (observation, action)
    spaces. ``env_kwargs`` the env does not take, or values it refuses, raise
    :class:`InvalidArgument` naming them (before any file of a run is written)."""
    if config.game != "pursuit":
        defaults = {f.name: f.default for f in dataclasses.fields(RLConfig)}
        # PursuitShaping / AreaBlindMask wrap pursuit only: a changed value would be ignored
        changed = [
            n
            for n in ("shaping_coef", "shaping_gamma", "mask_area")
            if getattr(config, n) != defaults[n]
        ]
        if changed:
            raise InvalidArgument(
                f"{', '.join(changed)}: pursuit only, not used by {config.env_id}"
            )
    try:
        env = _env_fn(config)
    except LdGymError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"env_kwargs {config.env_kwargs!r} do not suit {config.env_id}: {exc}"
        ) from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def make_vec_env(config: RLConfig) -> Any:
    """``config.n_envs`` training envs in a ``DummyVecEnv`` or ``SubprocVecEnv``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns: list[Callable[[], gym.Env]] = [
        functools.partial(_env_fn, config) for _ in range(config.n_envs)
    ]
    vec = DummyVecEnv(fns) if config.vec_env == "dummy" else SubprocVecEnv(fns)
    vec.seed(config.seed)
    return vec
