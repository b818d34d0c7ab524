"""Project exceptions.

Every error raised on bad input is an :class:`LdGymError` and also subclasses the builtin
that matches it, so ``except ValueError`` in user code keeps working. Messages say what
came, what was expected, and how to fix it.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class LdGymError(Exception):
    """Base class of every ld-gym error."""


class InvalidArgument(LdGymError, ValueError):
    """A constructor or function argument is out of its allowed range."""


class InvalidAction(LdGymError, ValueError):
    """An action does not fit the environment's action space (shape or type)."""


class InvalidStart(LdGymError, ValueError):
    """A start position given to ``reset(options=...)`` breaks the game's rules."""


class UnknownName(LdGymError, KeyError):
    """A name (policy, backend, preset, evader, opponent) is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownKeyword(UnknownName, TypeError):
    """A keyword argument (of a policy, an env, a command) is not one the callee takes."""


class InvalidObservation(LdGymError, ValueError):
    """A policy was given an observation it cannot read (another game's, or not a dict)."""


class OutputExists(LdGymError, FileExistsError):
    """A command would replace a file it did not make (pass ``--overwrite`` to allow it)."""


def close_match(name: object, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (a likely typo), or ``None`` when none is close;
    a known name with the same letters (two swapped: ``sied`` -> ``side``) comes first."""
    found = difflib.get_close_matches(str(name), list(known), n=3)
    swapped = [f for f in found if sorted(f) == sorted(str(name))]
    return (swapped or found or [None])[0]


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` with the known name closest to ``name``, else ``";"``."""
    close = close_match(name, known)
    return f"; did you mean {close!r}?" if close else ";"


def unknown_name(
    kind: str, name: object, known: Iterable[str], cls: type[UnknownName] = UnknownName
) -> UnknownName:
    """The "unknown X" error: the closest known name (when one is close) and all of them
    (``unknown policy 'optimla'; did you mean 'optimal'? known: ...``)."""
    known = sorted(known)
    hint = did_you_mean(name, known)
    return cls(f"unknown {kind} {name!r}{hint} known: {', '.join(known) or '(none)'}")


def unknown_keyword(
    where: str, key: object, known: Iterable[str], noun: str = "keyword"
) -> UnknownKeyword:
    """The "takes no keyword" error: ``{where} takes no {noun} 'kye'; did you mean 'key'?
    it takes: ...`` (``known`` in its order)."""
    known = list(known)
    hint = did_you_mean(key, known)
    return UnknownKeyword(
        f"{where} takes no {noun} {key!r}{hint} it takes: {', '.join(known) or 'none'}"
    )


#: the message of a step or an action mask asked for before a reset has finished
NOT_STARTED = "call reset() first: the env has no state yet (or its last reset failed)"


# ---------------------------------------------------------------------------- observations

#: keys every observation of a game holds, to tell the games apart in messages
OBSERVATION_KEYS: dict[str, frozenset[str]] = {
    "pursuit": frozenset({"pursuers", "evader", "action_mask"}),
    "twentyone": frozenset({"own", "opponent", "stood", "deck_left"}),
}
_ENV_NAMES = {"pursuit": "Pursuit-v0", "twentyone": "TwentyOne-v0"}


def observation_game(obs: object) -> str | None:
    """The game whose observation ``obs`` is (``pursuit``, ``twentyone``), or ``None``."""
    if isinstance(obs, Mapping):
        for game, keys in OBSERVATION_KEYS.items():
            if keys <= obs.keys():
                return game
    return None


def observation_problem(obs: object, game: str | None) -> str | None:
    """Why ``obs`` cannot be an observation of ``game`` (any game when ``None``), or None."""
    found = observation_game(obs)
    if found is not None and (game is None or found == game):
        return None
    wanted = (
        f"{_ENV_NAMES[game]} observations (a dict with {', '.join(sorted(OBSERVATION_KEYS[game]))})"
        if game in OBSERVATION_KEYS
        else "the dict observation of an ld-gym env"
    )
    if found is not None:
        got = f"a {_ENV_NAMES[found]} observation"
        env = _ENV_NAMES[found]
        fix = f"make the policy for the env that gave it, e.g. ld_agents.make(NAME, {env!r})"
    elif isinstance(obs, Mapping):
        got = f"a dict with keys {sorted(map(str, obs))}"
        fix = "pass the observation that env.reset() / env.step() returned, unwrapped"
    else:
        got = f"a {type(obs).__name__}"
        fix = "pass the dict that env.reset() / env.step() returned (no flattening wrapper)"
    return f"reads {wanted}, got {got}; {fix}"


def guard_observation(game: str | None = None, *, batch: bool = False) -> Callable[[F], F]:
    """Decorator for ``act(self, obs)`` (``batch``: ``act_batch(self, observations)``).

    An error raised while reading an observation that is not ``game``'s (``None``: the
    instance's ``game`` attribute, when set) becomes :class:`InvalidObservation`
    naming what came and what was expected. The happy path costs nothing: the observation
    is examined only after the method failed.
    """

    def deco(method: F) -> F:
        if getattr(method, "_guards_observation", False):
            return method

        @functools.wraps(method)
        def wrapper(self: Any, obs: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, obs, *args, **kwargs)
            except LdGymError:
                raise
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
                expected = game or getattr(self, "game", None)
                items = list(obs) if batch and isinstance(obs, (list, tuple)) else [obs]
                for item in items:
                    problem = observation_problem(item, expected)
                    if problem is not None:
                        where = f"{type(self).__name__}.{method.__name__}()"
                        raise InvalidObservation(f"{where} {problem}") from exc
                raise

        wrapper._guards_observation = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco
