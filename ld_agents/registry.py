"""One lazy name registry, used for policies, LLM backends and command-line commands.

A :class:`Registry` maps names to objects (factories, modules). It fills itself on first
use, so that importing ld-gym stays light:

* ``modules``: modules imported on the first lookup, whose ``@registry.register(name)``
  decorators fill it. A module that needs a missing optional extra (one of ``optional``:
  top-level package names) is skipped and its names stay out, as a missing extra should;
  any other import error propagates;
* ``lazy``: ``name -> "package.module"`` or ``"package.module:attribute"``, imported only
  when that name is looked up. If importing the module registers the name, that entry is
  the value; otherwise the value is the module itself (or its attribute). So a backend
  module that registers its scheme and a command module that is its own value both fit::

      BACKENDS = Registry("model backend scheme", lazy={"hf": "ld_agents.llm.hf"})
      COMMANDS = Registry("command", lazy={"bench": "benchmarks.cli.bench"})
      COMMANDS.get("bench").run(args)      # imports benchmarks.cli.bench on first use

An unknown name fails with :class:`ld_envs.errors.UnknownName` naming the closest known
name and listing them all (``unknown policy 'optimla'; did you mean 'optimal'? known:
...``). Registering a name twice is refused, unless it is the same object or the same
definition run again (same module and qualified name: a reloaded module, a re-run cell).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any, Generic, TypeVar

from ld_envs.errors import InvalidArgument, unknown_name

T = TypeVar("T")


@cache
def import_modules(modules: tuple[str, ...], optional: frozenset[str]) -> None:
    """Import ``modules`` once per process; skip those whose missing dependency is optional."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # an optional extra is missing: its names stay out
            if exc.name is None or exc.name.split(".")[0] not in optional:
                raise


def _same_definition(a: object, b: object) -> bool:
    """Whether two objects are one definition (identical, or same module and qualname)."""
    if a is b:
        return True
    where = ("__module__", "__qualname__")
    ids = [tuple(getattr(x, attr, None) for attr in where) for x in (a, b)]
    return None not in ids[0] and ids[0] == ids[1]


class Registry(Generic[T]):
    """Names -> objects, filled lazily on first use (see the module docstring)."""

    def __init__(
        self,
        kind: str,
        *,
        modules: Iterable[str] = (),
        optional: Iterable[str] = (),
        lazy: Mapping[str, str] | None = None,
    ) -> None:
        #: what a name names, for error messages ("policy", "model backend scheme")
        self.kind = kind
        self._modules = tuple(modules)
        self._optional = frozenset(optional)
        self._lazy = dict(lazy or {})
        self._entries: dict[str, T] = {}

    # ------------------------------------------------------------------ filling
    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a different object already there is refused."""
        old = self._entries.get(name)
        if old is not None and not _same_definition(old, obj):
            raise InvalidArgument(
                f"{self.kind} {name!r} is already registered ({_describe(old)}); "
                f"refusing {_describe(obj)}: pick another name"
            )
        self._entries[name] = obj

    def remove(self, name: str) -> T | None:
        """Drop ``name`` (tests register temporary entries); return what it held, or None."""
        return self._entries.pop(name, None)

    def load(self) -> None:
        """Import the registry's modules (done by every lookup; cheap after the first)."""
        if self._modules:
            import_modules(self._modules, self._optional)

    # ------------------------------------------------------------------ lookup
    def get(self, name: str, *, kind: str | None = None) -> T:
        """The object registered as ``name`` (its lazy module imported first if need be).

        Unknown names raise :class:`UnknownName`; ``kind`` overrides what the message calls
        the name (e.g. ``"policy for Pursuit-v0"``).
        """
        self.load()
        if name not in self._entries and name in self._lazy:
            path, _, attr = self._lazy[name].partition(":")
            module = importlib.import_module(path)
            if name not in self._entries:  # the module is the value, not a registrant
                self._entries[name] = getattr(module, attr) if attr else module
        if name not in self._entries:
            raise unknown_name(kind or self.kind, name, self.names())
        return self._entries[name]

    def names(self, *, sort: bool = True) -> list[str]:
        """Every known name (lazy ones included, without importing them): sorted, or with
        ``sort=False`` in the order given (the lazy ones first, then as registered)."""
        self.load()
        ordered = list(dict.fromkeys([*self._lazy, *self._entries]))
        return sorted(ordered) if sort else ordered

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries or name in self._lazy

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} loaded, {len(self._lazy)} lazy)"


def _describe(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(obj)


__all__ = ["Registry", "import_modules", "unknown_name"]
