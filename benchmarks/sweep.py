"""Benchmark sweeps: many policies, the same starts, one durable results file.

A sweep is an env id (with env kwargs), a list of policies, an episode count (200, as the
paper), a seed and an output folder::

    from benchmarks.sweep import PolicySpec, SweepSpec, run_sweep
    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted"), PolicySpec("random")], seed=0)
    result = run_sweep(spec, "runs/pursuit", executor="process", workers=2)

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
  which is fixed by the manifest (``chunk_size``); a resumed chunk is re-run whole and
  only its missing episodes are written;
* any other policy plays the chunk's episodes one after another, reset per episode, so
  each episode depends only on its own seeds.

Either way the same seeds give the same records on every executor (serial, local
processes, Ray) and after any number of interruptions.

Results. ``DIR/episodes.jsonl`` gets one line per finished episode (see
:mod:`benchmarks.results_io` for the durability rules), ``DIR/sweep.json`` the manifest.
Re-running the same sweep runs only the missing (policy, episode) pairs; a folder holding
another sweep fails with :class:`~ld_envs.errors.SweepMismatch`; adding policies to an
existing sweep is allowed.

Per-episode extras in a record: for pursuit the start and the stationary steps lower
bound (:func:`ld_envs.pursuit.steps_lower_bound`); ``cost`` (the change of the policy's
``cost_counters()`` over its own calls, when it has that method); ``summary`` (the
policy's ``episode_summary()``, when it has that method). When a policy batches, a
batched call's counters are shared equally among the episodes it served.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.results_io import (
    EPISODES_FILE,
    MANIFEST_FILE,
    LoadReport,
    RecordWriter,
    git_commit,
    load_records,
    read_manifest,
    write_json_atomic,
)
from ld_envs.errors import InvalidArgument, SweepMismatch, unknown_name

logger = logging.getLogger(__name__)

EXECUTORS = ("serial", "process", "ray")
DEFAULT_EPISODES = 200
DEFAULT_CHUNK_SIZE = 20
MANIFEST_VERSION = 1

# ---------------------------------------------------------------------------- seeds


def _derive(seed: int, *key: int) -> int:
    """A 31-bit seed from ``seed`` and a key path (numpy's SeedSequence spawn keys)."""
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def episode_seed(seed: int, episode: int) -> int:
    """The env seed of episode ``episode`` of a sweep seeded ``seed`` (same for every policy)."""
    return _derive(seed, 0, episode)


def policy_seed(seed: int, episode: int) -> int:
    """The seed a non-batching policy is reset with at the start of episode ``episode``."""
    return _derive(seed, 1, episode)


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed a batching policy is reset with at the start of chunk ``chunk``."""
    return _derive(seed, 2, chunk)


# ---------------------------------------------------------------------------- specs


def _json_roundtrip(value: Any, what: str) -> Any:
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
        object.__setattr__(self, "kwargs", _json_roundtrip(dict(self.kwargs), "policy kwargs"))
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if not isinstance(self.label, str) or any(c in self.label for c in "\n\r,"):
            raise InvalidArgument(
                f"PolicySpec.label must be a string without commas, got {self.label!r}"
            )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs), "label": self.label}


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
        if self.episodes < 1:
            raise InvalidArgument(
                f"episodes must be >= 1 (the paper uses 200), got {self.episodes}"
            )
        if self.seed < 0:
            raise InvalidArgument(f"seed must be >= 0, got {self.seed}")
        if self.chunk_size < 1:
            raise InvalidArgument(f"chunk_size must be >= 1, got {self.chunk_size}")
        policies = tuple(
            p if isinstance(p, PolicySpec) else PolicySpec(str(p)) for p in self.policies
        )
        if not policies:
            raise InvalidArgument("a sweep needs at least one policy (e.g. --policies scripted)")
        labels = [p.label for p in policies]
        repeated = sorted({lab for lab in labels if labels.count(lab) > 1})
        if repeated:
            raise InvalidArgument(
                f"policy label(s) {repeated} appear twice; give each run its own label"
            )
        known = known_policies(self.env_id)
        for p in policies:
            if p.name not in known:
                raise unknown_name(f"policy for {self.env_id}", p.name, known)
        if not isinstance(self.env_kwargs, Mapping):
            raise InvalidArgument(f"env_kwargs must be a mapping, got {self.env_kwargs!r}")
        env_kwargs = _json_roundtrip(dict(self.env_kwargs), "env kwargs")
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


# ---------------------------------------------------------------------------- games


@dataclass(frozen=True)
class GameHooks:
    """What a sweep needs to know about one game family."""

    #: env kwarg naming the other side (pursuit: ``evader``; 21 points: ``opponent``)
    opponent_key: str
    #: names the env builds itself
    builtin_opponents: tuple[str, ...]
    #: kwargs for ``ld_agents.make`` when a registered policy plays the other side
    opponent_make_kwargs: Mapping[str, Any]
    #: env kwargs that are also passed to every policy factory that accepts them
    shared_kwargs: tuple[str, ...]
    #: extra fields of an episode record, read from the unwrapped env after reset
    start_fields: Callable[[Any], dict[str, Any]]

    @property
    def opponent_kwargs_key(self) -> str:
        return f"{self.opponent_key}_kwargs"

    def check_env_kwargs(self, env_id: str, env_kwargs: dict[str, Any]) -> None:
        from ld_agents.base import known_policies

        opponent = env_kwargs.get(self.opponent_key)
        if opponent is not None:
            if not isinstance(opponent, str):
                raise InvalidArgument(
                    f"env kwarg {self.opponent_key!r} must be a name in a sweep, got {opponent!r}"
                )
            known = sorted({*self.builtin_opponents, *known_policies(env_id)})
            if opponent not in known:
                raise unknown_name(self.opponent_key, opponent, known)
        extra = env_kwargs.get(self.opponent_kwargs_key)
        if extra is not None and not isinstance(extra, dict):
            raise InvalidArgument(f"env kwarg {self.opponent_kwargs_key!r} must be a JSON object")
        if extra and (opponent is None or opponent in self.builtin_opponents):
            raise InvalidArgument(
                f"{self.opponent_kwargs_key} is only used when {self.opponent_key} names a "
                f"registered policy (not a built-in: {', '.join(self.builtin_opponents)})"
            )


def _pursuit_start(env: Any) -> dict[str, Any]:
    from ld_envs.pursuit import steps_lower_bound

    return {
        "start": {
            "pursuers": [list(p) for p in env.pursuers],
            "evader": list(env.evader_cell),
            "restricted": None if env.area is None else list(env.area),
        },
        "steps_lower_bound": steps_lower_bound(env.pursuers, env.evader_cell),
    }


def _twentyone_start(env: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in ("agent_cards", "opponent_cards", "player", "dealer"):
        value = getattr(env, attr, None)
        if isinstance(value, (list, tuple)):
            out[attr] = [str(c) if not isinstance(c, (int, str)) else c for c in value]
    return {"start": out} if out else {}


_HOOKS: dict[str, GameHooks] = {
    "pursuit": GameHooks(
        opponent_key="evader",
        builtin_opponents=("greedy", "random"),
        opponent_make_kwargs={"side": "evader"},
        shared_kwargs=("size",),
        start_fields=_pursuit_start,
    ),
    "twentyone": GameHooks(
        opponent_key="opponent",
        builtin_opponents=("dealer", "random"),
        opponent_make_kwargs={"side": "opponent"},
        shared_kwargs=("opponent", "open_cards"),
        start_fields=_twentyone_start,
    ),
}


def game_hooks(env_id: str) -> GameHooks:
    from ld_agents.base import game_of

    return _HOOKS[game_of(env_id)]


def _accepts(factory: Callable[..., Any], key: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _factory(name: str, env_id: str) -> Callable[..., Any]:
    from ld_agents import base

    base._load_builtin_policies()
    return base._REGISTRY[name][base.game_of(env_id)]


def build_policy(spec: PolicySpec, env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """``ld_agents.make`` with the spec's kwargs, plus env kwargs the policy must share.

    Pursuit policies get the board ``size``; 21-point policies the ``opponent`` (when a
    built-in name) and ``open_cards``, so that e.g. the exact optimum answers the opponent
    the env plays. The spec's own kwargs win.
    """
    from ld_agents.base import make

    hooks = game_hooks(env_id)
    factory = _factory(spec.name, env_id)
    kwargs: dict[str, Any] = {}
    for key in hooks.shared_kwargs:
        if key not in env_kwargs:
            continue
        value = env_kwargs[key]
        if key == hooks.opponent_key and value not in hooks.builtin_opponents:
            continue
        params = inspect.signature(factory).parameters
        if key in params:  # only factories that name the argument (not a catch-all **kwargs)
            kwargs[key] = value
    kwargs.update(spec.kwargs)
    policy = make(spec.name, env_id, **kwargs)
    if spec.label != spec.name and getattr(policy, "name", spec.name) == spec.name:
        with contextlib.suppress(AttributeError):
            policy.name = spec.label
    return policy


def build_env(
    env_id: str, env_kwargs: Mapping[str, Any], opponent: Any = None, **extra: Any
) -> Any:
    """``gym.make`` for a sweep: sweep-only kwargs removed, a prepared opponent put in."""
    import gymnasium as gym

    import ld_envs  # noqa: F401  (registers the ids)

    hooks = game_hooks(env_id)
    kwargs = {k: v for k, v in env_kwargs.items() if k != hooks.opponent_kwargs_key}
    if opponent is not None:
        kwargs[hooks.opponent_key] = opponent
    try:
        return gym.make(env_id, **kwargs, **extra)
    except TypeError as exc:
        raise InvalidArgument(
            f"{env_id} rejected the env kwargs {dict(env_kwargs)}: {exc}"
        ) from None


def build_opponent(env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """The registered policy named as the other side, or ``None`` for a built-in."""
    from ld_agents.base import make

    hooks = game_hooks(env_id)
    name = env_kwargs.get(hooks.opponent_key)
    if name is None or name in hooks.builtin_opponents:
        return None
    kwargs = dict(hooks.opponent_make_kwargs)
    factory = _factory(name, env_id)
    for key in hooks.shared_kwargs:
        if key in env_kwargs and key != hooks.opponent_key and _accepts(factory, key):
            kwargs[key] = env_kwargs[key]
    kwargs.update(env_kwargs.get(hooks.opponent_kwargs_key) or {})
    return make(name, env_id, **kwargs)


# ---------------------------------------------------------------------------- rollout


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


def wants_batching(policy: Any) -> bool:
    """Whether a policy steps many episodes together (see the module docstring)."""
    flag = getattr(policy, "batch_episodes", None)
    if isinstance(flag, bool):
        return flag
    from ld_agents.base import Policy

    return isinstance(policy, Policy) and type(policy).act_batch is not Policy.act_batch


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """A JSON-safe copy (numpy scalars and arrays become Python values)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Counters:
    """Per-episode deltas of a policy's cumulative ``cost_counters()``."""

    def __init__(self, policy: Any) -> None:
        fn = getattr(policy, "cost_counters", None)
        self.fn: Callable[[], Mapping[str, Any]] | None = fn if callable(fn) else None
        self.last: dict[str, float] = self._read()

    def _read(self) -> dict[str, float]:
        if self.fn is None:
            return {}
        return {k: float(v) for k, v in self.fn().items() if _numeric(v)}

    def delta(self) -> dict[str, float]:
        now = self._read()
        out = {k: v - self.last.get(k, 0.0) for k, v in now.items()}
        self.last = now
        return out


def _add(acc: dict[str, float], delta: Mapping[str, float], share: float = 1.0) -> None:
    for k, v in delta.items():
        acc[k] = acc.get(k, 0.0) + v * share


@dataclass
class _Lane:
    episode: int
    env: Any
    obs: Any = None
    reward: float = 0.0
    wall: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    done: bool = False


def _record(task: ChunkTask, lane: _Lane, pseed: int, batched: bool) -> dict[str, Any]:
    info = lane.info
    rec: dict[str, Any] = {
        "policy": task.policy.label,
        "name": task.policy.name,
        "episode": lane.episode,
        "env_seed": episode_seed(task.seed, lane.episode),
        "policy_seed": pseed,
        "chunk": task.chunk,
        "batched": batched,
        "outcome": info.get("outcome"),
        "steps": int(info.get("steps", 0)),
        "violations": int(info.get("violations", 0)),
        "reward": round(float(lane.reward), 9),
        "wall_s": round(lane.wall, 6),
        "commit": task.commit,
    }
    for key in ("evader_violations",):
        if key in info:
            rec[key] = int(info[key])
    rec.update(lane.extras)
    if lane.cost:
        rec["cost"] = {k: round(v, 6) for k, v in lane.cost.items()}
    if lane.summary:
        rec["summary"] = _plain(lane.summary)
    return rec


def _summary(policy: Any) -> dict[str, Any] | None:
    fn = getattr(policy, "episode_summary", None)
    if not callable(fn):
        return None
    out = fn()
    if not isinstance(out, Mapping):
        raise InvalidArgument(
            f"policy {getattr(policy, 'name', policy)!r}: episode_summary() must return a "
            f"dict, got {type(out).__name__}"
        )
    return dict(out)


def run_chunk(
    task: ChunkTask, on_record: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Play a chunk and return the records of its wanted episodes, in the order they end.

    ``on_record`` (serial executor) is called with each record as its episode ends.
    """
    policy = build_policy(task.policy, task.env_id, task.env_kwargs)
    opponent = build_opponent(task.env_id, task.env_kwargs)
    hooks = game_hooks(task.env_id)
    out: list[dict[str, Any]] = []

    def emit(rec: dict[str, Any]) -> None:
        out.append(rec)
        if on_record is not None:
            on_record(rec)

    if wants_batching(policy):
        _run_batched(task, policy, opponent, hooks, emit)
    else:
        _run_sequential(task, policy, opponent, hooks, emit)
    return out


def _run_sequential(
    task: ChunkTask, policy: Any, opponent: Any, hooks: GameHooks, emit: Callable[[dict], None]
) -> None:
    env = build_env(task.env_id, task.env_kwargs, opponent)
    counters = _Counters(policy)
    try:
        for ep in task.wanted:
            pseed = policy_seed(task.seed, ep)
            lane = _Lane(ep, env)
            t0 = time.perf_counter()
            obs, info = env.reset(seed=episode_seed(task.seed, ep))
            policy.reset(seed=pseed)
            lane.extras = hooks.start_fields(env.unwrapped)
            counters.delta()
            done = False
            while not done:
                action = policy.act(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                lane.reward += float(reward)
                done = terminated or truncated
            lane.wall = time.perf_counter() - t0
            lane.info = info
            lane.cost = counters.delta()
            lane.summary = _summary(policy) or {}
            emit(_record(task, lane, pseed, batched=False))
    finally:
        env.close()


def _run_batched(
    task: ChunkTask, policy: Any, opponent: Any, hooks: GameHooks, emit: Callable[[dict], None]
) -> None:
    wanted = set(task.wanted)
    pseed = chunk_seed(task.seed, task.chunk)
    lanes = [_Lane(ep, build_env(task.env_id, task.env_kwargs, opponent)) for ep in task.episodes]
    try:
        for lane in lanes:
            t0 = time.perf_counter()
            lane.obs, lane.info = lane.env.reset(seed=episode_seed(task.seed, lane.episode))
            lane.extras = hooks.start_fields(lane.env.unwrapped)
            lane.wall = time.perf_counter() - t0
        policy.reset(seed=pseed)
        counters = _Counters(policy)
        base_summary = _summary(policy)
        last_summary = dict(base_summary or {})
        active = list(lanes)
        while active:
            t0 = time.perf_counter()
            actions = policy.act_batch([lane.obs for lane in active])
            share = (time.perf_counter() - t0) / len(active)
            if len(actions) != len(active):
                raise InvalidArgument(
                    f"policy {task.policy.label!r}: act_batch returned {len(actions)} actions "
                    f"for {len(active)} observations"
                )
            cost = counters.delta()
            summary = _summary(policy) if base_summary is not None else None
            for lane, action in zip(active, actions, strict=True):
                _add(lane.cost, cost, 1.0 / len(active))
                if summary is not None:
                    _merge_summary(lane.summary, summary, last_summary, len(active))
                t1 = time.perf_counter()
                lane.obs, reward, terminated, truncated, lane.info = lane.env.step(action)
                lane.reward += float(reward)
                lane.done = terminated or truncated
                lane.wall += share + time.perf_counter() - t1
            if summary is not None:
                last_summary = summary
            for lane in active:
                if lane.done and lane.episode in wanted:
                    emit(_record(task, lane, pseed, batched=True))
            active = [lane for lane in active if not lane.done]
    finally:
        for lane in lanes:
            lane.env.close()


def _merge_summary(
    acc: dict[str, Any], now: Mapping[str, Any], before: Mapping[str, Any], n: int
) -> None:
    """Numeric fields: add this call's change split over ``n`` episodes; others: latest."""
    for k, v in now.items():
        if _numeric(v) and _numeric(before.get(k, 0)):
            acc[k] = acc.get(k, 0) + (float(v) - float(before.get(k, 0))) / n
        else:
            acc[k] = v


# ---------------------------------------------------------------------------- executors


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _execute(
    tasks: Sequence[ChunkTask],
    executor: str,
    workers: int,
    sink: Callable[[list[dict[str, Any]]], None],
) -> None:
    if executor == "serial" or not tasks:
        for task in tasks:
            run_chunk(task, on_record=lambda rec: sink([rec]))
    elif executor == "process":
        _execute_processes(tasks, workers, sink)
    elif executor == "ray":
        _execute_ray(tasks, workers, sink)
    else:  # guarded by RunOptions
        raise AssertionError(executor)


def _execute_processes(
    tasks: Sequence[ChunkTask], workers: int, sink: Callable[[list[dict[str, Any]]], None]
) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn, not fork: LLM backends (torch, vLLM) and threads do not survive a fork
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_ignore_sigint
    )
    clean = False
    try:
        pending = {pool.submit(run_chunk, t) for t in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                sink(fut.result())
        clean = True
    finally:
        if not clean:  # error or Ctrl-C: stop the workers now; written lines stay
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
        pool.shutdown(wait=clean, cancel_futures=True)


def _execute_ray(
    tasks: Sequence[ChunkTask], workers: int, sink: Callable[[list[dict[str, Any]]], None]
) -> None:
    try:
        import ray
    except ImportError:
        raise InvalidArgument(
            "executor 'ray' needs Ray: pip install 'ld-gym[ray]' (or use --executor process)"
        ) from None
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(logging_level=logging.WARNING)  # connect to the running cluster
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        started = True
    remote = ray.remote(num_cpus=1, max_retries=0)(run_chunk)
    refs = [remote.remote(t) for t in tasks]
    clean = False
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                sink(ray.get(ref))
        clean = True
    finally:
        if not clean:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


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

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise unknown_name("executor", self.executor, list(EXECUTORS))
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise InvalidArgument(f"workers must be an integer >= 1, got {self.workers!r}")


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


def _reconcile_manifest(folder: Path, spec: SweepSpec, commit: str) -> dict[str, Any]:
    """Create the manifest, or check the folder's one against ``spec`` and add policies."""
    manifest = read_manifest(folder)
    wanted = spec.identity()
    if manifest is None:
        if (folder / EPISODES_FILE).exists() and (folder / EPISODES_FILE).stat().st_size:
            raise SweepMismatch(
                f"{folder} holds {EPISODES_FILE} but no {MANIFEST_FILE}, so its episodes "
                f"cannot be matched to this sweep; use another --out folder"
            )
        manifest = {
            "version": MANIFEST_VERSION,
            **wanted,
            "policies": [p.to_json() for p in spec.policies],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": commit,
        }
        write_json_atomic(folder / MANIFEST_FILE, manifest)
        return manifest

    diffs = [
        f"{key}: the folder has {_describe(manifest.get(key))}, "
        f"this run asks for {_describe(value)}"
        for key, value in wanted.items()
        if manifest.get(key) != value
    ]
    if diffs:
        raise SweepMismatch(
            f"{folder} holds another sweep ({'; '.join(diffs)}). Rerun with the folder's "
            f"settings to resume it, or use another --out folder"
        )
    by_label = {p["label"]: p for p in manifest.get("policies", [])}
    added = False
    for p in spec.policies:
        old = by_label.get(p.label)
        if old is None:
            manifest["policies"].append(p.to_json())
            added = True
        elif old["name"] != p.name or old.get("kwargs", {}) != dict(p.kwargs):
            raise SweepMismatch(
                f"{folder}: policy {p.label!r} was run as {_describe(old)}, this run asks for "
                f"{_describe(p.to_json())}; give the new one another label or use another "
                f"--out folder"
            )
    if added:
        manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(folder / MANIFEST_FILE, manifest)
    return manifest


def _check_records(folder: Path, spec: SweepSpec, records: list[dict[str, Any]]) -> None:
    for rec in records:
        ep = rec["episode"]
        if not 0 <= ep < spec.episodes or rec.get("env_seed") != episode_seed(spec.seed, ep):
            raise SweepMismatch(
                f"{folder / EPISODES_FILE}: policy {rec['policy']!r} episode {ep} (env seed "
                f"{rec.get('env_seed')}) does not belong to a sweep with seed {spec.seed} and "
                f"{spec.episodes} episodes; the file holds another sweep's episodes"
            )


def plan_chunks(spec: SweepSpec, done: set[tuple[str, int]], commit: str = "") -> list[ChunkTask]:
    """The chunks that still have missing episodes, policy by policy."""
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
                    )
                )
    return tasks


def run_sweep(
    spec: SweepSpec, out_dir: Path | str, options: RunOptions | None = None
) -> SweepResult:
    """Run (or resume) a sweep into ``out_dir`` and return every record there.

    Raises :class:`SweepMismatch` when the folder holds another sweep, and the errors of
    :class:`SweepSpec` / :class:`RunOptions` on bad settings. ``KeyboardInterrupt`` stops
    it cleanly: every finished episode is on disk; run it again to resume.
    """
    options = options or RunOptions()
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument(f"--out {folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    t0 = time.perf_counter()
    with _folder_lock(folder):
        manifest = _reconcile_manifest(folder, spec, commit)
        records, report = load_records(folder / EPISODES_FILE)
        _check_records(folder, spec, records)
        done = {(r["policy"], r["episode"]) for r in records}
        tasks = plan_chunks(spec, done, commit)
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
        with RecordWriter(folder / EPISODES_FILE) as writer:

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
                _execute(tasks, options.executor, options.workers, sink)
            finally:
                if bar is not None:
                    bar.close()
    return SweepResult(folder, manifest, records, ran, report, time.perf_counter() - t0)


def load_sweep(folder: Path | str) -> SweepResult:
    """Read a sweep folder without running anything (for tables and plots)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise SweepMismatch(f"{folder} holds no {MANIFEST_FILE}: it is not a sweep folder")
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
    "chunk_seed",
    "episode_seed",
    "load_sweep",
    "plan_chunks",
    "policy_seed",
    "record_key",
    "run_chunk",
    "run_sweep",
    "wants_batching",
]
