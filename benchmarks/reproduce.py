"""The paper's Tables 1-3 on this machine: the list of sweeps, and running them.

Each table is one or two sweeps (:data:`SWEEPS`), each in its own folder under the output
folder, run through :func:`benchmarks.sweep.run_sweep`: interrupted runs resume without
losing or repeating episodes, and the Ray executor spreads chunks over Ray workers. Every
sweep writes ``table.md``/``table.csv``/``episodes.jsonl``/``sweep.json``;
``reproduce.json`` and ``README.md`` in the output folder record the exact command, git
commit, machine and wall time of each sweep, and gather the tables.

Sweeps (the paper's settings; ``teacher`` only with a teacher model):

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

import json
import logging
import os
import platform
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.games import check_sweep_inputs, game_hooks
from benchmarks.outputs import check_tables_folder
from benchmarks.results_io import write_text_atomic
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, check_resume, run_sweep
from benchmarks.tables import build_report
from ld_agents.files import git_commit
from ld_envs.errors import InvalidArgument, unknown_name

logger = logging.getLogger(__name__)

#: the default output folder, under the current directory (the committed tables live in
#: benchmarks/results/tables: name that folder to regenerate them)
DEFAULT_OUT = Path("runs") / "tables"
DEFAULT_MODEL = "hf:embedded?dtype=bfloat16"
LLM_POLICIES = ("raw", "kd", "ld")
#: the file in the output folder that records every run of every sweep
LOG_FILE = "reproduce.json"
#: the options spelled out in the recorded command line, in order
_COMMAND_FIELDS = (
    "tables", "only", "episodes", "seed", "out", "model", "teacher_model", "policies",
    "chunk_size", "executor", "workers",
)  # fmt: skip


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


@dataclass(frozen=True)
class ReproduceConfig:
    """What to reproduce, and how (the options of ``ld-gym reproduce``)."""

    #: the output folder; each sweep gets a folder inside it
    out: Path = DEFAULT_OUT
    #: which tables: a comma list of 1, 2, 3
    tables: str = "1,2,3"
    #: a comma list of sweep folders to run (``None``: every sweep of the tables)
    only: str | None = None
    #: episodes per policy (the paper: 200)
    episodes: int = 200
    #: the sweep seed
    seed: int = 0
    #: the small model for raw and the LLM evader/opponent (bf16 like the KD/LD students)
    model: str = DEFAULT_MODEL
    #: a model spec for the teacher row (``None``: no teacher row)
    teacher_model: str | None = None
    #: a comma list: run only these policies of each sweep (``None``: all)
    policies: str | None = None
    #: episodes per unit of work (and per LLM batch)
    chunk_size: int = 50
    #: ``serial``, ``process`` or ``ray`` (``None``: process with several workers, else serial)
    executor: str | None = None
    #: parallel workers
    workers: int = 1
    #: turn the progress bars off
    no_progress: bool = False
    #: replace files in ``out`` that are not this command's own (see :mod:`benchmarks.outputs`)
    overwrite: bool = False

    def command_line(self) -> str:
        """The full command that reproduces this run (every option spelled out)."""
        parts = ["ld-gym", "reproduce"]
        for key in _COMMAND_FIELDS:
            value = getattr(self, key)
            if value is not None:
                parts += [f"--{key.replace('_', '-')}", str(value)]
        return shlex.join(parts)


def _comma_list(text: str | None, option: str) -> list[str] | None:
    """The names of a comma list (``None``: not given); a list naming nothing is refused."""
    if text is None:
        return None
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise InvalidArgument(f"{option} {text!r} names nothing; give a comma list or leave it out")
    return names


def selected(config: ReproduceConfig) -> list[TableSweep]:
    """The sweeps the config asks for: clear errors for unknown tables, folders and
    policies, and for a selection that leaves no sweep to run (a sweep where ``policies``
    selects none of its own is left out)."""
    tables = _comma_list(config.tables, "--tables") or []
    for t in tables:
        if t not in {s.table for s in SWEEPS}:
            raise unknown_name("table", t, sorted({s.table for s in SWEEPS}))
    sweeps = [s for s in SWEEPS if s.table in tables]
    names = _comma_list(config.only, "--only")
    if names is not None:
        for n in names:
            if n not in {s.folder for s in SWEEPS}:
                raise unknown_name("sweep folder", n, [s.folder for s in SWEEPS])
        outside = [n for n in names if n not in {s.folder for s in sweeps}]
        if outside:
            raise InvalidArgument(
                f"--only {','.join(outside)} is not in --tables {config.tables} (the sweeps "
                f"of those tables: {', '.join(s.folder for s in sweeps)}); add its table"
            )
        sweeps = [s for s in sweeps if s.folder in names]
    wanted = _comma_list(config.policies, "--policies")
    if wanted is not None:
        known = {n for s in sweeps for n in _policy_names(s, config)}
        for name in wanted:
            if name not in known:
                raise unknown_name("policy of the selected sweeps", name, known)
        sweeps = [s for s in sweeps if set(_policy_names(s, config)) & set(wanted)]
    if not sweeps:
        raise InvalidArgument(
            f"--tables {config.tables} --only {config.only} selects no sweep; known sweeps: "
            f"{', '.join(f'{s.folder} (table {s.table})' for s in SWEEPS)}"
        )
    return sweeps


def _policy_names(sweep: TableSweep, config: ReproduceConfig) -> tuple[str, ...]:
    """Every policy of a table sweep (the teacher first, with a teacher model)."""
    return (("teacher",) if config.teacher_model else ()) + sweep.policies


def sweep_spec(sweep: TableSweep, config: ReproduceConfig) -> SweepSpec:
    """The :class:`~benchmarks.sweep.SweepSpec` of one table sweep."""
    hooks = game_hooks(sweep.env_id)
    wanted = _comma_list(config.policies, "--policies")
    policies = []
    for name in _policy_names(sweep, config):
        if wanted is not None and name not in wanted:
            continue
        kwargs: dict[str, Any] = {}
        if name == "teacher":
            kwargs["model"] = config.teacher_model
        elif name == "raw":
            kwargs["model"] = config.model
        elif name in ("kd", "ld"):
            kwargs["adapter_sha256"] = shipped_adapter_sha(name, sweep.env_id)
        policies.append(PolicySpec(name, kwargs))
    env_kwargs: dict[str, Any] = {hooks.opponent_key: sweep.other}
    if sweep.other not in hooks.builtin_opponents:
        env_kwargs[hooks.opponent_kwargs_key] = {"model": config.model}
    return SweepSpec(
        env_id=sweep.env_id,
        policies=policies,
        episodes=config.episodes,
        seed=config.seed,
        env_kwargs=env_kwargs,
        chunk_size=config.chunk_size,
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


def plan(config: ReproduceConfig) -> list[tuple[TableSweep, SweepSpec]]:
    """The selected sweeps with their specs, every one checked before the first runs: the
    selection, each sweep's inputs (:func:`benchmarks.games.check_sweep_inputs`) and the
    output folders (:func:`benchmarks.outputs.check_tables_folder`)."""
    sweeps = selected(config)
    planned = [(sweep, sweep_spec(sweep, config)) for sweep in sweeps]
    for _, spec in planned:
        check_sweep_inputs(spec.env_id, spec.env_kwargs, spec.policies)
    check_tables_folder(config.out, [s.folder for s in sweeps], overwrite=config.overwrite)
    for sweep, spec in planned:
        check_resume(spec, Path(config.out) / sweep.folder, config.overwrite)
    return planned


def reproduce(config: ReproduceConfig, echo: Callable[[str], None] = logger.info) -> Path:
    """Run (or resume) the selected sweeps into ``config.out``, save each one's tables,
    record the run in ``reproduce.json`` and gather everything in ``README.md``; returns
    that README's path. ``echo`` gets each sweep's heading and main table as it finishes.
    Everything is checked before the first sweep starts (:func:`plan`)."""
    planned = plan(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG_FILE
    log: dict[str, Any] = json.loads(log_path.read_text()) if log_path.is_file() else {}
    options = RunOptions.from_command(config.executor, config.workers, config.no_progress)
    command = config.command_line()
    commit = git_commit()  # the code that runs: read before a long sweep, not after it
    for sweep, spec in planned:
        folder = out / sweep.folder
        echo(f"== {sweep.folder}: {sweep.env_id}, {sweep.notes}")
        t0 = time.perf_counter()
        result = run_sweep(spec, folder, options, overwrite=config.overwrite)
        wall = time.perf_counter() - t0
        report = build_report(result.manifest, result.records, family="GLM4")
        report.save(folder)
        echo(report.main.to_text())
        entry = log.setdefault(sweep.folder, {"runs": []})
        entry.update(table=sweep.table, env_id=sweep.env_id, notes=sweep.notes)
        entry["runs"].append(
            {
                "command": command,
                "commit": commit,
                "machine": machine(),
                "episodes_run": result.ran,
                "wall_seconds": round(wall, 1),
                "executor": options.executor,
                "workers": config.workers,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            }
        )
        write_text_atomic(log_path, json.dumps(log, indent=2))
        write_text_atomic(out / "README.md", summary(out, log))
    return out / "README.md"


def summary(out: Path, log: dict[str, Any]) -> str:
    """``README.md`` of the tables folder: each sweep's table, command, commit, machine and
    wall time (the paper's figures are in each table's own labelled column)."""
    from ld_agents.llm.hardware import describe_cpu

    lines = [
        "# The paper's Tables 1-3 on this machine",
        "",
        "Written by `ld-gym reproduce` (see `benchmarks/reproduce.py`); each folder holds the",
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
