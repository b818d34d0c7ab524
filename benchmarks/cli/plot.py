"""``ld-gym plot``: the figures of a sweep folder.

    ld-gym plot runs/p                          # bars.png + Figure 5 per policy (figure5 start)
    ld-gym plot runs/p --episode 7 --gif        # sweep episode 7 instead, and GIFs
    ld-gym plot runs/p --policies scripted --preset figure5 --out figs/

Everything is read from the folder's manifest (env, env kwargs, policies with their
kwargs, seed), so the figures show the sweep's own set-up. Files go to DIR/plots unless
``--out`` says otherwise. The drawing is :func:`benchmarks.plots.plot_sweep`'s.
"""

from __future__ import annotations

import argparse

from benchmarks.cli.arguments import in_path, out_path

HELP = "draw a sweep's figures: bar charts of its table, Figure 5 trajectories, GIFs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", type=in_path, help="a sweep folder (ld-gym bench)")
    parser.add_argument(
        "--out", type=out_path, default=None, help="output folder (default DIR/plots)"
    )
    parser.add_argument(
        "--policies",
        default=None,
        metavar="LABEL[,LABEL...]",
        help="policies to draw trajectories for (default: all in the folder)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="start of the trajectory figure (pursuit; default figure5, the paper's)",
    )
    where.add_argument(
        "--episode",
        type=int,
        default=None,
        metavar="I",
        help="replay episode I of the sweep instead of a preset start",
    )
    parser.add_argument("--gif", action="store_true", help="also write each episode as a GIF")
    parser.add_argument("--no-bars", action="store_true", help="skip the bar chart")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace figures in --out that an earlier plot did not write (or that changed)",
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.plots import plot_sweep

    policies = None if args.policies is None else [s.strip() for s in args.policies.split(",")]
    written = plot_sweep(
        args.folder,
        args.out,
        policies=policies,
        preset=args.preset,
        episode=args.episode,
        gif=args.gif,
        bars=not args.no_bars,
        overwrite=args.overwrite,
    )
    for path in written:
        print(path)
    return 0
