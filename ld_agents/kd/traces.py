"""KD teacher traces: a teacher played on seeded starts, its (prompt, answer) pairs recorded.

:func:`collect_traces` plays a teacher on seeded starts kept apart from the benchmark
starts (their own seed stream, :func:`trace_seed`, and the benchmark's starts skipped) and
records the raw prompt the student will see with the teacher's answer. An LLM teacher's
answer is its own generated text; a non-LLM teacher (e.g. ``scripted``) has its action
rendered as the answer text (:func:`stand_in_exchange`) and is labelled a *stand-in
teacher* in the trace metadata. :class:`TraceSet` saves and loads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import ld_envs  # noqa: F401  (registers the ids)
from ld_agents.base import Policy, game_of
from ld_agents.files import check_output_folder, write_text_atomic
from ld_agents.prompts import fmt_cell, pursuit_pursuers_prompt, twentyone_prompt
from ld_agents.raw import LLMPolicy
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import DEFAULT_SIZE, PURSUER_NAMES, decode_action

logger = logging.getLogger(__name__)

#: what :meth:`TraceSet.save` writes in its folder
TRACE_FILES = ("traces.jsonl", "meta.json")

#: SeedSequence spawn key of trace starts (the sweeps use 0, 1, 2), so trace starts and
#: benchmark starts come from different streams.
TRACE_SEED_KEY = 7


def trace_seed(seed: int, start: int) -> int:
    """The env seed of trace start ``start`` for trace seed ``seed``."""
    state = np.random.SeedSequence(seed, spawn_key=(TRACE_SEED_KEY, start))
    return int(state.generate_state(1, dtype=np.uint32)[0] >> 1)


def pursuers_answer_text(targets: Sequence[Sequence[int] | None]) -> str:
    """The answer text of a pursuer decision, in the prompt's requested form."""
    parts = [
        f"{n}: {fmt_cell(t)}" for n, t in zip(PURSUER_NAMES, targets, strict=True) if t is not None
    ]
    return " " + "; ".join(parts)


@dataclass
class TraceSet:
    """Teacher traces: (prompt, answer) rows and what produced them."""

    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Write ``traces.jsonl`` and ``meta.json`` atomically; return the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = "".join(json.dumps(r) + "\n" for r in self.rows)
        write_text_atomic(folder / "traces.jsonl", rows)
        write_text_atomic(folder / "meta.json", json.dumps(self.meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TraceSet:
        """Read a folder written by :meth:`save`; malformed lines are named."""
        folder = Path(folder)
        path = folder / "traces.jsonl"
        if not path.is_file():
            raise InvalidArgument(
                f"{folder} holds no traces.jsonl (write one with `ld-gym traces`)"
            )
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"{path}:{n} is not valid JSON ({exc.msg})") from None
            rows.append(row)
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls(rows, meta)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for r in self.rows:
            h.update(json.dumps([r["prompt"], r["answer"]]).encode())
        return h.hexdigest()[:16]


def _start_key(obs: dict[str, np.ndarray], env_seed: int | None = None) -> tuple:
    """What makes two starts the same: the board for pursuit; for 21 points the deal, i.e.
    the episode seed (the deck order is not in the observation)."""
    if "pursuers" in obs:
        return tuple(obs["pursuers"].reshape(-1).tolist()) + tuple(obs["evader"].tolist())
    return ("seed", env_seed)


def _benchmark_starts(env_id: str, sweep_seed: int, episodes: int, env_kwargs: dict) -> set:
    from ld_agents.seeding import episode_seed

    env = gym.make(env_id, **env_kwargs)
    starts = set()
    for i in range(episodes):
        seed = episode_seed(sweep_seed, i)
        obs, _ = env.reset(seed=seed)
        starts.add(_start_key(obs, seed))
    return starts


def stand_in_exchange(game: str, obs: dict[str, Any], action: Any, size: int) -> tuple[str, str]:
    """The raw prompt a student sees and a non-LLM teacher's action as its answer text."""
    if game == "twentyone":
        return twentyone_prompt(obs), " hit" if int(action) == 1 else " stand"
    prompt = pursuit_pursuers_prompt(obs, size)
    pursuers = [tuple(p) for p in obs["pursuers"].tolist()]
    return prompt, pursuers_answer_text(decode_action(pursuers, list(action)))


def collect_traces(
    teacher: Policy,
    env_id: str,
    n_starts: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    benchmark_seed: int = 0,
    benchmark_episodes: int = 200,
) -> TraceSet:
    """Play ``teacher`` from ``n_starts`` seeded starts and record every decision.

    Starts equal to one of the benchmark's (sweep seed ``benchmark_seed``, its first
    ``benchmark_episodes`` episodes) are skipped, so the student never trains on a test
    start (pursuit: the same board; 21 points: the same episode seed, hence the same deal).
    All episodes step together through ``act_batch`` (LLM teachers batch).
    """
    if n_starts < 1:
        raise InvalidArgument(f"n_starts must be >= 1, got {n_starts}")
    game = game_of(env_id)
    env_kwargs = dict(env_kwargs or {})
    size = int(env_kwargs.get("size", DEFAULT_SIZE))
    excluded = _benchmark_starts(env_id, benchmark_seed, benchmark_episodes, env_kwargs)
    envs, observations, seeds = [], [], []
    skipped = 0
    k = 0
    while len(envs) < n_starts:
        env = gym.make(env_id, **env_kwargs)
        s = trace_seed(seed, k)
        k += 1
        obs, _ = env.reset(seed=s)
        if _start_key(obs, s) in excluded:
            skipped += 1
            continue
        envs.append(env)
        observations.append(obs)
        seeds.append(s)
    teacher.reset(seed=seed)
    is_llm = isinstance(teacher, LLMPolicy)
    rows: list[dict[str, Any]] = []
    active = list(range(len(envs)))
    steps = [0] * len(envs)
    outcomes: dict[int, str] = {}
    while active:
        batch = [observations[i] for i in active]
        actions = teacher.act_batch(batch)
        exchanges = teacher.last_exchange if is_llm else None
        still = []
        for j, i in enumerate(active):
            if exchanges is not None:
                prompt, answer = exchanges[j]
            else:
                prompt, answer = stand_in_exchange(game, observations[i], actions[j], size)
            rows.append(
                {
                    "prompt": prompt,
                    "answer": answer,
                    "start": i,
                    "env_seed": seeds[i],
                    "step": steps[i],
                }
            )
            obs, _, term, trunc, info = envs[i].step(actions[j])
            observations[i] = obs
            steps[i] += 1
            if term or trunc:
                outcomes[i] = str(info.get("outcome", "done"))
            else:
                still.append(i)
        active = still
    name = getattr(teacher, "name", type(teacher).__name__)
    meta = {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "teacher": name,
        "teacher_kind": "llm" if is_llm else "stand-in (non-LLM policy rendered as answer text)",
        "teacher_model": getattr(getattr(teacher, "backend", None), "spec", None),
        "seed": seed,
        "seed_key": TRACE_SEED_KEY,
        "n_starts": n_starts,
        "skipped_benchmark_starts": skipped,
        "excluded_benchmark": {"seed": benchmark_seed, "episodes": benchmark_episodes},
        "decisions": len(rows),
        "teacher_outcomes": {o: list(outcomes.values()).count(o) for o in set(outcomes.values())},
    }
    traces = TraceSet(rows, meta)
    traces.meta["fingerprint"] = traces.fingerprint()
    logger.info("collected %d decisions from %d starts (teacher %s)", len(rows), n_starts, name)
    return traces


def default_traces_dir(env_id: str, teacher: str, seed: int) -> Path:
    """Where ``ld-gym traces`` writes by default: ``runs/traces-<env>-<teacher>-seed<seed>``
    under the current folder."""
    return Path("runs") / f"traces-{env_id}-{teacher}-seed{seed}"


def write_traces(
    env_id: str,
    output_dir: str | Path | None = None,
    *,
    teacher: str = "scripted",
    model: str | None = None,
    n_starts: int = 221,
    seed: int = 0,
    overwrite: bool = False,
) -> tuple[TraceSet, Path]:
    """Build the registered policy ``teacher`` (on ``model`` for an LLM teacher), collect its
    traces (:func:`collect_traces`) and save them; return the traces and their folder
    (default :func:`default_traces_dir`).

    Traces can cost money to make again, so a folder already holding traces is refused
    before any teacher call, unless ``overwrite``."""
    from ld_agents.base import make

    folder = check_output_folder(
        default_traces_dir(env_id, teacher, seed) if output_dir is None else output_dir,
        TRACE_FILES,
        overwrite=overwrite,
        replaceable=False,
    )
    if n_starts < 1:
        raise InvalidArgument(f"n_starts must be >= 1 (--starts), got {n_starts}")
    kwargs = {"model": model} if model else {}
    policy = make(teacher, env_id, **kwargs)
    traces = collect_traces(policy, env_id, n_starts=n_starts, seed=seed)
    return traces, traces.save(folder)
