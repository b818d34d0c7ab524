"""ld-gym environments: the games and their rules. Importing this package registers the ids.

- ``pursuit``: the pursuit game's rules (pure functions), built-in evaders and
  ``PursuitEnv`` (``Pursuit-v0``, ``PursuitRestricted-v0``).
- ``pursuit_parallel``: the same game as a PettingZoo ``ParallelEnv``, a thin adapter
  over ``PursuitEnv`` (pursuers and evader as agents).
- ``pursuit_render``: pygame frames and the text board of a pursuit game.
- ``twenty_one``: the 21-points game's rules, built-in opponents and ``TwentyOneEnv``
  (``TwentyOne-v0``).
- ``twenty_one_render``: pygame frames and the text table of a 21-points game.
- ``errors``: the project's input errors (``InvalidArgument``, ``InvalidAction``, ...).

>>> import gymnasium as gym, ld_envs
>>> env = gym.make("Pursuit-v0")                      # doctest: +SKIP
>>> env = gym.make("PursuitRestricted-v0")            # doctest: +SKIP
>>> env = gym.make("TwentyOne-v0", opponent="dealer") # doctest: +SKIP
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

#: env id -> game family, used by policies and sweeps
GAME_OF_ENV: dict[str, str] = {
    "Pursuit-v0": "pursuit",
    "PursuitRestricted-v0": "pursuit",
    "TwentyOne-v0": "twentyone",
}

_ENTRY_POINTS = {
    "Pursuit-v0": ("ld_envs.pursuit:PursuitEnv", {}),
    "PursuitRestricted-v0": ("ld_envs.pursuit:PursuitEnv", {"restricted": "random"}),
    "TwentyOne-v0": ("ld_envs.twenty_one:TwentyOneEnv", {}),
}

for _env_id, (_entry, _kwargs) in _ENTRY_POINTS.items():
    if _env_id not in registry:
        # The env enforces its own 100-step limit (outcome "failure_without_violation"),
        # so no TimeLimit wrapper is added.
        register(id=_env_id, entry_point=_entry, kwargs=_kwargs)

__all__ = ["GAME_OF_ENV"]
