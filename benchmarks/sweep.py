"""Benchmark sweeps: many policies, the same starts, one durable results file.

A sweep is an env id (with env kwargs), a list of policies, an episode count (200, as the
paper), a seed and an output folder::

    from benchmarks.sweep import PolicySpec, RunOptions, SweepSpec, run_sweep
    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted"), PolicySpec("random")], seed=0)
    result = run_sweep(spec, "runs/pursuit", RunOptions(executor="process", workers=2))

Seeds. Episode ``i`` resets the env with :func:`episode_seed` ``(seed, i)`` for every
policy, so every policy meets the same start (pursuit) or deck (21 points), and the
built-in evader or opponent, seeded by the env, behaves the same. The policy is reset with
its own :func:`policy_seed` ``(seed, i)``.

Chunks. The episodes of one policy are cut into chunks of ``chunk_size`` consecutive
indices; a chunk is the unit of work an executor runs. Inside a chunk:

* a policy that batches (one that overrides ``Policy.act_batch``, as LLM policies do, or
  sets ``batch_episodes = True``) steps all the chunk's episodes together: each step,
  ``act_batch`` gets the observations of the episodes still running. The policy is reset
  once per chunk (with :func:`chunk_seed`), so its results depend on the chunk's make-up,
  which is fixed by the manifest (``chunk_size``). A resumed chunk is re-run whole, only
  its missing episodes are written, and the others are checked against their records
  (:class:`benchmarks.replay.ReplayCheck`); when the policy (and a batching other side)
  can ``prime`` its caches, as the LLM policies can, the chunk journals each step in
  ``DIR/journal/`` and a resumed chunk replays the journaled steps without asking the
  models, then goes on from the step where it stopped (:mod:`benchmarks.journal`);
* any other policy plays the chunk's episodes one after another, reset per episode, so
  each episode depends only on its own seeds.

Either way the same seeds give the same records on every executor (serial, local
processes, Ray) and after any number of interruptions.

Results. ``DIR/episodes.jsonl`` gets one line per finished episode (see
:mod:`benchmarks.results_io` for the durability rules and what ``kill -9`` can and cannot
lose), ``DIR/sweep.json`` the manifest; its ``last_run`` says how the last run played
(executor, workers, the torch threads of each process from
:func:`ld_agents.llm.threads.plan_threads`, and the CPU).
Re-running the same sweep runs only the missing (policy, episode) pairs; a folder holding
another sweep fails with :class:`~benchmarks.results_io.SweepMismatch` (checked before any
episode, :func:`check_resume`), as does a ``sweep.json`` that is not a sweep record and a
policy label recorded with other settings: ``overwrite`` (``--overwrite``) replaces the
first and drops the second's episodes to run it again. Adding policies to an existing sweep
is allowed.

Per-episode extras in a record: for pursuit the start and the stationary steps lower
bound (:func:`ld_envs.pursuit.steps_lower_bound`); ``cost`` (the change of the policy's
``cost_counters()`` over its own calls, when it has that method); ``summary`` (the
policy's ``episode_summary()``, when it has that method). When a policy batches, a
batched call's counters are shared equally among the episodes it served. A batching
agent's chunk batches an LLM on the other side too (:mod:`benchmarks.opponent_batch`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.executors import EXECUTORS, execute
from benchmarks.games import (
    build_env,
    build_opponent,
    build_policy,
    check_sweep_inputs,
    game_hooks,
)
from benchmarks.replay import replay_fields
from benchmarks.results_io import (
    EPISODES_FILE,
    MANIFEST_FILE,
    SYNC_AFTER,
    SYNC_EVERY,
    LoadReport,
    RecordWriter,
    SweepMismatch,
    encode_record,
    git_commit,
    load_records,
    manifest_problem,
    not_a_sweep_record,
    read_manifest,
    write_json_atomic,
)
from benchmarks.rollout import run_chunk, wants_batching
from benchmarks.specs import ChunkTask, PolicySpec, json_roundtrip
from ld_agents.files import output_path, write_bytes_atomic
from ld_agents.llm.threads import ThreadPlan, plan_threads
from ld_agents.seeding import chunk_seed, episode_seed, policy_seed
from ld_envs.errors import InvalidArgument, LdGymError, unknown_name

logger = logging.getLogger(__name__)

DEFAULT_EPISODES = 200
#: the most episodes per policy in one sweep (the chunks are planned up front)
MAX_EPISODES = 10_000_000
DEFAULT_CHUNK_SIZE = 20
MANIFEST_VERSION = 1
#: the folder, inside a sweep's, of the step journals of unfinished batched chunks
JOURNAL_DIR = "journal"


@dataclass(frozen=True)
class SweepSpec:
    """What defines a sweep's results (the manifest's identity)."""

    #: a registered env id (``Pursuit-v0``, ``PursuitRestricted-v0``, ``TwentyOne-v0``)
    env_id: str
    #: the policies to run, in table order
    policies: Sequence[PolicySpec]
    #: episodes per policy (the paper: 200 starts / games)
    episodes: int = DEFAULT_EPISODES
    #: the sweep seed; episode i's start comes from (seed, i)
    seed: int = 0
    #: keyword arguments for ``gym.make`` (pursuit: ``evader`` may also name a registered
    #: policy, built with ``side="evader"`` and the kwargs in ``evader_kwargs``)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: episodes per unit of work (and per batch, for policies that batch)
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        from ld_agents.base import game_of, known_policies

        game_of(self.env_id)  # unknown env id -> UnknownName listing the known ones
        for name in ("episodes", "seed", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise InvalidArgument(f"{name} must be an integer, got {value!r}")
        if not 1 <= self.episodes <= MAX_EPISODES:
            raise InvalidArgument(
                f"episodes must be >= 1 and at most {MAX_EPISODES:,} (the paper uses 200), "
                f"got {self.episodes}"
            )
        if self.seed < 0:
            raise InvalidArgument(f"seed must be >= 0, got {self.seed}")
        if self.chunk_size < 1:
            raise InvalidArgument(f"chunk_size must be >= 1, got {self.chunk_size}")
        if isinstance(self.policies, (str, bytes)) or not isinstance(self.policies, Sequence):
            raise InvalidArgument(
                f"policies must be a list of PolicySpec or names (e.g. ['scripted']), got "
                f"{self.policies!r}"
            )
        policies = tuple(
            p if isinstance(p, PolicySpec) else PolicySpec(str(p)) for p in self.policies
        )
        if not policies:
            raise InvalidArgument("a sweep needs at least one policy (e.g. --policies scripted)")
        labels = [p.label for p in policies]
        repeated = sorted({lab for lab in labels if labels.count(lab) > 1})
        if repeated:
            raise InvalidArgument(
                f"policy label(s) {repeated} appear twice; name each policy once (e.g. "
                f"--policies scripted,random); to run one policy twice with other settings, "
                f"give each PolicySpec its own label, or run the second in another --out folder"
            )
        known = known_policies(self.env_id)
        for p in policies:
            if p.name not in known:
                raise unknown_name(f"policy for {self.env_id}", p.name, known)
        if not isinstance(self.env_kwargs, Mapping):
            raise InvalidArgument(f"env_kwargs must be a mapping, got {self.env_kwargs!r}")
        env_kwargs = json_roundtrip(dict(self.env_kwargs), "env kwargs")
        if "render_mode" in env_kwargs:
            raise InvalidArgument(
                "env kwargs may not set render_mode in a sweep (benchmarks.plots renders)"
            )
        hooks = game_hooks(self.env_id)
        hooks.check_env_kwargs(self.env_id, env_kwargs)
        object.__setattr__(self, "policies", policies)
        object.__setattr__(self, "env_kwargs", env_kwargs)
        object.__setattr__(self, "episodes", int(self.episodes))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "chunk_size", int(self.chunk_size))

    @property
    def game(self) -> str:
        from ld_agents.base import game_of

        return game_of(self.env_id)

    def identity(self) -> dict[str, Any]:
        """The manifest fields that must match for a folder to hold this sweep."""
        return {
            "env_id": self.env_id,
            "env_kwargs": dict(self.env_kwargs),
            "seed": self.seed,
            "episodes": self.episodes,
            "chunk_size": self.chunk_size,
        }


# ---------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class RunOptions:
    """How to run a sweep (never changes its results)."""

    #: ``serial`` (in this process), ``process`` (local processes) or ``ray``
    executor: str = "serial"
    #: parallel workers for ``process`` / ``ray`` (Ray: CPUs of the local instance)
    workers: int = 1
    #: a tqdm bar; ``None``: on when stderr is a terminal and ``CI`` is not set
    progress: bool | None = None
    #: fsync the results file once this many records wait (1: after every record)
    sync_every: int = SYNC_EVERY
    #: ... or this many seconds after the first waiting record was written
    sync_after: float = SYNC_AFTER
    #: torch threads of each playing process; ``None``: the physical cores, split among the
    #: workers (``OMP_NUM_THREADS`` when set; :func:`ld_agents.llm.threads.plan_threads`)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise unknown_name("executor", self.executor, list(EXECUTORS))
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise InvalidArgument(f"workers must be an integer >= 1, got {self.workers!r}")
        if self.executor == "serial" and self.workers > 1:
            raise InvalidArgument(
                f"the serial executor runs one worker, not {self.workers}; use the process or "
                f"ray executor for parallel workers"
            )
        if not isinstance(self.sync_every, int) or self.sync_every < 1:
            raise InvalidArgument(f"sync_every must be an integer >= 1, got {self.sync_every!r}")
        if not isinstance(self.sync_after, (int, float)) or not self.sync_after > 0:
            raise InvalidArgument(f"sync_after must be seconds > 0, got {self.sync_after!r}")
        if self.threads is not None and (
            not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1
        ):
            raise InvalidArgument(f"threads must be an integer >= 1 or None, got {self.threads!r}")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise InvalidArgument(
                f"progress must be True, False or None (the terminal decides), got "
                f"{self.progress!r}"
            )

    @classmethod
    def from_command(
        cls, executor: str | None = None, workers: int = 1, no_progress: bool = False
    ) -> RunOptions:
        """The options a command line asks for: ``executor`` defaults to ``process`` with
        more than one worker, else ``serial``; ``no_progress`` turns the bar off (else the
        terminal decides, :func:`progress_enabled`)."""
        chosen = executor or ("process" if workers > 1 else "serial")
        return cls(executor=chosen, workers=workers, progress=False if no_progress else None)


@dataclass
class SweepResult:
    """What :func:`run_sweep` leaves: every record in the folder and what was done now."""

    folder: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    #: episodes played by this call
    ran: int
    report: LoadReport
    seconds: float
    #: of ``seconds``, the time spent in fsync (batched: see :mod:`benchmarks.results_io`)
    sync_seconds: float = 0.0
    #: how many fsyncs of the results file there were
    syncs: int = 0
    #: the torch threads of each process that played (``None`` for :func:`load_sweep`)
    threads: ThreadPlan | None = None

    @property
    def policies(self) -> list[str]:
        """Labels of the folder's policies, in manifest order."""
        return [p["label"] for p in self.manifest["policies"]]


def progress_enabled(flag: bool | None) -> bool:
    """Progress bars: explicit flag, else on for a terminal outside CI."""
    if flag is not None:
        return flag
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepMismatch(
                f"{folder} is in use by another running sweep; wait for it to finish or use "
                f"another --out folder"
            ) from None
        yield
    finally:
        os.close(fd)


def _describe(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _changed_policies(
    folder: Path, manifest: Mapping[str, Any], spec: SweepSpec, overwrite: bool
) -> list[PolicySpec]:
    """Check that the folder's sweep record ``manifest`` can take ``spec`` (same identity;
    each policy label run with the same settings); return the policies recorded with other
    settings, which ``overwrite`` allows to be dropped and run again. Writes nothing."""
    diffs = [
        f"{key}: the folder has {_describe(manifest.get(key))}, "
        f"this run asks for {_describe(value)}"
        for key, value in spec.identity().items()
        if manifest.get(key) != value
    ]
    if diffs:
        raise SweepMismatch(
            f"{folder} holds another sweep ({'; '.join(diffs)}). Rerun with the folder's "
            f"settings to resume it, or use another --out folder"
        )
    by_label = {p["label"]: p for p in manifest.get("policies", [])}
    changed = []
    for p in spec.policies:
        old = by_label.get(p.label)
        if old is not None and (old["name"] != p.name or old.get("kwargs", {}) != dict(p.kwargs)):
            if not overwrite:
                raise SweepMismatch(
                    f"{folder}: policy {p.label!r} was run as {_describe(old)}, this run asks "
                    f"for {_describe(p.to_json())}; use another --out folder, or pass "
                    f"--overwrite to drop its recorded episodes and run it again with the new "
                    f"settings"
                )
            changed.append(p)
    return changed


def check_resume(spec: SweepSpec, out_dir: Path | str, overwrite: bool = False) -> None:
    """Can ``spec`` run in ``out_dir`` (a new folder, or one holding this sweep), checked
    before anything runs or is written? Raises :class:`SweepMismatch` as :func:`run_sweep`
    would: a ``sweep.json`` that is not a sweep record (allowed with ``overwrite``), another
    sweep, or a policy label recorded with other settings (allowed with ``overwrite``)."""
    folder = Path(out_dir)
    if not (folder / MANIFEST_FILE).exists():
        return
    problem = manifest_problem(folder)
    if problem is not None:
        if not overwrite:
            raise not_a_sweep_record(folder, problem)
        return
    _changed_policies(folder, read_manifest(folder) or {}, spec, overwrite)


def _reconcile_manifest(
    folder: Path,
    spec: SweepSpec,
    commit: str,
    last_run: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Create the manifest, or check the folder's one against ``spec`` and add policies;
    ``last_run`` (how this run plays: executor, threads, CPU) is recorded in it. With
    ``overwrite`` a ``sweep.json`` that is not a sweep record is replaced, and a policy
    recorded with other settings loses its episodes and is recorded anew."""
    problem = manifest_problem(folder)
    if problem is not None and not overwrite:
        raise not_a_sweep_record(folder, problem)
    manifest = None if problem is not None else read_manifest(folder)
    wanted = spec.identity()
    if manifest is None:
        episodes = folder / EPISODES_FILE
        if episodes.exists() and episodes.stat().st_size:
            record = f"no sweep record ({MANIFEST_FILE}" + (f": {problem})" if problem else ")")
            if not overwrite:
                raise SweepMismatch(
                    f"{folder} holds {EPISODES_FILE} but {record}, so its episodes cannot be "
                    f"matched to this sweep; use another --out folder, or pass --overwrite to "
                    f"replace them with this sweep's"
                )
            logger.warning("--overwrite: %s replaced (%s)", episodes, record)
            episodes.unlink()
        manifest = {
            "version": MANIFEST_VERSION,
            **wanted,
            "policies": [p.to_json() for p in spec.policies],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": commit,
        }
        if last_run is not None:
            manifest["last_run"] = dict(last_run)
        write_json_atomic(folder / MANIFEST_FILE, manifest)
        return manifest

    changed = _changed_policies(folder, manifest, spec, overwrite)
    for p in changed:
        dropped = _drop_records(folder, p.label)
        logger.warning(
            "%s: policy %r was recorded with other settings; dropped its %d episodes "
            "(--overwrite) to run it with %s",
            folder,
            p.label,
            dropped,
            _describe(dict(p.kwargs)),
        )
        manifest["policies"] = [
            p.to_json() if old["label"] == p.label else old for old in manifest["policies"]
        ]
    by_label = {p["label"] for p in manifest.get("policies", [])}
    added = bool(changed)
    for p in spec.policies:
        if p.label not in by_label:
            manifest["policies"].append(p.to_json())
            added = True
    if added:
        manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if last_run is not None and manifest.get("last_run") != last_run:
        manifest["last_run"] = dict(last_run)
        added = True
    if added:
        write_json_atomic(folder / MANIFEST_FILE, manifest)
    return manifest


def _drop_records(folder: Path, label: str) -> int:
    """Remove policy ``label``'s episodes (the file rewritten atomically) and its journals
    from a sweep folder whose lock is held; return the episodes removed."""
    records, _ = load_records(folder / EPISODES_FILE)
    kept = [r for r in records if r["policy"] != label]
    if len(kept) != len(records):
        write_bytes_atomic(folder / EPISODES_FILE, b"".join(encode_record(r) for r in kept))
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label)
    for journal in (folder / JOURNAL_DIR).glob(f"{safe}-chunk*.jsonl"):
        journal.unlink()
    return len(records) - len(kept)


def drop_policy(folder: Path | str, label: str) -> int:
    """Remove policy ``label`` from a sweep folder: its manifest entry, its episodes and
    its journals (files rewritten atomically); return the episodes removed. For a row to
    be played again with changed settings (a retrained, re-pinned adapter); the other
    policies' episodes are kept as they are."""
    folder = Path(folder)
    with _folder_lock(folder):
        manifest = read_manifest(folder)
        if manifest is None:
            raise InvalidArgument(f"{folder} holds no sweep ({MANIFEST_FILE} missing)")
        labels = [p["label"] for p in manifest["policies"]]
        if label not in labels:
            raise unknown_name(f"policy of the sweep in {folder}", label, labels)
        dropped = _drop_records(folder, label)
        manifest["policies"] = [p for p in manifest["policies"] if p["label"] != label]
        manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(folder / MANIFEST_FILE, manifest)
    return dropped


def _last_run(options: RunOptions, plan: ThreadPlan) -> dict[str, Any]:
    """How this run plays, for the manifest: executor, workers, torch threads and CPU."""
    from ld_agents.llm.hardware import cpu_info

    return {
        "executor": options.executor,
        "workers": options.workers,
        "threads": plan.to_json(),
        "cpu": json.loads(json.dumps(dict(cpu_info()), sort_keys=True, default=_sorted_or_str)),
    }


def _sorted_or_str(value: Any) -> Any:
    """JSON for what ``json`` cannot write: sets (CPU flags) sorted, anything else as text."""
    return sorted(value) if isinstance(value, (set, frozenset)) else str(value)


def _check_records(folder: Path, spec: SweepSpec, records: list[dict[str, Any]]) -> None:
    for rec in records:
        ep = rec["episode"]
        if not 0 <= ep < spec.episodes or rec.get("env_seed") != episode_seed(spec.seed, ep):
            raise SweepMismatch(
                f"{folder / EPISODES_FILE}: policy {rec['policy']!r} episode {ep} (env seed "
                f"{rec.get('env_seed')}) does not belong to a sweep with seed {spec.seed} and "
                f"{spec.episodes} episodes; the file holds another sweep's episodes"
            )


def journal_path(folder: Path, policy: PolicySpec, chunk: int) -> Path:
    """Where a batched chunk journals its steps (:mod:`benchmarks.journal`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", policy.label)
    return folder / JOURNAL_DIR / f"{safe}-chunk{chunk}.jsonl"


def plan_chunks(
    spec: SweepSpec,
    done: set[tuple[str, int]],
    commit: str = "",
    records: Sequence[Mapping[str, Any]] = (),
    folder: Path | None = None,
) -> list[ChunkTask]:
    """The chunks that still have missing episodes, policy by policy; ``records`` (those on
    disk) let a batched chunk check its replay of the episodes it does not need; with the
    sweep's ``folder`` a batched chunk keeps a step journal there (:func:`journal_path`)."""
    on_disk = {(r["policy"], r["episode"]): (r["episode"], *replay_fields(r)) for r in records}
    tasks = []
    for p in spec.policies:
        for chunk, start in enumerate(range(0, spec.episodes, spec.chunk_size)):
            episodes = tuple(range(start, min(start + spec.chunk_size, spec.episodes)))
            wanted = tuple(ep for ep in episodes if (p.label, ep) not in done)
            if wanted:
                tasks.append(
                    ChunkTask(
                        env_id=spec.env_id,
                        env_kwargs=spec.env_kwargs,
                        policy=p,
                        seed=spec.seed,
                        chunk=chunk,
                        episodes=episodes,
                        wanted=wanted,
                        commit=commit,
                        recorded=tuple(
                            on_disk[p.label, ep] for ep in episodes if (p.label, ep) in on_disk
                        ),
                        journal=None if folder is None else str(journal_path(folder, p, chunk)),
                    )
                )
    return tasks


def run_sweep(
    spec: SweepSpec,
    out_dir: Path | str,
    options: RunOptions | None = None,
    *,
    overwrite: bool = False,
) -> SweepResult:
    """Run (or resume) a sweep into ``out_dir`` and return every record there.

    Everything the sweep will build is checked first, before anything is written
    (:func:`benchmarks.games.check_sweep_inputs`, :func:`check_resume`). Raises
    :class:`SweepMismatch` when the folder holds another sweep, a ``sweep.json`` that is not
    a sweep record, or a policy label recorded with other settings, and the errors of
    :class:`SweepSpec` / :class:`RunOptions` on bad settings; a new sweep rejected before
    its first episode leaves nothing behind that would block the corrected one.
    ``overwrite`` (``--overwrite``) replaces a ``sweep.json`` that is not a sweep record,
    and drops the episodes of a policy recorded with other settings so that it runs again
    (never another sweep's). ``KeyboardInterrupt`` stops it cleanly: every finished episode
    is on disk; run it again to resume.
    """
    if not isinstance(spec, SweepSpec):
        raise InvalidArgument(f"spec must be a SweepSpec, got {type(spec).__name__}")
    if options is not None and not isinstance(options, RunOptions):
        raise InvalidArgument(
            f"options must be a RunOptions (e.g. RunOptions(executor='serial')), got "
            f"{type(options).__name__}"
        )
    options = options or RunOptions()
    folder = output_path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument(f"--out {folder} is a file; give a folder")
    check_sweep_inputs(spec.env_id, spec.env_kwargs, spec.policies)
    check_resume(spec, folder, overwrite)
    before = _what_exists(folder)
    try:
        return _run_sweep(spec, folder, options, overwrite)
    except LdGymError:
        _remove_rejected(folder, before)
        raise


def _what_exists(folder: Path) -> set[Path]:
    """The folder, its missing parents' first existing one, and its sweep files, as now."""
    paths = [folder, *folder.parents]
    names = (MANIFEST_FILE, EPISODES_FILE, ".lock", JOURNAL_DIR)
    return {p for p in [*paths, *(folder / n for n in names)] if p.exists()}


def _remove_rejected(folder: Path, before: set[Path]) -> None:
    """Undo what a new sweep made before it was rejected with no episode played: its
    manifest, an empty results file, the lock and empty folders it created."""
    if (folder / MANIFEST_FILE) in before:
        return  # a resumed sweep: its folder stays as it is
    episodes = folder / EPISODES_FILE
    if episodes.exists() and (episodes in before or episodes.stat().st_size):
        return  # episodes were played (or the file was not ours): keep everything
    for name in (MANIFEST_FILE, EPISODES_FILE, ".lock"):
        path = folder / name
        if path not in before:
            path.unlink(missing_ok=True)
    for path in (folder / JOURNAL_DIR, folder, *folder.parents):
        if path in before:
            break
        with contextlib.suppress(OSError):  # not empty: leave it
            path.rmdir()


def _run_sweep(
    spec: SweepSpec, folder: Path, options: RunOptions, overwrite: bool = False
) -> SweepResult:
    folder.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    plan = plan_threads(1 if options.executor == "serial" else options.workers, options.threads)
    t0 = time.perf_counter()
    with _folder_lock(folder):
        last_run = _last_run(options, plan)
        manifest = _reconcile_manifest(folder, spec, commit, last_run, overwrite)
        records, report = load_records(folder / EPISODES_FILE)
        _check_records(folder, spec, records)
        done = {(r["policy"], r["episode"]) for r in records}
        tasks = plan_chunks(spec, done, commit, records, folder)
        todo = sum(len(t.wanted) for t in tasks)
        logger.info(
            "sweep %s: %d episodes to run (%d already done) in %d chunks",
            folder,
            todo,
            len(done),
            len(tasks),
        )
        ran = 0
        bar = None
        if todo and progress_enabled(options.progress):
            from tqdm import tqdm

            bar = tqdm(total=todo, unit="ep", desc=f"{spec.env_id}", dynamic_ncols=True)
        writer = RecordWriter(
            folder / EPISODES_FILE, sync_every=options.sync_every, sync_after=options.sync_after
        )
        with writer:

            def sink(batch: list[dict[str, Any]]) -> None:
                nonlocal ran
                fresh = [r for r in batch if (r["policy"], r["episode"]) not in done]
                writer.append(fresh)
                for r in fresh:
                    done.add((r["policy"], r["episode"]))
                records.extend(fresh)
                ran += len(fresh)
                if bar is not None:
                    bar.update(len(fresh))

            try:
                execute(tasks, options.executor, options.workers, sink, plan.threads)
            finally:
                if bar is not None:
                    bar.close()
    seconds = time.perf_counter() - t0  # the writer's last fsync (at close) included
    return SweepResult(
        folder, manifest, records, ran, report, seconds, writer.sync_seconds, writer.syncs, plan
    )


def load_sweep(folder: Path | str) -> SweepResult:
    """Read a sweep folder without running anything (for tables and plots)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise SweepMismatch(f"{folder} holds no {MANIFEST_FILE}: it is not a sweep folder")
    problem = manifest_problem(folder)
    if problem is not None:
        raise SweepMismatch(
            f"{folder / MANIFEST_FILE} is not a sweep record of ld-gym ({problem}): "
            f"{folder} is not a sweep folder"
        )
    records, report = load_records(folder / EPISODES_FILE, repair=False)
    return SweepResult(folder, manifest, records, 0, report, 0.0)


def record_key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields of a record that the seeds determine (not wall time, commit or cost)."""
    return tuple(
        _describe(rec.get(k))
        for k in (
            "policy",
            "episode",
            "env_seed",
            "policy_seed",
            "outcome",
            "steps",
            "violations",
            "reward",
            "start",
            "steps_lower_bound",
        )
    )


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EPISODES",
    "EXECUTORS",
    "ChunkTask",
    "PolicySpec",
    "RunOptions",
    "SweepResult",
    "SweepSpec",
    "build_env",
    "build_opponent",
    "build_policy",
    "check_resume",
    "chunk_seed",
    "episode_seed",
    "game_hooks",
    "load_sweep",
    "plan_chunks",
    "policy_seed",
    "record_key",
    "run_chunk",
    "run_sweep",
    "wants_batching",
]
