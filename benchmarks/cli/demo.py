"""``ld-gym demo``: the README's main job, a small sweep of every game on the embedded model.

For each env it runs (or resumes) one sweep with the baselines beside the raw embedded
model, prints the paper's table for it and saves it under ``--out/<env id>/``:

* ``Pursuit-v0``: scripted, random (mask-aware), random_blind, raw (greedy evader);
* ``TwentyOne-v0``: optimal (with its exact ceiling), scripted, dealer, random, raw.

It is a demonstration sized to take a few minutes on a 2-core CPU; the paper's tables use
200 episodes per policy (``ld-gym bench``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "main job: a small sweep of both games, baselines beside the raw embedded model"

PLAN = [
    ("Pursuit-v0", ["scripted", "random", "random_blind", "raw"], "pursuit_episodes"),
    ("TwentyOne-v0", ["optimal", "scripted", "dealer", "random", "raw"], "twentyone_episodes"),
]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--model", default="hf:embedded", help="model spec of the raw policy")
    parser.add_argument("--pursuit-episodes", type=int, default=8, metavar="N")
    parser.add_argument("--twentyone-episodes", type=int, default=40, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from benchmarks.sweep import PolicySpec, RunOptions, SweepSpec, run_sweep
    from benchmarks.tables import build_report

    start = time.perf_counter()
    for env_id, names, episodes_arg in PLAN:
        policies = [PolicySpec(n, {"model": args.model} if n == "raw" else {}) for n in names]
        spec = SweepSpec(env_id, policies, episodes=getattr(args, episodes_arg), seed=args.seed)
        folder = args.out / env_id
        result = run_sweep(spec, folder, RunOptions(progress=False if args.no_progress else None))
        report = build_report(result.manifest, result.records)
        report.save(folder)
        print(report.main.to_text())
        print(f"({result.ran} episodes run now, {result.seconds:.1f} s; saved in {folder})\n")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0
