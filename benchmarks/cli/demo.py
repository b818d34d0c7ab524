"""``ld-gym demo``: the README's main job, raw, KD and LD beside the baselines on every game.

For each env (Pursuit-v0, PursuitRestricted-v0, TwentyOne-v0) it runs (or resumes) one small
sweep on the embedded model, prints the paper's table for it and saves it under
``--out/<env id>/`` (default ``runs/demo``); then it plays the LD student from the paper's
Figure 5 start and writes the episode, captioned with the function chosen at each stage,
to ``--out/figure5/`` and prints the picture's path. The sweeps are
:mod:`benchmarks.demo`'s.
"""

from __future__ import annotations

import argparse

from benchmarks.cli.arguments import out_path, seed

HELP = "main job: raw, KD and LD beside the baselines on every game, and the Figure 5 episode"


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.demo import DEFAULT_MODEL, DEFAULT_OUT

    parser.add_argument(
        "--out", type=out_path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="model spec of the raw policy (hf:, vllm:, openai:)"
    )
    parser.add_argument(
        "--pursuit-episodes", type=int, default=4, metavar="N", help="pursuit episodes per policy"
    )
    parser.add_argument(
        "--twentyone-episodes", type=int, default=30, metavar="N", help="21-point games per policy"
    )
    parser.add_argument("--seed", type=seed, default=0, help="sweep seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace tables in --out that are not the demo sweeps' own, and rerun a policy "
        "recorded there with other settings (e.g. another --model; its episodes are dropped)",
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
