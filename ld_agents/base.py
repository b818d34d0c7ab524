"""The policy protocol every agent implements, and the registry that names them.

A policy maps an observation to an action. It owns its random generator (seeded through
``reset(seed=...)``) and never touches global random state. ``act_batch`` lets a rollout
step many episodes together so that LLM-backed policies can batch their model calls; the
default loops over ``act``.

Policies are named per game (``"pursuit"``, ``"twentyone"``) in lazy registries
(:class:`ld_agents.registry.Registry`): the modules in ``_BUILTIN_MODULES`` are imported on
the first lookup, and those needing a missing optional extra stay out.

Keywords. :func:`make` refuses a keyword the factory does not name
(:class:`~ld_envs.errors.UnknownKeyword`, with the closest one), so a typo never goes
unnoticed and a run records only what it used. A factory's ``**_`` takes nothing; a
factory with ``**kwargs`` under another name forwards them and checks them itself.
:func:`policy_keywords` says what a factory takes (the sweeps pass the board ``size``, the
``side`` and 21 points' ``opponent``/``open_cards`` only to factories that name them).

Observations. A policy given an observation it cannot read (another game's, or a
flattened one) raises :class:`~ld_envs.errors.InvalidObservation` saying which it got
and which it reads (:func:`ld_envs.errors.guard_observation` wraps every subclass's
``act`` and ``act_batch``; :func:`make` sets the policy's ``game``).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ld_agents.registry import Registry, unknown_name
from ld_envs.errors import (
    InvalidArgument,
    guard_observation,
    unknown_keyword,
)


def check_seed(seed: Any) -> int | None:
    """``seed`` as given when it is None or a non-negative int; else a clear error."""
    integer = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if seed is None or (integer and seed >= 0):
        return seed
    raise InvalidArgument(f"seed must be a non-negative int or None, got {seed!r}")


def check_count(what: str, value: Any, minimum: int = 1) -> int:
    """``value`` when it is an int >= ``minimum`` (a count: samples, boards, states,
    tokens; with ``minimum=0``, e.g. a seed in a list)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InvalidArgument(f"{what} must be an int >= {minimum}, got {value!r}")
    return int(value)


@runtime_checkable
class PolicyLike(Protocol):
    """Anything with ``act(obs)``: what the environments accept as an evader or opponent."""

    def act(self, obs: Any) -> Any: ...


class Policy:
    """Base class of ld-gym policies.

    Subclasses implement :meth:`act`; they may override :meth:`act_batch` to batch work
    across episodes and :meth:`reset` to clear per-episode state (call ``super().reset``).
    A batching policy whose actions are a function of the observation may add
    ``prime(observations)``: bring its caches to where ``act_batch(observations)`` would
    leave them, without deciding; a sweep then journals its batched chunks' steps and
    resumes an interrupted chunk at the step where it stopped (:mod:`benchmarks.journal`).
    """

    #: Short name used in tables (``make`` sets it to the registry name when left empty).
    name: str = ""
    #: the game whose observations it reads (``pursuit``, ``twentyone``; ``make`` sets it)
    game: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method, batch in (("act", False), ("act_batch", True)):
            if method in cls.__dict__:
                setattr(cls, method, guard_observation(batch=batch)(cls.__dict__[method]))

    def __init__(self, seed: int | None = None) -> None:
        self.np_random = np.random.default_rng(check_seed(seed))

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode; reseed the policy's own generator when ``seed`` is given."""
        if seed is not None:
            self.np_random = np.random.default_rng(check_seed(seed))

    def act(self, obs: Any) -> Any:
        """Return the action for one observation."""
        raise NotImplementedError

    def act_batch(self, observations: Sequence[Any]) -> list[Any]:
        """Return actions for several observations (of different episodes), in order."""
        return [self.act(obs) for obs in observations]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


#: a policy factory: ``factory(env_id=..., **kwargs) -> Policy``
PolicyFactory = Callable[..., Policy]

#: modules that register policies (add yours here); heavy extras are imported lazily
#: inside factories, or the module is skipped when an optional extra is missing
_BUILTIN_MODULES = (
    "ld_agents.baselines.pursuit",
    "ld_agents.raw",
    "ld_agents.rl.policy",
    "ld_agents.kd.policy",
    "ld_agents.baselines.twenty_one",
    "ld_agents.baselines.optimal",
    "ld_agents.ld.chain",
    "ld_agents.ld.policy",
)
_OPTIONAL_DEPS = {"torch", "transformers", "peft", "stable_baselines3", "sb3_contrib", "vllm"}

#: one registry per game family: the same name may mean a policy of each game
_POLICIES: dict[str, Registry[PolicyFactory]] = {
    game: Registry(f"{game} policy", modules=_BUILTIN_MODULES, optional=_OPTIONAL_DEPS)
    for game in ("pursuit", "twentyone")
}


def game_of(env_id: str) -> str:
    """Map an env id to its game family: ``"pursuit"`` or ``"twentyone"``."""
    from ld_envs import GAME_OF_ENV

    try:
        return GAME_OF_ENV[env_id]
    except KeyError:
        raise unknown_name("env id", env_id, list(GAME_OF_ENV)) from None


def _registry(game: str) -> Registry[PolicyFactory]:
    try:
        return _POLICIES[game]
    except KeyError:
        raise unknown_name("game", game, list(_POLICIES)) from None


def register(name: str, game: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Decorator registering a policy factory under ``name`` for ``game``.

    ``game`` is ``"pursuit"`` or ``"twentyone"``. The factory is called as
    ``factory(env_id=..., **kwargs)``. Another factory already registered under the same
    name for the same game is refused.
    """
    return _registry(game).register(name)


def known_policies(env_id: str | None = None) -> list[str]:
    """Names of registered policies (for one env id when given)."""
    if env_id is None:
        return sorted({n for registry in _POLICIES.values() for n in registry.names()})
    return _registry(game_of(env_id)).names()


def factory(name: str, env_id: str) -> PolicyFactory:
    """The factory registered as ``name`` for ``env_id``'s game (unknown names fail listing
    those known for that env, with the closest one)."""
    return _registry(game_of(env_id)).get(name, kind=f"policy for {env_id}")


def policy_keywords(name: str, env_id: str) -> frozenset[str] | None:
    """The keywords the factory of ``name`` takes (``env_id`` aside); ``None`` when it takes
    any (a ``**kwargs`` it forwards; a ``**_`` takes nothing)."""
    try:
        params = inspect.signature(factory(name, env_id)).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the factory decide
        return None
    if any(p.kind is p.VAR_KEYWORD and p.name != "_" for p in params):
        return None
    named = (p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return frozenset(named) - {"env_id"}


def check_policy_kwargs(name: str, env_id: str, kwargs: Mapping[str, Any]) -> None:
    """Refuse a keyword the factory of ``name`` does not take, naming the closest one
    (:class:`~ld_envs.errors.UnknownKeyword`); an unknown ``name`` fails first."""
    known = policy_keywords(name, env_id)
    if known is None:
        return
    for key in kwargs:
        if key not in known:
            raise unknown_keyword(f"policy {name!r} for {env_id}", key, sorted(known))


def make(name: str, env_id: str, **kwargs: Any) -> Policy:
    """Build the policy registered as ``name`` for ``env_id``.

    >>> make("scripted", "Pursuit-v0")          # doctest: +SKIP
    >>> make("optimal", "TwentyOne-v0", opponent="dealer", open_cards=False)  # doctest: +SKIP

    An unknown name fails listing the names known for that env, the closest one first; so
    does a keyword the policy does not take (``open_card=True`` -> ``open_cards``).
    """
    check_policy_kwargs(name, env_id, kwargs)
    policy = factory(name, env_id)(env_id=env_id, **kwargs)
    if not isinstance(policy, Policy):
        if not callable(getattr(policy, "act", None)):
            raise InvalidArgument(
                f"the factory of policy {name!r} for {env_id} returned {type(policy).__name__}, "
                "not a policy: return an ld_agents.Policy or any object with act(obs)"
            )
        if not callable(getattr(policy, "reset", None)) or not hasattr(policy, "name"):
            policy = ActPolicy(policy)  # what rollouts call besides act
    if not policy.name:
        policy.name = name
    if getattr(policy, "game", None) is None:
        with contextlib.suppress(AttributeError):  # a read-only or slotted object
            policy.game = game_of(env_id)
    return policy


class ActPolicy(Policy):
    """Any object with ``act(obs)`` as a :class:`Policy` (what :func:`make` returns for a
    factory that gives such an object without ``reset`` or ``name``): ``act_batch`` and
    ``reset(seed=...)`` go to the object's own when it has them."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        #: the wrapped object
        self.inner = inner
        self.name = str(getattr(inner, "name", "") or "")

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        inner_reset = getattr(self.inner, "reset", None)
        if callable(inner_reset):
            inner_reset(seed=seed)

    def act(self, obs: Any) -> Any:
        return self.inner.act(obs)

    def act_batch(self, observations: Sequence[Any]) -> list[Any]:
        batch = getattr(self.inner, "act_batch", None)
        if callable(batch):
            return list(batch(observations))
        return [self.inner.act(o) for o in observations]

    @property
    def batch_episodes(self) -> bool:
        """Whether sweeps step many episodes together through it: as the wrapped object
        says (its ``batch_episodes``), else when it has an ``act_batch`` of its own. An
        object with ``act`` alone plays one episode at a time, reset per episode, so its
        episodes do not depend on the sweep's chunks."""
        flag = getattr(self.inner, "batch_episodes", None)
        if isinstance(flag, bool):
            return flag
        return callable(getattr(self.inner, "act_batch", None))


def _load_builtin_policies() -> None:
    """Import the modules whose ``@register`` decorators fill the registry (once)."""
    for registry in _POLICIES.values():
        registry.load()
