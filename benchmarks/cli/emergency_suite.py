"""``ld-gym emergency-suite``: new rules at test time, for every held-out rule.

    ld-gym emergency-suite --out runs/emergency_suite                 # all rules, all policies
    ld-gym emergency-suite --only wall,guard --policies ld_generated,scripted --episodes 20

For each rule of :func:`benchmarks.emergency_suite.suite_rules` the small model writes the
rule's function (``--samples`` per seed set, ``--seeds``), then a resumable sweep plays
``--episodes`` per policy; ``suite.md`` holds both tables. Rerun the same command to
resume. The work is :func:`benchmarks.emergency_suite.run_suite`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.cli.arguments import out_path, positive, seed, seeds

HELP = "new rules at test time: the small model writes each rule's function, then play"


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.emergency_suite import POLICIES

    parser.add_argument(
        "--out", type=out_path, default="runs/emergency_suite", help="output folder"
    )
    parser.add_argument(
        "--episodes", type=positive, default=50, help="episodes per rule and policy"
    )
    parser.add_argument("--samples", type=positive, default=16, help="samples per seed set")
    parser.add_argument(
        "--seeds",
        type=seeds,
        default=(0, 1000),
        help="first seeds of the sample sets, comma-separated (default 0,1000)",
    )
    parser.add_argument(
        "--policies", default=",".join(POLICIES), help="comma-separated suite policies"
    )
    parser.add_argument("--only", default="", help="comma-separated rule labels (default: all)")
    parser.add_argument("--model", default="hf:embedded", help="model spec of the writer and raw")
    parser.add_argument(
        "--adapter", default="default", help="writer adapter folder, 'default' or 'none'"
    )
    parser.add_argument("--seed", type=seed, default=0, help="sweep seed (episode starts)")
    parser.add_argument("--chunk-size", type=positive, default=50, help="episodes per chunk")
    parser.add_argument("--write-only", action="store_true", help="only the writing stage")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a folder this command did not make"
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.emergency_suite import SuiteConfig, run_suite
    from benchmarks.sweep import RunOptions

    config = SuiteConfig(
        out=Path(args.out),
        episodes=args.episodes,
        samples=args.samples,
        seeds=args.seeds,
        policies=tuple(p for p in args.policies.split(",") if p),
        only=tuple(o for o in args.only.split(",") if o),
        model=args.model,
        adapter=None if args.adapter == "none" else args.adapter,
        seed=args.seed,
        chunk_size=args.chunk_size,
        write_only=args.write_only,
        overwrite=args.overwrite,
    )
    path = run_suite(config, RunOptions.from_command(no_progress=args.no_progress), echo=print)
    print(path.read_text())
    print(f"written: {path}")
    return 0
