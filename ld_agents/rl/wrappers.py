"""Gymnasium wrappers of the RL baselines.

:class:`FeatureObservation` (the feature function of :mod:`ld_agents.rl.features` as an
``ObservationWrapper`` that also offers ``action_masks()`` for sb3-contrib),
:class:`PursuitShaping` (a difference-of-potentials reward term used in training only; the
env's own reward and outcome are never changed), :class:`AreaBlindMask` (the restricted
area left out of the mask, for the new-rule experiment) with its function
:func:`area_blind`, and :func:`action_masks_of` / :func:`game_of_env`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ld_agents.base import game_of
from ld_agents.rl.features import FEATURES, Obs
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import manhattan, pursuer_action_mask


class FeatureObservation(gym.ObservationWrapper):
    """Turn a game's ``Dict`` observation into the flat float32 vector the model reads.

    Pursuit: :func:`pursuit_features` (114 values); TwentyOne: :func:`twentyone_features`
    (21 values). ``action_masks()`` returns the mask of the wrapped env (pursuit: flattened
    (42,) int8; :class:`AreaBlindMask`'s when it is inside) or all ones when the game has
    none (TwentyOne: both moves are always legal), as sb3-contrib's ``MaskablePPO`` reads
    it through its ``VecEnv``.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.game = game_of_env(env)
        self.size = int(getattr(env.unwrapped, "size", 0))
        self._features, n = FEATURES[self.game]
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)

    def observation(self, observation: Obs) -> np.ndarray:
        return self._features(observation, self.size)

    def action_masks(self) -> np.ndarray:
        """The legal-action mask of the current state, flat int8 (sb3-contrib's format)."""
        return action_masks_of(self.env)


def action_masks_of(env: gym.Env) -> np.ndarray:
    """The mask of the outermost layer of ``env`` (a wrapper or the env) that defines
    ``action_masks()``, or all ones for an env without one."""
    layer: Any = env
    while True:
        if hasattr(type(layer), "action_masks"):
            return np.asarray(layer.action_masks(), dtype=np.int8)
        if not isinstance(layer, gym.Wrapper):
            break
        layer = layer.env
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        return np.ones(int(space.n), dtype=np.int8)
    if isinstance(space, spaces.MultiDiscrete):
        return np.ones(int(np.sum(space.nvec)), dtype=np.int8)
    raise InvalidArgument(f"no action mask for action space {space}")


def game_of_env(env: gym.Env) -> str:
    """``"pursuit"`` or ``"twentyone"`` for a (wrapped) ld-gym env."""
    spec = env.unwrapped.spec
    if spec is not None and spec.id is not None:
        try:
            return game_of(spec.id)
        except KeyError:
            pass
    name = type(env.unwrapped).__name__
    if name == "PursuitEnv":
        return "pursuit"
    if name == "TwentyOneEnv":
        return "twentyone"
    raise InvalidArgument(f"not an ld-gym env: {name} (spec {spec})")


def area_blind(obs: Obs, size: int, keep_area: bool = True) -> Obs:
    """``obs`` with the pursuers' mask recomputed as if there were no restricted area.

    The mask then still honours the board and the other pursuers
    (``pursuer_action_mask(..., area=None)``) but allows moves into the area, which the env
    rejects and counts as violations. ``keep_area=False`` also drops ``obs["restricted"]``
    (the view of a model that was never told about the area).
    """
    out = {k: v for k, v in obs.items() if keep_area or k != "restricted"}
    pursuers = [(int(p[0]), int(p[1])) for p in obs["pursuers"]]
    out["action_mask"] = pursuer_action_mask(pursuers, size, None)
    return out


class AreaBlindMask(gym.ObservationWrapper):
    """Pursuit with the restricted area left out of the legal-move mask (training option).

    The area's coordinates stay in the observation (so in the features), but its cells
    are not masked: a policy learns to avoid them only from the env's violation penalty
    and the episode it loses after 7 of them. ``RLConfig(mask_area=False)`` trains this
    way, and an ``rl`` policy whose saved config says so acts the same way.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.size = int(env.unwrapped.size)

    def observation(self, observation: Obs) -> Obs:
        return area_blind(observation, self.size)

    def action_masks(self) -> np.ndarray:
        """The mask without the area, flattened to (42,)."""
        base = self.env.unwrapped
        return pursuer_action_mask(base.pursuers, self.size, None).reshape(-1)


class PursuitShaping(gym.Wrapper):
    """Training-only reward shaping for pursuit: a difference-of-potentials term.

    ``reward' = reward + gamma * phi(s') - phi(s)`` with
    ``phi(s) = -coef * (sum_i d_i + max_i d_i) / size``, ``d_i`` the Manhattan distance of
    pursuer i to the evader, evaluated on the real next state at every step (the last one
    included, so ending an episode by violations never pays).

    ``gamma`` is the shaping's own discount. The default 1.0 makes the episode's shaping
    sum telescope to ``phi(s_T) - phi(s_0)``: it pays net approach only, and with the
    agent's discount < 1 it favours approaching early (what we want: capture fast).
    ``gamma`` equal to the agent's discount is Ng, Harada & Russell's (1999) exactly
    policy-invariant form, but with ``phi <= 0`` it also pays ``(1 - gamma) |phi|`` per step
    for staying far, which on this game made random wandering out-earn capturing
    (measured: 10.8 vs 4.3 per episode at gamma 0.97) and PPO never learned to close in.

    The env's reward, outcome and ``info`` are untouched; ``info["env_reward"]`` keeps
    the env's own reward and ``info["is_success"]`` (read by Stable-Baselines3's logger)
    is set at the end of an episode. Apply it outside :class:`FeatureObservation`.
    """

    def __init__(self, env: gym.Env, coef: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__(env)
        if coef < 0:
            raise InvalidArgument(f"shaping coef must be >= 0, got {coef}")
        if not 0 < gamma <= 1:
            raise InvalidArgument(f"shaping gamma must be in (0, 1], got {gamma}")
        self.coef = float(coef)
        self.gamma = float(gamma)
        self._phi = 0.0

    def _potential(self) -> float:
        base = self.env.unwrapped
        d = [manhattan(p, base.evader_cell) for p in base.pursuers]
        return -self.coef * (sum(d) + max(d)) / base.size

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._phi = self._potential()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        phi = self._potential()
        info = dict(info)
        info["env_reward"] = float(reward)
        shaped = float(reward) + self.gamma * phi - self._phi
        self._phi = phi
        if terminated or truncated:
            info["is_success"] = info.get("outcome") == "success"
        return obs, shaped, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Pass the wrapped env's mask through."""
        return action_masks_of(self.env)
