"""Project exceptions.

Every error raised on bad input is an :class:`LdGymError` and also subclasses the builtin
that matches it, so ``except ValueError`` in user code keeps working. Messages say what
came, what was expected, and how to fix it.
"""

from __future__ import annotations


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


def unknown_name(kind: str, name: object, known: list[str] | tuple[str, ...]) -> UnknownName:
    """Build the standard "unknown X" error listing the known names."""
    return UnknownName(f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}")
