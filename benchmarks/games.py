"""What a sweep needs to know about each game, and how it builds one episode's pieces.

:func:`game_hooks` gives a game family's :class:`GameHooks` (the env kwarg naming the other
side, its built-in names, the per-episode record fields). :func:`build_policy`,
:func:`build_env` and :func:`build_opponent` turn a sweep's policy spec and env kwargs into
the objects an episode is played with, the same way for the sweep, the figures and the
studies.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.specs import PolicySpec
from ld_envs.errors import InvalidArgument, unknown_name


@dataclass(frozen=True)
class GameHooks:
    """What a sweep needs to know about one game family."""

    #: env kwarg naming the other side (pursuit: ``evader``; 21 points: ``opponent``)
    opponent_key: str
    #: names the env builds itself
    builtin_opponents: tuple[str, ...]
    #: kwargs for ``ld_agents.make`` when a registered policy plays the other side
    opponent_make_kwargs: Mapping[str, Any]
    #: env kwargs that are also passed to every policy factory that accepts them
    shared_kwargs: tuple[str, ...]
    #: extra fields of an episode record, read from the unwrapped env after reset
    start_fields: Callable[[Any], dict[str, Any]]
    #: ``info`` keys copied into the record at the episode's end
    info_fields: tuple[str, ...] = ()

    @property
    def opponent_kwargs_key(self) -> str:
        return f"{self.opponent_key}_kwargs"

    def check_env_kwargs(self, env_id: str, env_kwargs: dict[str, Any]) -> None:
        from ld_agents.base import known_policies

        opponent = env_kwargs.get(self.opponent_key)
        if opponent is not None:
            if not isinstance(opponent, str):
                raise InvalidArgument(
                    f"env kwarg {self.opponent_key!r} must be a name in a sweep, got {opponent!r}"
                )
            known = sorted({*self.builtin_opponents, *known_policies(env_id)})
            if opponent not in known:
                raise unknown_name(self.opponent_key, opponent, known)
        extra = env_kwargs.get(self.opponent_kwargs_key)
        if extra is not None and not isinstance(extra, dict):
            raise InvalidArgument(f"env kwarg {self.opponent_kwargs_key!r} must be a JSON object")
        if extra and (opponent is None or opponent in self.builtin_opponents):
            raise InvalidArgument(
                f"{self.opponent_kwargs_key} is only used when {self.opponent_key} names a "
                f"registered policy (not a built-in: {', '.join(self.builtin_opponents)})"
            )


def _pursuit_start(env: Any) -> dict[str, Any]:
    from ld_envs.pursuit import steps_lower_bound

    return {
        "start": {
            "pursuers": [list(p) for p in env.pursuers],
            "evader": list(env.evader_cell),
            "restricted": None if env.area is None else list(env.area),
        },
        "steps_lower_bound": steps_lower_bound(env.pursuers, env.evader_cell),
    }


def _twentyone_start(env: Any) -> dict[str, Any]:
    from ld_envs.twenty_one import card_name

    return {
        "start": {
            "agent": [card_name(c) for c in env.agent_cards],
            "opponent": [card_name(c) for c in env.opponent_cards],
        }
    }


_HOOKS: dict[str, GameHooks] = {
    "pursuit": GameHooks(
        opponent_key="evader",
        builtin_opponents=("greedy", "random"),
        opponent_make_kwargs={"side": "evader"},
        shared_kwargs=("size",),
        start_fields=_pursuit_start,
        info_fields=("evader_violations",),
    ),
    "twentyone": GameHooks(
        opponent_key="opponent",
        builtin_opponents=("dealer", "random"),
        opponent_make_kwargs={},  # 21-point players see their own side's observation
        shared_kwargs=("opponent", "open_cards"),
        start_fields=_twentyone_start,
        info_fields=("agent_total", "opponent_total", "opponent_invalid"),
    ),
}


def game_hooks(env_id: str) -> GameHooks:
    from ld_agents.base import game_of

    return _HOOKS[game_of(env_id)]


def _accepts(factory: Callable[..., Any], key: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def policy_factory(name: str, env_id: str) -> Callable[..., Any]:
    """The factory registered for policy ``name`` in ``env_id``'s game."""
    from ld_agents import base

    base._load_builtin_policies()
    return base._REGISTRY[name][base.game_of(env_id)]


def build_policy(spec: PolicySpec, env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """``ld_agents.make`` with the spec's kwargs, plus env kwargs the policy must share.

    Pursuit policies get the board ``size``; 21-point policies the ``opponent`` (when a
    built-in name) and ``open_cards``, so that e.g. the exact optimum answers the opponent
    the env plays. The spec's own kwargs win.
    """
    from ld_agents.base import make

    hooks = game_hooks(env_id)
    factory = policy_factory(spec.name, env_id)
    kwargs: dict[str, Any] = {}
    for key in hooks.shared_kwargs:
        if key not in env_kwargs:
            continue
        value = env_kwargs[key]
        if key == hooks.opponent_key and value not in hooks.builtin_opponents:
            continue
        params = inspect.signature(factory).parameters
        if key in params:  # only factories that name the argument (not a catch-all **kwargs)
            kwargs[key] = value
    kwargs.update(spec.kwargs)
    policy = make(spec.name, env_id, **kwargs)
    if spec.label != spec.name and getattr(policy, "name", spec.name) == spec.name:
        with contextlib.suppress(AttributeError):
            policy.name = spec.label
    return policy


def build_env(
    env_id: str, env_kwargs: Mapping[str, Any], opponent: Any = None, **extra: Any
) -> Any:
    """``gym.make`` for a sweep: sweep-only kwargs removed, a prepared opponent put in."""
    import gymnasium as gym

    import ld_envs  # noqa: F401  (registers the ids)

    hooks = game_hooks(env_id)
    kwargs = {k: v for k, v in env_kwargs.items() if k != hooks.opponent_kwargs_key}
    if opponent is not None:
        kwargs[hooks.opponent_key] = opponent
    try:
        return gym.make(env_id, **kwargs, **extra)
    except TypeError as exc:
        raise InvalidArgument(
            f"{env_id} rejected the env kwargs {dict(env_kwargs)}: {exc}"
        ) from None


def build_opponent(env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """The registered policy named as the other side, or ``None`` for a built-in."""
    from ld_agents.base import make

    hooks = game_hooks(env_id)
    name = env_kwargs.get(hooks.opponent_key)
    if name is None or name in hooks.builtin_opponents:
        return None
    kwargs = dict(hooks.opponent_make_kwargs)
    factory = policy_factory(name, env_id)
    for key in hooks.shared_kwargs:
        if key in env_kwargs and key != hooks.opponent_key and _accepts(factory, key):
            kwargs[key] = env_kwargs[key]
    kwargs.update(env_kwargs.get(hooks.opponent_kwargs_key) or {})
    return make(name, env_id, **kwargs)
