"""Playing a chunk of episodes of one policy: the sequential, lockstep and batched loops.

A :class:`~benchmarks.specs.ChunkTask` names some episodes of one policy of a sweep;
:func:`run_chunk` plays them anywhere (this process, a worker process, a Ray worker) and
returns their records. Each episode runs in a lane (its env, observation, running reward,
steps, wall time, cost and summary) and ends as one record. See :mod:`benchmarks.sweep`
for how episodes, seeds and chunks fit together; the specs are in :mod:`benchmarks.specs`,
the game hooks and builders in :mod:`benchmarks.games`, the replay check in
:mod:`benchmarks.replay`.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.games import (
    GameHooks,
    build_env,
    build_opponent,
    build_policy,
    drop_shared_env,
    game_hooks,
    shared_env,
)
from benchmarks.opponent_batch import OpponentBatcher
from benchmarks.replay import ReplayCheck
from benchmarks.specs import ChunkTask
from ld_agents.llm.threads import configure_torch
from ld_agents.seeding import chunk_seed, episode_seed, policy_seed
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

__all__ = [
    "ChunkTask",
    "ReplayCheck",  # re-exported: docs name it benchmarks.rollout.ReplayCheck
    "episode_seed",  # re-exported: tests import the seeds from here
    "run_chunk",
    "wants_batching",
]


#: episode seeds, each computed once per process (a reset and its record both ask)
_episode_seed = functools.lru_cache(maxsize=4096)(episode_seed)
#: the game hooks by env id (asked once per record)
_hooks = functools.lru_cache(maxsize=None)(game_hooks)


def wants_batching(policy: Any) -> bool:
    """Whether a policy steps many episodes together (see :mod:`benchmarks.sweep`, Chunks)."""
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
    steps: int = 0
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
        "env_seed": _episode_seed(task.seed, lane.episode),
        "policy_seed": pseed,
        "chunk": task.chunk,
        "batched": batched,
        "outcome": info.get("outcome"),
        "steps": int(info.get("steps", lane.steps)),
        "violations": int(info.get("violations", 0)),
        "reward": round(float(lane.reward), 9),
        "wall_s": round(lane.wall, 6),
        "commit": task.commit,
    }
    for key in _hooks(task.env_id).info_fields:
        if key in info:
            rec[key] = _plain(info[key])
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
    configure_torch()  # a model backend may just have imported torch: give it our threads
    hooks = game_hooks(task.env_id)
    out: list[dict[str, Any]] = []

    def emit(rec: dict[str, Any]) -> None:
        out.append(rec)
        if on_record is not None:
            on_record(rec)

    if wants_batching(policy):
        _run_batched(task, policy, opponent, hooks, emit)
    elif opponent is not None and wants_batching(opponent):
        _run_lockstep(task, policy, opponent, hooks, emit)
    else:
        _run_sequential(task, policy, opponent, hooks, emit)
    return out


def _sequential_env(task: ChunkTask, opponent: Any) -> tuple[Any, bool]:
    """The env for a sequential chunk and whether the chunk owns it (closes it at its end):
    a prepared other side gets a fresh env; a built-in one the process's shared env, which
    the next chunks (and the sweep's input check before them) share."""
    if opponent is not None:
        return build_env(task.env_id, task.env_kwargs, opponent), True
    return shared_env(task.env_id, task.env_kwargs), False


def _run_sequential(
    task: ChunkTask, policy: Any, opponent: Any, hooks: GameHooks, emit: Callable[[dict], None]
) -> None:
    env, owned = _sequential_env(task, opponent)
    counters = _Counters(policy)
    clean = False
    try:
        for ep in task.wanted:
            pseed = policy_seed(task.seed, ep)
            lane = _Lane(ep, env)
            t0 = time.perf_counter()
            obs, info = env.reset(seed=_episode_seed(task.seed, ep))
            policy.reset(seed=pseed)
            lane.extras = hooks.start_fields(env.unwrapped)
            counters.delta()
            done = False
            total, steps = 0.0, 0  # locals: this loop is the sweep's whole per-step cost
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy.act(obs))
                total += float(reward)
                steps += 1
                done = terminated or truncated
            lane.wall = time.perf_counter() - t0
            lane.reward, lane.steps = total, steps
            lane.info = info
            lane.cost = counters.delta()
            lane.summary = _summary(policy) or {}
            emit(_record(task, lane, pseed, batched=False))
        clean = True
    finally:
        if owned:
            env.close()
        elif not clean:  # stopped mid-episode: the next chunk gets a fresh env
            drop_shared_env()


def _run_lockstep(
    task: ChunkTask, policy: Any, opponent: Any, hooks: GameHooks, emit: Callable[[dict], None]
) -> None:
    """A non-batching agent against a batching other side: the wanted episodes step
    together so that the other side answers them in one call per round; each episode has
    its own copy of the policy, reset with the episode's own seed, so every episode plays
    exactly as in :func:`_run_sequential`."""
    batcher = OpponentBatcher(opponent)
    lanes = [_Lane(ep, build_env(task.env_id, task.env_kwargs, batcher)) for ep in task.wanted]
    copies = [build_policy(task.policy, task.env_id, task.env_kwargs) for _ in lanes[1:]]
    agents = {lane.episode: agent for lane, agent in zip(lanes, [policy, *copies], strict=True)}
    seeds = {ep: policy_seed(task.seed, ep) for ep in task.wanted}
    counters = {}
    try:
        for lane in lanes:
            t0 = time.perf_counter()
            lane.obs, lane.info = lane.env.reset(seed=_episode_seed(task.seed, lane.episode))
            agents[lane.episode].reset(seed=seeds[lane.episode])
            lane.extras = hooks.start_fields(lane.env.unwrapped)
            counters[lane.episode] = _Counters(agents[lane.episode])
            lane.wall = time.perf_counter() - t0
        active = list(lanes)
        while active:
            actions = []
            for lane in active:
                t0 = time.perf_counter()
                actions.append(agents[lane.episode].act(lane.obs))
                lane.wall += time.perf_counter() - t0
            _step_lanes(active, actions, batcher)
            for lane in active:
                if lane.done:
                    lane.cost = counters[lane.episode].delta()
                    lane.summary = _summary(agents.pop(lane.episode)) or {}
                    emit(_record(task, lane, seeds[lane.episode], batched=False))
            active = [lane for lane in active if not lane.done]
    finally:
        for lane in lanes:
            lane.env.close()
        for copy in copies:
            close = getattr(copy, "close", None)
            if callable(close):
                close()


def _open_journal(task: ChunkTask, policy: Any, batcher: OpponentBatcher | None) -> Any:
    """The chunk's step journal, or ``None`` when it has no path or a side cannot prime."""
    from benchmarks.journal import StepJournal, can_prime, journal_header

    if task.journal is None or not can_prime(policy):
        return None
    if batcher is not None and not can_prime(batcher.policy):
        return None
    journal = StepJournal(task.journal, journal_header(task))
    if journal.steps:
        logger.info(
            "%s chunk %d: resuming from its journal at step %d",
            task.policy.label,
            task.chunk,
            len(journal.steps),
        )
    return journal


def _run_batched(
    task: ChunkTask, policy: Any, opponent: Any, hooks: GameHooks, emit: Callable[[dict], None]
) -> None:
    from benchmarks.journal import decode_value, step_entry

    wanted = set(task.wanted)
    pseed = chunk_seed(task.seed, task.chunk)
    batcher = None
    if opponent is not None and wants_batching(opponent):  # an LLM on the other side
        batcher = opponent = OpponentBatcher(opponent)
    lanes = [_Lane(ep, build_env(task.env_id, task.env_kwargs, opponent)) for ep in task.episodes]
    replay = ReplayCheck(task)
    journal = None
    active = list(lanes)
    try:
        for lane in lanes:
            t0 = time.perf_counter()
            lane.obs, lane.info = lane.env.reset(seed=_episode_seed(task.seed, lane.episode))
            lane.extras = hooks.start_fields(lane.env.unwrapped)
            lane.wall = time.perf_counter() - t0
        policy.reset(seed=pseed)
        journal = _open_journal(task, policy, batcher)
        recorded = journal.steps if journal is not None else []
        if batcher is not None and journal is not None:
            batcher.log = []
        counters = _Counters(policy)
        base_summary = _summary(policy)
        last_summary = dict(base_summary or {})
        step = 0
        while active:
            episodes = [lane.episode for lane in active]
            if step < len(recorded):  # replay a journaled step: no decision is asked
                entry = recorded[step]
                if entry["episodes"] != episodes:
                    raise RuntimeError(
                        f"{task.journal}: step {step} ran episodes {entry['episodes']}, the "
                        f"replay has {episodes}; delete the journal to run the chunk again"
                    )
                policy.prime([lane.obs for lane in active])
                actions = decode_value(entry["actions"])
                if batcher is not None:
                    batcher.script = decode_value(entry["rounds"])
                _step_lanes(active, actions, batcher)
                for i, lane in enumerate(active):
                    lane.wall = entry["wall"][i]
                    lane.cost = dict(entry["cost"][i])
                    lane.summary = dict(entry["summary"][i])
                if batcher is not None:
                    batcher.script = None
                    batcher.take_log()  # the scripted rounds are in the journal already
                if step + 1 == len(recorded):  # live from here: costs count from now
                    counters = _Counters(policy)
                    last_summary = dict(_summary(policy) or {})
            else:
                t0 = time.perf_counter()
                actions = policy.act_batch([lane.obs for lane in active])
                share = (time.perf_counter() - t0) / len(active)
                if len(actions) != len(active):
                    raise InvalidArgument(
                        f"policy {task.policy.label!r}: act_batch returned {len(actions)} "
                        f"actions for {len(active)} observations"
                    )
                cost = counters.delta()
                summary = _summary(policy) if base_summary is not None else None
                for lane in active:
                    _add(lane.cost, cost, 1.0 / len(active))
                    if summary is not None:
                        _merge_summary(lane.summary, summary, last_summary, len(active))
                    lane.wall += share
                _step_lanes(active, actions, batcher)
                if summary is not None:
                    last_summary = summary
                if journal is not None:
                    rounds = batcher.take_log() if batcher is not None else []
                    totals = [(lane.wall, lane.cost, _plain(lane.summary)) for lane in active]
                    journal.append(step_entry(step, episodes, actions, rounds, totals))
            for lane in active:
                if lane.done and lane.episode in wanted:
                    emit(_record(task, lane, pseed, batched=True))
                elif lane.done:
                    replay.check(_record(task, lane, pseed, batched=True))
            active = [lane for lane in active if not lane.done]
            step += 1
    finally:
        for lane in lanes:
            lane.env.close()
        if journal is not None:
            journal.close(remove=not active)
    replay.report()


def _step_lanes(lanes: list[_Lane], actions: list[Any], batcher: OpponentBatcher | None) -> None:
    """``env.step`` every lane with its action and record the result in the lane (obs,
    info, reward, steps, done, wall time); the other side batched when a batcher is given.

    With a batcher the lanes step together (threads) and share the wall time equally, and
    their records say ``opponent_batched``.
    """
    if batcher is None:
        results, walls = [], []
        for lane, action in zip(lanes, actions, strict=True):
            t1 = time.perf_counter()
            results.append(lane.env.step(action))
            walls.append(time.perf_counter() - t1)
    else:
        t1 = time.perf_counter()
        steps = [
            functools.partial(lane.env.step, action)
            for lane, action in zip(lanes, actions, strict=True)
        ]
        results = batcher.step_all(steps)
        walls = [(time.perf_counter() - t1) / len(lanes)] * len(lanes)
    for lane, (obs, reward, terminated, truncated, info), wall in zip(
        lanes, results, walls, strict=True
    ):
        lane.obs, lane.info = obs, info
        lane.reward += float(reward)
        lane.steps += 1
        lane.done = terminated or truncated
        lane.wall += wall
        if batcher is not None:
            lane.extras["opponent_batched"] = True


def _merge_summary(
    acc: dict[str, Any], now: Mapping[str, Any], before: Mapping[str, Any], n: int
) -> None:
    """Numeric fields: add this call's change split over ``n`` episodes; others: latest."""
    for k, v in now.items():
        if _numeric(v) and _numeric(before.get(k, 0)):
            acc[k] = acc.get(k, 0) + (float(v) - float(before.get(k, 0))) / n
        else:
            acc[k] = v
