"""How closely a KD student follows its teacher, on starts it never trained on.

    python -m benchmarks.studies.kd_agreement [--games pursuit,twentyone] [--decisions 96] \
        [--out DIR]
    python -m benchmarks.studies.kd_agreement --games pursuit --adapter runs/kd/adapter \
        --out runs/kd

The teacher the shipped adapter learned from (named in its run record: the scripted
pursuers, the exact 21-point optimum) plays fresh starts from the trace seed stream with
trace seed 1 (the shipped traces used seed 0; the sweeps use other streams); ``decisions``
of its decisions are drawn at random, and the base model (``raw``) and the KD student
(``kd``) answer the same observations through their own ``act_batch``. Per pursuer
decision: the same target as the teacher, a legal target, a target nearer the evader
than the pursuer is now (the teacher's own rate is the reference); for 21 points: the
same hit or stand. Cheaper than a sweep (no episode runs to its step limit) and says
*why* a student plays as it does.

Writes ``kd_agreement.{json,md}`` into ``--out`` (default ``runs/kd_agreement``; the
committed figures: ``--out benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

#: default output folder, under the current directory (name benchmarks/results to update the
#: committed figures)
OUT = Path("runs") / "kd_agreement"
ENV_IDS = {"pursuit": "Pursuit-v0", "twentyone": "TwentyOne-v0"}
HELD_OUT_TRACE_SEED = 1


def teacher_of(adapter: Path) -> str:
    """The teacher named in a KD adapter's run record (``ld_gym_run.json`` beside it)."""
    from ld_envs.errors import InvalidArgument

    path = adapter.parent / "ld_gym_run.json"
    if not path.is_file():
        raise InvalidArgument(f"no run record {path} beside the adapter {adapter}")
    record = json.loads(path.read_text())
    return str(record["train_config"]["extra"]["traces"]["teacher"])


def teacher_decisions(env_id: str, teacher: str, n: int, seed: int) -> list[tuple[Any, Any]]:
    """``n`` (observation, teacher action) pairs drawn from whole teacher episodes played
    from held-out trace starts until at least ``4 n`` decisions are collected."""
    import ld_agents
    from ld_agents.kd import trace_seed

    policy = ld_agents.make(teacher, env_id)
    env = gym.make(env_id)
    pool: list[tuple[Any, Any]] = []
    k = 0
    while len(pool) < 4 * n:
        obs, _ = env.reset(seed=trace_seed(HELD_OUT_TRACE_SEED, k))
        policy.reset(seed=k)
        k += 1
        done = False
        while not done:
            action = policy.act(obs)
            pool.append((obs, action))
            obs, _, term, trunc, _ = env.step(action)
            done = term or trunc
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(pool), size=n, replace=False).tolist())
    return [pool[i] for i in picks]


def pursuit_scores(pairs: list[tuple[Any, Any]], actions: list[Any]) -> dict[str, float]:
    """Per pursuer decision: same target as the teacher, legal, nearer the evader."""
    from ld_envs.pursuit import NO_CHOICE, decode_action, manhattan

    same = legal = nearer = teacher_nearer = total = 0
    for (obs, teacher_action), action in zip(pairs, actions, strict=True):
        pursuers = [tuple(p) for p in obs["pursuers"].tolist()]
        evader = tuple(obs["evader"].tolist())
        mine = decode_action(pursuers, list(action))
        theirs = decode_action(pursuers, list(teacher_action))
        for k, pos in enumerate(pursuers):
            total += 1
            same += mine[k] == theirs[k]
            legal += int(action[k]) != NO_CHOICE and bool(obs["action_mask"][k][int(action[k])])
            nearer += mine[k] is not None and manhattan(mine[k], evader) < manhattan(pos, evader)
            teacher_nearer += manhattan(theirs[k], evader) < manhattan(pos, evader)
    return {
        "pursuer_decisions": total,
        "same_as_teacher": same / total,
        "legal": legal / total,
        "nearer_evader": nearer / total,
        "teacher_nearer_evader": teacher_nearer / total,
    }


def twentyone_scores(pairs: list[tuple[Any, Any]], actions: list[Any]) -> dict[str, float]:
    """Same hit or stand as the teacher; how often each hits."""
    n = len(pairs)
    return {
        "decisions": n,
        "same_as_teacher": sum(int(a) == int(t) for (_, t), a in zip(pairs, actions, strict=True))
        / n,
        "hit_rate": sum(int(a) == 1 for a in actions) / n,
        "teacher_hit_rate": sum(int(t) == 1 for _, t in pairs) / n,
    }


def measure(game: str, decisions: int, seed: int, adapter: Path | None = None) -> dict[str, Any]:
    """Teacher decisions of one game answered by ``raw`` (bf16) and ``kd`` (``adapter`` or
    the shipped one)."""
    import ld_agents
    from ld_agents.kd import default_adapter

    env_id = ENV_IDS[game]
    adapter = adapter or default_adapter(env_id)
    teacher = teacher_of(adapter)
    pairs = teacher_decisions(env_id, teacher, decisions, seed)
    observations = [obs for obs, _ in pairs]
    score = pursuit_scores if game == "pursuit" else twentyone_scores
    rows: dict[str, Any] = {}
    kwargs = {"raw": {"model": "hf:embedded?dtype=bfloat16"}, "kd": {"adapter": adapter}}
    for name in ("raw", "kd"):
        policy = ld_agents.make(name, env_id, seed=seed, **kwargs[name])
        t0 = time.perf_counter()
        actions = policy.act_batch(observations)
        seconds = time.perf_counter() - t0
        rows[name] = {**score(pairs, actions), "ms_per_decision": 1000 * seconds / decisions}
    return {"env_id": env_id, "teacher": teacher, "adapter": str(adapter),
            "held_out_trace_seed": HELD_OUT_TRACE_SEED, "rows": rows}  # fmt: skip


def to_markdown(results: dict[str, Any], machine: str = "") -> str:
    lines = ["# KD students against their teacher on held-out starts", "",
             "Written by `python -m benchmarks.studies.kd_agreement` (see its docstring)"
             + (f" on {machine}." if machine else "."), ""]  # fmt: skip
    for res in results.values():
        rows = res["rows"]
        keys = [k for k in rows["kd"] if k != "ms_per_decision"]
        lines += [f"## {res['env_id']} (teacher: `{res['teacher']}`)", "",
                  "| policy | " + " | ".join(keys) + " | ms/decision |",
                  "| --- |" + " --- |" * (len(keys) + 1)]  # fmt: skip
        for name, row in rows.items():
            cells = [f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['ms_per_decision']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ld_agents.files import write_text_atomic
    from ld_agents.llm.hardware import describe_machine
    from ld_envs.errors import InvalidArgument

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--games", default="pursuit,twentyone", help="comma list of games")
    p.add_argument("--decisions", type=int, default=96, help="teacher decisions drawn per game")
    p.add_argument("--seed", type=int, default=0, help="seed of the decision draw")
    p.add_argument("--adapter", type=Path, help="a KD adapter to measure (one game only)")
    p.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    args = p.parse_args(argv)
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    for g in games:
        if g not in ENV_IDS:
            raise InvalidArgument(f"unknown game {g!r}; expected some of {sorted(ENV_IDS)}")
    if args.decisions < 1:
        raise InvalidArgument(f"--decisions must be >= 1, got {args.decisions}")
    if args.adapter is not None and len(games) != 1:
        raise InvalidArgument("--adapter needs exactly one game in --games")
    results = {g: measure(g, args.decisions, args.seed, args.adapter) for g in games}
    machine = describe_machine()
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine, **results}
    write_text_atomic(args.out / "kd_agreement.json", json.dumps(record, indent=2))
    write_text_atomic(args.out / "kd_agreement.md", to_markdown(results, machine))
    print(to_markdown(results, machine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
