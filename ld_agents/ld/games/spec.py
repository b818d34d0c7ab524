"""The framework of a game's function-base vocabulary: value types, predicates, properties.

A function base (:mod:`ld_agents.ld.base`) is data a teacher writes; a :class:`GameSpec` is
the trusted project code that the loader, the validator, the ground-truth labeller and the
LD policy read it with (one per game: :mod:`ld_agents.ld.games.pursuit`,
:mod:`ld_agents.ld.games.twenty_one`). This module holds the types every game's table is
made of, :func:`split_property` and the predicates common to every game.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

State = dict[str, Any]
#: a check returns ``None`` when it holds, else what is wrong (one sentence)
Check = Callable[..., "str | None"]


@dataclass(frozen=True)
class ValueType:
    """A kind of value passed between stages."""

    name: str
    description: str
    check: Callable[[Any, State], str | None]
    sample: Callable[[State, np.random.Generator], Any]


@dataclass(frozen=True)
class Predicate:
    """A state condition a manual entry's ``right_when`` may name."""

    name: str
    description: str
    test: Callable[[State, Any], bool]


@dataclass(frozen=True)
class Property:
    """A claim a stage or function makes about its output, checkable on one call.

    ``params`` maps each parameter name to the values it may take (``None`` = any int).
    ``check(state, prev, out, **params)`` returns ``None`` or what is wrong.
    """

    name: str
    description: str
    check: Callable[..., str | None]
    params: Mapping[str, tuple[Any, ...] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class GameSpec:
    """Everything the project knows about one game's function bases."""

    name: str
    state_description: str
    check_state: Callable[[Any], str | None]
    sample_state: Callable[[np.random.Generator], State]
    types: Mapping[str, ValueType]
    predicates: Mapping[str, Predicate]
    properties: Mapping[str, Property]
    #: the type the last stage must produce
    decision_type: str
    #: turns the last stage's output into an env action (``None`` entries / unreadable
    #: decisions become the env's illegal choice where it has one)
    decision_to_action: Callable[[Any, State], Any]
    #: builds the state from an env observation (keyword context, e.g. ``size``)
    state_from_obs: Callable[..., State]
    #: the action used when a stage fails and the game has no illegal choice
    fallback_action: Callable[[State], Any]

    def property_problem(self, spec: Any) -> str | None:
        """Why a property reference (``"name"`` or ``{"name": ..., params}``) is invalid."""
        name, params = split_property(spec)
        if name not in self.properties:
            return f"unknown property {name!r}; known: {', '.join(sorted(self.properties))}"
        allowed = self.properties[name].params
        for key, value in params.items():
            if key not in allowed:
                return f"property {name!r} has no parameter {key!r}; it takes {sorted(allowed)}"
            choices = allowed[key]
            if choices is None:
                if not isinstance(value, int) or isinstance(value, bool):
                    return f"property {name!r} parameter {key!r} must be an int, got {value!r}"
            elif value not in choices:
                return (
                    f"property {name!r} parameter {key!r} must be one of {list(choices)}, "
                    f"got {value!r}"
                )
        missing = set(allowed) - set(params)
        if missing:
            return f"property {name!r} needs parameter(s) {sorted(missing)}"
        return None


def split_property(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{"name": "x", "k": v}`` -> ``("x", {"k": v})``."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    return repr(spec), {}


def _always(state: State, prev: Any) -> bool:
    return True


def _never(state: State, prev: Any) -> bool:
    return False


#: predicates every game's vocabulary includes
COMMON_PREDICATES: dict[str, Predicate] = {
    "always": Predicate("always", "the stage's function for every state", _always),
    "never": Predicate("never", "never the right choice in this game (a distractor)", _never),
}


def is_int(v: Any) -> bool:
    """An int that is not a bool (JSON integers as the checkers accept them)."""
    return isinstance(v, int) and not isinstance(v, bool)
