"""What a sweep's work is made of: a policy to run and a chunk of its episodes.

:class:`PolicySpec` names one policy of a sweep (registry name, keyword arguments, table
label); :class:`ChunkTask` names some episodes of one policy, the unit of work an executor
runs (:func:`benchmarks.rollout.run_chunk`). Both are plain JSON-able data, so they pickle
to worker processes and are recorded in the sweep's manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ld_envs.errors import InvalidArgument


def json_roundtrip(value: Any, what: str) -> Any:
    """``value`` as it reads back from JSON; raise :class:`InvalidArgument` if it cannot."""
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"{what} must be JSON data (str, number, bool, None, list, dict) so that the "
            f"sweep's manifest can record it; got {value!r} ({exc})"
        ) from None


@dataclass(frozen=True)
class PolicySpec:
    """One policy of a sweep: a registry name, its keyword arguments and a table label."""

    #: registry name passed to ``ld_agents.make`` (``scripted``, ``random``, ``raw``, ...)
    name: str
    #: keyword arguments for ``ld_agents.make`` (e.g. ``{"model": "hf:embedded"}``); JSON data
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: the name in results and tables; defaults to ``name`` (give one to run a policy twice)
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgument(f"PolicySpec.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.kwargs, Mapping):
            raise InvalidArgument(
                f"PolicySpec.kwargs must be a mapping of keyword arguments, got {self.kwargs!r}"
            )
        object.__setattr__(self, "kwargs", json_roundtrip(dict(self.kwargs), "policy kwargs"))
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if (
            not isinstance(self.label, str)
            or any(c in self.label for c in "\n\r,/\\\0")
            or self.label in (".", "..")
        ):
            raise InvalidArgument(
                f"PolicySpec.label must be a string without commas, slashes or line breaks "
                f"(it names files in the sweep's folder), got {self.label!r}"
            )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs), "label": self.label}


@dataclass(frozen=True)
class ChunkTask:
    """One unit of work: some episodes of one policy (picklable; runs anywhere)."""

    env_id: str
    env_kwargs: Mapping[str, Any]
    policy: PolicySpec
    seed: int
    chunk: int
    #: every episode index of the chunk (a batching policy plays them all)
    episodes: tuple[int, ...]
    #: the episodes whose records are wanted (the rest are already on disk)
    wanted: tuple[int, ...]
    commit: str
    #: (episode, outcome, steps, violations) of this chunk's episodes already on disk: a
    #: batching policy replays them, and the replay is checked against them
    recorded: tuple[tuple[Any, ...], ...] = ()
    #: where a batched chunk keeps its step journal (:mod:`benchmarks.journal`); ``None``:
    #: no journal, an interrupted chunk replays whole
    journal: str | None = None
