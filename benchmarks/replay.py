"""Checking a resumed batched chunk's replay against the records already on disk.

A batched chunk that resumes plays its episodes again, the finished ones included (the
policy's results depend on the chunk's make-up). :class:`ReplayCheck` compares each
replayed episode that is already on disk with its record (:func:`replay_fields`): a
difference means the policy or the numerics changed since it was written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from benchmarks.specs import ChunkTask

logger = logging.getLogger(__name__)


def replay_fields(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a replayed episode is checked on: (outcome, steps, violations) of its record."""
    return rec["outcome"], rec["steps"], rec["violations"]


class ReplayCheck:
    """Compares a resumed batched chunk's replay of episodes already on disk with their
    records (outcome, steps, violations): a difference means the policy or the numerics
    changed since they were written (another model, dtype or kernel). Differences are
    logged as warnings, the tally at the end of the chunk."""

    def __init__(self, task: ChunkTask) -> None:
        self.task = task
        self.recorded = {ep: (o, s, v) for ep, o, s, v in task.recorded}
        self.matched: list[int] = []
        self.differed: list[int] = []

    def check(self, rec: Mapping[str, Any]) -> bool | None:
        """Whether a replayed record matches the one on disk (``None``: none on disk)."""
        want = self.recorded.get(rec["episode"])
        if want is None:
            return None
        got = replay_fields(rec)
        (self.matched if got == want else self.differed).append(rec["episode"])
        if got != want:
            logger.warning(
                "%s chunk %d: replayed episode %d gave (outcome, steps, violations) %s, "
                "its record on disk says %s",
                self.task.policy.label,
                self.task.chunk,
                rec["episode"],
                got,
                want,
            )
        return got == want

    def report(self) -> None:
        if self.matched or self.differed:
            logger.info(
                "%s chunk %d: replayed %d episodes already on disk: %d match their records, "
                "%d differ",
                self.task.policy.label,
                self.task.chunk,
                len(self.matched) + len(self.differed),
                len(self.matched),
                len(self.differed),
            )
