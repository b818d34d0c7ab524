"""The on-disk form of a sweep: an append-only ``episodes.jsonl`` and a ``sweep.json`` manifest.

Durability rules (what makes resume safe):

* every finished episode is one JSON line; lines are appended with a single ``os.write`` of
  whole lines on an ``O_APPEND`` descriptor, as each episode ends (never buffered in the
  process); a crash can therefore tear at most the last line, never interleave or
  half-write an earlier one;
* the ``fsync`` is batched (:class:`RecordWriter`): a line is forced to the disk once
  ``sync_every`` lines (256) are waiting, at most ``sync_after`` seconds (1 s) after it was
  written, and when the writer closes (the sweep ends, fails or is stopped with Ctrl-C);
* on load, a torn last line (no trailing newline) is cut off the file, so its episode runs
  again and is appended cleanly;
* a corrupt line anywhere else (not JSON, or missing a field) is reported with its line
  number and skipped; every other line is kept; a repeated (policy, episode) keeps the
  first line;
* the manifest is written to a temporary file in the same folder, fsynced, and moved over
  the old one with ``os.replace`` (atomic on POSIX).

What the no-loss promise means: a line that ``os.write`` returned for is in the kernel's
page cache, and the file holds it for every later reader even if the process dies at once
(``kill -9``, an out-of-memory kill, a crash of Python): the kernel writes it to the disk
on its own. A resumed sweep reads what the file holds, so after ``kill -9`` nothing is lost
and nothing runs twice, fsynced or not. The ``fsync`` only guards against the machine
itself going down (power, kernel panic) before the kernel wrote the pages: then at most the
lines of the last second (or the last 256) can be missing, and those episodes run again on
resume, once each. Fsyncing every line cost more than the env loop of a fast sweep (a 3 ms
``fsync`` against 3 ms episodes, ``benchmarks.studies.sweep_overhead``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.files import git_commit, write_bytes_atomic, write_json_atomic, write_text_atomic
from ld_envs.errors import LdGymError

logger = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
MANIFEST_FILE = "sweep.json"

#: fields every episode line must hold (others are free: start, summary, ...)
__all__ = [
    "EPISODES_FILE",
    "MANIFEST_FIELDS",
    "MANIFEST_FILE",
    "SYNC_AFTER",
    "SYNC_EVERY",
    "RecordWriter",
    "SweepMismatch",
    "git_commit",
    "manifest_problem",
    "not_a_sweep_record",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


class SweepMismatch(LdGymError, ValueError):
    """An output folder holds another sweep's episodes (or is not a sweep at all)."""


REQUIRED_FIELDS = ("policy", "episode", "env_seed", "outcome", "steps", "violations", "reward")


@dataclass
class LoadReport:
    """What :func:`load_records` found besides the good records."""

    #: (1-based line number, reason) of each corrupt line that was skipped
    corrupt: list[tuple[int, str]] = field(default_factory=list)
    #: bytes of a torn last line that were cut off the file (0 when none)
    torn_bytes: int = 0
    #: (line number, policy, episode) of repeated lines that were ignored
    duplicates: list[tuple[int, str, int]] = field(default_factory=list)

    def messages(self, path: Path | str) -> list[str]:
        """Human-readable warnings, one per problem."""
        out = [
            f"{path}: line {n} is corrupt ({why}); skipped, every other line kept"
            for n, why in self.corrupt
        ]
        out += [
            f"{path}: line {n} repeats policy {p!r} episode {e}; the first line is kept"
            for n, p, e in self.duplicates
        ]
        if self.torn_bytes:
            out.append(
                f"{path}: the last line was torn ({self.torn_bytes} bytes without a newline, "
                f"an interrupted write); it was dropped and its episode will run again"
            )
        return out


def _check_record(obj: Any) -> str | None:
    """Why a parsed line is not a valid episode record (``None`` when it is)."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    missing = [k for k in REQUIRED_FIELDS if k not in obj]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if not isinstance(obj["policy"], str):
        return "field 'policy' is not a string"
    if not isinstance(obj["episode"], int) or isinstance(obj["episode"], bool):
        return "field 'episode' is not an integer"
    return None


def load_records(path: Path | str, repair: bool = True) -> tuple[list[dict[str, Any]], LoadReport]:
    """Read every valid episode record of a results file, in file order.

    With ``repair`` a torn last line is truncated away on disk (so that later appends
    start on a fresh line). Problems are returned in the :class:`LoadReport` and logged as
    warnings; they never raise.
    """
    path = Path(path)
    report = LoadReport()
    if not path.exists():
        return [], report
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        report.torn_bytes = len(data) - cut
        data = data[:cut]
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(cut)
                fh.flush()
                os.fsync(fh.fileno())
    records: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for lineno, raw in enumerate(data.split(b"\n")[:-1], start=1):
        if not raw.strip():
            report.corrupt.append((lineno, "empty line"))
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            report.corrupt.append((lineno, f"not JSON: {exc}"))
            continue
        why = _check_record(obj)
        if why is not None:
            report.corrupt.append((lineno, why))
            continue
        key = (obj["policy"], obj["episode"])
        if key in seen:
            report.duplicates.append((lineno, *key))
            continue
        seen.add(key)
        records.append(obj)
    for message in report.messages(path):
        logger.warning(message)
    return records, report


#: fsync once this many lines wait unsynced (see the module docstring)
SYNC_EVERY = 256
#: ... or this many seconds after the first unsynced line was written
SYNC_AFTER = 1.0


class RecordWriter:
    """Appends records to a file as whole lines, one ``os.write`` per call, with a batched
    ``fsync``: after ``sync_every`` unsynced lines, ``sync_after`` seconds after the first
    unsynced line (a timer thread), on :meth:`sync` and on :meth:`close`.

    ``sync_every=1`` fsyncs every call (the old behaviour, kept for comparison).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        sync_every: int = SYNC_EVERY,
        sync_after: float = SYNC_AFTER,
    ) -> None:
        if sync_every < 1 or not sync_after > 0:
            raise ValueError(
                f"sync_every must be >= 1 and sync_after > 0, got {sync_every}, {sync_after}"
            )
        self.path = Path(path)
        self.sync_every = sync_every
        self.sync_after = sync_after
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        #: seconds spent in fsync, and how many fsyncs there were
        self.sync_seconds = 0.0
        self.syncs = 0
        self._unsynced = 0
        self._lock = threading.Lock()  # the timer's fsync against append and close
        self._timer: threading.Timer | None = None  # the pending one
        self._threads: list[threading.Timer] = []  # every one started (joined at close)

    def append(self, records: Iterable[Mapping[str, Any]], *, sync: bool = False) -> None:
        """Write the records as whole lines with one ``os.write``; fsync when one is due
        (or now, with ``sync``)."""
        blob = b"".join(encode_record(r) for r in records)
        with self._lock:
            if self._fd is None:
                raise ValueError(f"RecordWriter for {self.path} is closed")
            if not blob:
                return
            view = memoryview(blob)
            while view:  # a regular file takes it in one call; loop for the contract's sake
                written = os.write(self._fd, view)
                view = view[written:]
            self._unsynced += blob.count(b"\n")
            if sync or self._unsynced >= self.sync_every:
                self._sync_locked()
            elif self._timer is None:
                self._timer = threading.Timer(self.sync_after, self._sync_on_timer)
                self._timer.daemon = True  # never holds the interpreter's exit
                self._timer.start()
                self._threads = [t for t in self._threads if t.is_alive()] + [self._timer]

    def sync(self) -> None:
        """Fsync the lines written so far (nothing to do when none waits)."""
        with self._lock:
            if self._fd is not None:
                self._sync_locked()

    def _sync_on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._fd is not None:
                self._sync_locked()

    def _sync_locked(self) -> None:
        if not self._unsynced:
            return
        t0 = time.perf_counter()
        os.fsync(self._fd)  # type: ignore[arg-type]  # callers checked it is open
        self.sync_seconds += time.perf_counter() - t0
        self.syncs += 1
        self._unsynced = 0

    def close(self, *, sync: bool = True) -> None:
        """Fsync what waits (unless ``sync=False``: a file about to be deleted) and close
        the file (safe to call twice)."""
        with self._lock:
            self._timer = None
            threads, self._threads = self._threads, []
            if self._fd is not None:
                if sync:
                    self._sync_locked()
                os.close(self._fd)
                self._fd = None
        for timer in threads:  # no timer thread outlives the writer
            timer.cancel()
            timer.join()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as a compact JSON line (keys sorted, newline-terminated)."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if "\n" in line:  # json.dumps escapes newlines in strings; this guards the invariant
        raise AssertionError("an encoded record contains a newline")
    return line.encode() + b"\n"


def read_manifest(folder: Path | str) -> dict[str, Any] | None:
    """The folder's ``sweep.json`` (``None`` when there is none)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SweepMismatch(
            f"{path} is not valid JSON ({exc}); it is not an ld-gym sweep manifest. Use "
            f"another --out folder, or delete the file if the folder is yours to reuse"
        ) from exc
    if not isinstance(obj, dict):
        raise SweepMismatch(f"{path} does not hold a sweep manifest (a JSON object)")
    return obj


#: what every sweep record of this tool holds (``benchmarks.sweep`` writes them)
MANIFEST_FIELDS = ("version", "env_id", "env_kwargs", "seed", "episodes", "policies")


def manifest_problem(folder: Path | str) -> str | None:
    """Why the folder's ``sweep.json`` is not a sweep record of ld-gym (not JSON, not an
    object, fields missing), or ``None``: it is one, or there is none."""
    path = Path(folder) / MANIFEST_FILE
    if not path.exists():
        return None
    if not path.is_file():
        return "it is not a file"
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"it is not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return f"it holds a JSON {type(obj).__name__}, not an object"
    missing = [k for k in MANIFEST_FIELDS if k not in obj]
    policies = obj.get("policies")
    if missing:
        return f"it has no {', '.join(missing)}"
    if not isinstance(policies, list) or not all(
        isinstance(p, dict) and "name" in p and "label" in p for p in policies
    ):
        return "its policies are not a list of {name, kwargs, label}"
    return None


def not_a_sweep_record(folder: Path | str, problem: str, option: str = "--out") -> SweepMismatch:
    """The error for a ``sweep.json`` that some other tool (or a person) wrote."""
    return SweepMismatch(
        f"{Path(folder) / MANIFEST_FILE} is not a sweep record of ld-gym ({problem}); use "
        f"another {option} folder, or pass --overwrite to replace it with this sweep's"
    )
