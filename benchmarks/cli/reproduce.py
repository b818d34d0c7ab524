"""``ld-gym reproduce``: the paper's Tables 1-3 on this machine, one command.

    ld-gym reproduce                       # all tables, 200 episodes, embedded model
    ld-gym reproduce --tables 3 --episodes 50
    ld-gym reproduce --tables 1 --teacher-model openai:http://HOST/v1?model=NAME
    ld-gym reproduce --executor ray --workers 2
    ld-gym reproduce --out benchmarks/results/tables   # regenerate the committed tables

Output goes to ``runs/tables`` under the current directory unless ``--out`` names another
folder. The sweeps, and how they run and are recorded, are :mod:`benchmarks.reproduce`'s.
"""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING

from benchmarks.cli.arguments import out_path, positive, seed

if TYPE_CHECKING:
    from benchmarks.reproduce import ReproduceConfig

HELP = "regenerate the paper's Tables 1-3 (all sweeps, resumable, Ray optional)"


def configure(p: argparse.ArgumentParser) -> None:
    from benchmarks.reproduce import DEFAULT_MODEL, DEFAULT_OUT

    p.add_argument("--tables", default="1,2,3", help="which tables (comma list of 1, 2, 3)")
    p.add_argument(
        "--only",
        default=None,
        help="comma list of sweep folders to run (e.g. table1-greedy,table3-dealer)",
    )
    p.add_argument("--episodes", type=int, default=200, help="episodes per policy (paper: 200)")
    p.add_argument("--seed", type=seed, default=0, help="sweep seed (default 0)")
    p.add_argument(
        "--out",
        type=out_path,
        default=DEFAULT_OUT,
        help=f"output folder, one sweep folder inside (default {DEFAULT_OUT}; the committed "
        "tables: benchmarks/results/tables)",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="the small model for raw and the LLM evader/opponent (bf16 like the KD/LD students)",
    )
    p.add_argument("--teacher-model", default=None, help="adds the teacher row (model spec)")
    p.add_argument(
        "--policies", default=None, help="run only these policies of each sweep (comma list)"
    )
    p.add_argument("--chunk-size", type=positive, default=50, help="episodes per batch of work")
    p.add_argument(
        "--executor",
        choices=("serial", "process", "ray"),
        default=None,
        help="where chunks run (default: serial, or process with --workers > 1)",
    )
    p.add_argument("--workers", type=positive, default=1, help="parallel workers (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in --out that are not this command's own (a README.md, a table.md), "
        "and rerun a policy recorded there with other settings (its episodes are dropped)",
    )


def config_from_args(args: argparse.Namespace) -> ReproduceConfig:
    """The :class:`~benchmarks.reproduce.ReproduceConfig` of a command line."""
    from benchmarks.reproduce import ReproduceConfig

    return ReproduceConfig(
        out=args.out,
        tables=args.tables,
        only=args.only,
        episodes=args.episodes,
        seed=args.seed,
        model=args.model,
        teacher_model=args.teacher_model,
        policies=args.policies,
        chunk_size=args.chunk_size,
        executor=args.executor,
        workers=args.workers,
        no_progress=args.no_progress,
        overwrite=args.overwrite,
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.reproduce import reproduce

    readme = reproduce(config_from_args(args), echo=functools.partial(print, flush=True))
    print(f"wrote {readme}")
    return 0
