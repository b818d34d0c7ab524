"""``ld-gym plot``: the figures of a sweep folder.

    ld-gym plot runs/p                          # bars.png + Figure 5 per policy (figure5 start)
    ld-gym plot runs/p --episode 7 --gif        # sweep episode 7 instead, and GIFs
    ld-gym plot runs/p --policies scripted --preset figure5 --out figs/

Everything is read from the folder's manifest (env, env kwargs, policies with their
kwargs, seed), so the figures show the sweep's own set-up. Files go to DIR/plots unless
``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ld_envs.errors import InvalidArgument

HELP = "draw a sweep's figures: bar charts of its table, Figure 5 trajectories, GIFs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", type=Path, help="a sweep folder (ld-gym bench)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default DIR/plots)")
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


def run(args: argparse.Namespace) -> int:
    from benchmarks import plots
    from benchmarks.sweep import PolicySpec, game_hooks, load_sweep

    result = load_sweep(args.folder)
    manifest = result.manifest
    out = args.out or args.folder / "plots"
    written = []
    if not args.no_bars:
        written.append(plots.plot_table_bars(manifest, result.records, out / "bars.png"))
    env_id = manifest["env_id"]
    if game_hooks(env_id).opponent_key == "evader":
        specs = {
            p["label"]: PolicySpec(p["name"], p["kwargs"], p["label"]) for p in manifest["policies"]
        }
        wanted = (
            list(specs) if args.policies is None else [s.strip() for s in args.policies.split(",")]
        )
        for label in wanted:
            if label not in specs:
                raise InvalidArgument(
                    f"no policy {label!r} in {args.folder}; known: {', '.join(specs)}"
                )
        if args.episode is not None and not 0 <= args.episode < manifest["episodes"]:
            raise InvalidArgument(
                f"--episode must lie in [0, {manifest['episodes'] - 1}], got {args.episode}"
            )
        preset = None if args.episode is not None else (args.preset or "figure5")
        tag = f"episode{args.episode}" if args.episode is not None else preset
        for label in wanted:
            trace = plots.play_episode(
                env_id,
                specs[label],
                manifest["env_kwargs"],
                preset=preset,
                episode=args.episode,
                sweep_seed=manifest["seed"],
                seed=manifest["seed"],
                render=args.gif,
            )
            written.append(plots.plot_trajectories(trace, out / f"trajectory_{tag}_{label}.png"))
            if args.gif:
                written.append(plots.save_gif(trace.frames, out / f"episode_{tag}_{label}.gif"))
    elif args.gif or args.episode is not None or args.preset is not None:
        raise InvalidArgument(f"trajectories, presets and GIFs are drawn for pursuit, not {env_id}")
    for path in written:
        print(path)
    return 0
