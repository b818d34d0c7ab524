"""``ld-gym reproduce``: the paper's Tables 1-3 on this machine, one command.

    ld-gym reproduce                       # all tables, 200 episodes, embedded model
    ld-gym reproduce --tables 3 --episodes 50
    ld-gym reproduce --tables 1 --teacher-model openai:http://HOST/v1?model=NAME
    ld-gym reproduce --executor ray --workers 2

Each table is one or two sweeps (below), each in its own folder under ``--out``
(default ``benchmarks/results/tables``), run through the same machinery as ``ld-gym
bench``: interrupted runs resume without losing or repeating episodes, and ``--executor
ray`` spreads chunks over Ray workers. Every sweep writes ``table.md``/``table.csv``/
``episodes.jsonl``/``sweep.json``; ``reproduce.json`` and ``README.md`` in ``--out`` record
the exact command, git commit, machine and wall time of each sweep, and gather the tables.

Sweeps (the paper's settings; ``teacher`` only when ``--teacher-model`` is given):

=============  ======================  =======================================================
folder         env                     policies, other side
=============  ======================  =======================================================
table1-greedy  Pursuit-v0              teacher, raw, kd, ld, rl, scripted; greedy evader
table1-raw     Pursuit-v0              same; the raw embedded model as the evader (the paper's)
table2         PursuitRestricted-v0    teacher, raw, kd, ld, rl, scripted; greedy evader (the
                                       rule is text for raw/KD, a new function for LD)
table3-dealer  TwentyOne-v0            teacher, raw, kd, ld, rl, scripted, optimal; dealer
table3-raw     TwentyOne-v0            same; the raw embedded model as the opponent
=============  ======================  =======================================================
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELP = "regenerate the paper's Tables 1-3 (all sweeps, resumable, Ray optional)"

#: default output folder, under the current directory (the committed tables live in
#: benchmarks/results/tables: name it with --out to regenerate them)
OUT = Path("runs") / "tables"

LLM_POLICIES = ("raw", "kd", "ld")


@dataclass(frozen=True)
class TableSweep:
    """One sweep of a table: its folder, env, policies and the other side."""

    table: str
    folder: str
    env_id: str
    policies: tuple[str, ...]
    #: the evader / opponent: a built-in name, or ``raw`` (the embedded model)
    other: str | None = None
    notes: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)


SWEEPS: tuple[TableSweep, ...] = (
    TableSweep(
        "1", "table1-greedy", "Pursuit-v0", ("raw", "kd", "ld", "rl", "scripted"), "greedy",
        "greedy evader (the project's built-in)",
    ),
    TableSweep(
        "1", "table1-raw", "Pursuit-v0", ("raw", "kd", "ld", "rl", "scripted"), "raw",
        "the raw embedded model as the evader (the paper's setting)",
    ),
    TableSweep(
        "2", "table2", "PursuitRestricted-v0", ("raw", "kd", "ld", "rl", "scripted"), "greedy",
        "restricted area: text in the raw/KD prompt, the emergency function for LD",
    ),
    TableSweep(
        "3", "table3-dealer", "TwentyOne-v0",
        ("raw", "kd", "ld", "rl", "scripted", "optimal"), "dealer", "dealer opponent",
    ),
    # no "optimal" here: the exact best response needs the opponent's strategy as a model
    # (the dealer rule); against an LLM opponent it meets observations that model rules out
    TableSweep(
        "3", "table3-raw", "TwentyOne-v0", ("raw", "kd", "ld", "rl", "scripted"), "raw",
        "the raw embedded model as the opponent (the paper's setting)",
    ),
)  # fmt: skip


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", default="1,2,3", help="which tables (comma list of 1, 2, 3)")
    p.add_argument(
        "--only",
        default=None,
        help="comma list of sweep folders to run (e.g. table1-greedy,table3-dealer)",
    )
    p.add_argument("--episodes", type=int, default=200, help="episodes per policy (paper: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--model",
        default="hf:embedded?dtype=bfloat16",
        help="the small model for raw and the LLM evader/opponent (bf16 like the KD/LD students)",
    )
    p.add_argument("--teacher-model", default=None, help="adds the teacher row (model spec)")
    p.add_argument(
        "--policies", default=None, help="run only these policies of each sweep (comma list)"
    )
    p.add_argument("--chunk-size", type=int, default=50, help="episodes per batch of work")
    p.add_argument("--executor", choices=("serial", "process", "ray"), default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")


def selected(args: argparse.Namespace) -> list[TableSweep]:
    """The sweeps the command line asks for (clear errors for unknown tables/folders)."""
    from ld_envs.errors import unknown_name

    tables = [t.strip() for t in str(args.tables).split(",") if t.strip()]
    for t in tables:
        if t not in {s.table for s in SWEEPS}:
            raise unknown_name("table", t, sorted({s.table for s in SWEEPS}))
    sweeps = [s for s in SWEEPS if s.table in tables]
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        for n in names:
            if n not in {s.folder for s in SWEEPS}:
                raise unknown_name("sweep folder", n, [s.folder for s in SWEEPS])
        sweeps = [s for s in sweeps if s.folder in names]
    return sweeps


def sweep_spec(sweep: TableSweep, args: argparse.Namespace) -> Any:
    """The :class:`~benchmarks.sweep.SweepSpec` of one table sweep."""
    from benchmarks.rollout import game_hooks
    from benchmarks.sweep import PolicySpec, SweepSpec

    hooks = game_hooks(sweep.env_id)
    wanted = None if not args.policies else {n.strip() for n in args.policies.split(",")}
    names = (("teacher",) if args.teacher_model else ()) + sweep.policies
    policies = []
    for name in names:
        if wanted is not None and name not in wanted:
            continue
        kwargs: dict[str, Any] = {}
        if name == "teacher":
            kwargs["model"] = args.teacher_model
        elif name == "raw":
            kwargs["model"] = args.model
        elif name in ("kd", "ld"):
            kwargs["adapter_sha256"] = shipped_adapter_sha(name, sweep.env_id)
        policies.append(PolicySpec(name, kwargs))
    env_kwargs: dict[str, Any] = {hooks.opponent_key: sweep.other}
    if sweep.other not in hooks.builtin_opponents:
        env_kwargs[hooks.opponent_kwargs_key] = {"model": args.model}
    return SweepSpec(
        env_id=sweep.env_id,
        policies=policies,
        episodes=args.episodes,
        seed=args.seed,
        env_kwargs=env_kwargs,
        chunk_size=args.chunk_size,
    )


def shipped_adapter_sha(policy: str, env_id: str) -> str:
    """The content fingerprint of the adapter ``policy`` (kd or ld) loads by default for
    ``env_id``: pinned in the sweep's manifest, so the rows of a retrained adapter are never
    mixed with the old ones (the sweep refuses to resume instead)."""
    from ld_agents.base import game_of
    from ld_agents.lora import adapter_sha256

    if policy == "kd":
        from ld_agents.kd import default_adapter as kd_adapter

        return adapter_sha256(kd_adapter(env_id))
    from ld_agents.ld.policy import default_adapter as ld_adapter

    return adapter_sha256(ld_adapter(game_of(env_id)))


def command_line(args: argparse.Namespace) -> str:
    """The full command that reproduces this run (every option spelled out)."""
    parts = ["ld-gym", "reproduce"]
    for key in (
        "tables", "only", "episodes", "seed", "out", "model", "teacher_model", "policies",
        "chunk_size", "executor", "workers",
    ):  # fmt: skip
        value = getattr(args, key)
        if value is not None:
            parts += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(parts)


def machine() -> dict[str, Any]:
    """Where a sweep ran: its wall times depend on the CPU (bfloat16 in hardware or not)."""
    from ld_agents.llm.hardware import cpu_info

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_info(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def run(args: argparse.Namespace) -> int:
    from benchmarks.results_io import write_text_atomic
    from benchmarks.sweep import RunOptions, run_sweep
    from benchmarks.tables import build_report
    from ld_agents.files import git_commit

    sweeps = selected(args)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "reproduce.json"
    log: dict[str, Any] = json.loads(log_path.read_text()) if log_path.is_file() else {}
    executor = args.executor or ("process" if args.workers > 1 else "serial")
    options = RunOptions(
        executor=executor, workers=args.workers, progress=False if args.no_progress else None
    )
    command = command_line(args)
    commit = git_commit()  # the code that runs: read before a long sweep, not after it
    for sweep in sweeps:
        spec = sweep_spec(sweep, args)
        folder = args.out / sweep.folder
        print(f"== {sweep.folder}: {sweep.env_id}, {sweep.notes}", flush=True)
        t0 = time.perf_counter()
        result = run_sweep(spec, folder, options)
        wall = time.perf_counter() - t0
        report = build_report(result.manifest, result.records, family="GLM4")
        report.save(folder)
        print(report.main.to_text(), flush=True)
        entry = log.setdefault(sweep.folder, {"runs": []})
        entry.update(table=sweep.table, env_id=sweep.env_id, notes=sweep.notes)
        entry["runs"].append(
            {
                "command": command,
                "commit": commit,
                "machine": machine(),
                "episodes_run": result.ran,
                "wall_seconds": round(wall, 1),
                "executor": executor,
                "workers": args.workers,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            }
        )
        write_text_atomic(log_path, json.dumps(log, indent=2))
        write_text_atomic(args.out / "README.md", summary(args.out, log))
    print(f"wrote {args.out / 'README.md'}")
    return 0


def summary(out: Path, log: dict[str, Any]) -> str:
    """``README.md`` of the tables folder: each sweep's table, command, commit, machine and
    wall time (the paper's figures are in each table's own labelled column)."""
    from ld_agents.llm.hardware import describe_cpu

    lines = [
        "# The paper's Tables 1-3 on this machine",
        "",
        "Written by `ld-gym reproduce` (see `benchmarks/cli/reproduce.py`); each folder holds the",
        "sweep's `episodes.jsonl`, `sweep.json`, `table.md` and `table.csv`. Columns headed",
        "`paper (...)` are the paper's figures, not ours.",
        "",
    ]
    for folder, entry in log.items():
        table_md = out / folder / "table.md"
        lines += [f"## Table {entry['table']}: `{folder}` ({entry['notes']})", ""]
        if table_md.is_file():
            lines += [table_md.read_text().strip(), ""]
        for r in entry["runs"]:
            m = r["machine"]
            lines.append(
                f"- `{r['command']}` at commit `{r['commit']}`: {r['episodes_run']} episodes "
                f"in {r['wall_seconds']:.0f} s ({r['executor']}, {r['workers']} worker(s)) on "
                f"{m['cpus']} CPUs ({describe_cpu(m)}, load {m['load_average'][0]}), "
                f"{r['finished']}"
            )
        lines.append("")
    return "\n".join(lines)
