"""The step journal of a batched chunk: what each step decided, so that an interrupted
chunk resumes at the step where it stopped instead of playing again from its first step.

A batched chunk's numbers depend on which episodes share each model call, so a resumed
chunk must rebuild the same batches. Without a journal it replays the whole chunk, every
step asked again (hours for an LLM on both sides on a CPU). With one, every finished step
appends a line: the running episodes, the agent's actions, the other side's answers (one
list per round), and the cost, policy summary and wall times of the lanes after it. On
resume the recorded steps are replayed on the environments alone: the actions go to
``env.step``, the other side answers from the journal, and the policies only ``prime``
their caches (an LLM backend's prefix store), so the first live step sees the caches it
would have seen. A policy (or other side) without ``prime`` gets no journal: its chunk
replays whole, as before.

The file (``<sweep>/journal/<label>-chunk<k>.jsonl``) starts with a header naming the task;
a journal whose header differs (another seed, policy, env or episodes) is set aside and the
chunk starts over; the commit may differ (as for a replayed chunk, the records say which
code wrote them). A torn last line is dropped. The file is removed when the chunk ends.
Lines are whole and appended like the episode records, with the same batched ``fsync``
(:mod:`benchmarks.results_io`): after ``kill -9`` every written step is there.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.results_io import RecordWriter, encode_record, write_bytes_atomic

logger = logging.getLogger(__name__)

JOURNAL_VERSION = 1


def encode_value(value: Any) -> Any:
    """An action or answer as JSON (arrays keep their dtype, numpy scalars become numbers)."""
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
        return np.asarray(value["ndarray"], dtype=value["dtype"])
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


class StepJournal:
    """The recorded steps of one chunk (``steps``) and the writer of the next ones."""

    def __init__(self, path: Path | str, header: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.header = {"journal": JOURNAL_VERSION, **json.loads(json.dumps(dict(header)))}
        self.steps = self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        blob = encode_record(self.header) + b"".join(encode_record(s) for s in self.steps)
        write_bytes_atomic(self.path, blob)  # drops a torn line or a stale journal
        self._writer: RecordWriter | None = RecordWriter(self.path)

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")[:-1]  # a torn last line has no newline
        try:
            header = json.loads(lines[0]) if lines else None
            steps = [json.loads(line) for line in lines[1:]]
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            logger.warning("%s: unreadable (%s); the chunk starts over", self.path, exc)
            return []
        if header != self.header:
            logger.warning("%s belongs to another run of this chunk; it starts over", self.path)
            return []
        if any(s.get("step") != i for i, s in enumerate(steps)):
            logger.warning("%s: steps out of order; the chunk starts over", self.path)
            return []
        return steps

    def append(self, entry: Mapping[str, Any]) -> None:
        """Write one finished step (a whole line; fsynced in batches)."""
        if self._writer is None:
            raise ValueError(f"journal {self.path} is closed")
        self._writer.append([entry])

    def close(self, remove: bool = False) -> None:
        """Close the file; ``remove`` deletes it, and its folder once empty (the chunk ended)."""
        if self._writer is not None:
            self._writer.close(sync=not remove)  # no fsync for a file about to go
            self._writer = None
        if remove:
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # other chunks' journals may still be there
                self.path.parent.rmdir()


def journal_header(task: Any) -> dict[str, Any]:
    """What a journal must match to be replayed: the task's identity and code."""
    return {
        "env_id": task.env_id,
        "env_kwargs": task.env_kwargs,
        "policy": task.policy.to_json(),
        "seed": task.seed,
        "chunk": task.chunk,
        "episodes": list(task.episodes),
    }


def can_prime(policy: Any) -> bool:
    """Whether a policy can rebuild its caches without deciding (see the module docstring)."""
    return callable(getattr(policy, "prime", None))


def step_entry(
    step: int,
    episodes: Sequence[int],
    actions: Sequence[Any],
    rounds: Sequence[Sequence[Any]],
    totals: Sequence[tuple[float, Mapping[str, float], Mapping[str, Any]]],
) -> dict[str, Any]:
    """One journal line: the step's decisions and each lane's running totals after it,
    ``(wall seconds, cost, JSON-ready summary)`` per running episode."""
    return {
        "step": step,
        "episodes": list(episodes),
        "actions": encode_value(list(actions)),
        "rounds": encode_value([list(r) for r in rounds]),
        "wall": [t[0] for t in totals],
        "cost": [dict(t[1]) for t in totals],
        "summary": [dict(t[2]) for t in totals],
    }
