"""``ld-gym demo``: the README's main job, a small sweep of both games on the embedded model.

For each env it runs (or resumes) one sweep with the baselines beside the raw embedded
model, prints the paper's table for it and saves it under ``--out/<env id>/`` (default
``runs/demo``). The sweeps are :mod:`benchmarks.demo`'s.
"""

from __future__ import annotations

import argparse

from benchmarks.cli.arguments import out_path

HELP = "main job: a small sweep of both games, baselines beside the raw embedded model"


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.demo import DEFAULT_MODEL, DEFAULT_OUT

    parser.add_argument(
        "--out", type=out_path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model spec of the raw policy ({DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--pursuit-episodes", type=int, default=8, metavar="N", help="pursuit episodes per policy"
    )
    parser.add_argument(
        "--twentyone-episodes", type=int, default=40, metavar="N", help="21-point games per policy"
    )
    parser.add_argument("--seed", type=int, default=0, help="sweep seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace tables in --out that are not the demo sweeps' own",
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.demo import run_demo

    seconds = run_demo(
        args.out,
        args.model,
        pursuit_episodes=args.pursuit_episodes,
        twentyone_episodes=args.twentyone_episodes,
        seed=args.seed,
        progress=False if args.no_progress else None,
        echo=print,
        overwrite=args.overwrite,
    )
    print(f"demo finished in {seconds:.0f} s")
    return 0
