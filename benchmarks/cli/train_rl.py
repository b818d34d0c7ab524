"""``ld-gym train-rl``: train the MaskablePPO baselines and (with ``--ship``) put them in
``assets/models/``.

    ld-gym train-rl --game pursuit --ship --overwrite
    ld-gym train-rl --game twentyone --timesteps 300000 --ship --overwrite
    ld-gym train-rl --game pursuit --set n_envs=4 --set ent_coef=0.005

The game's default config (:data:`benchmarks.train_rl.PRESETS`) is overridable with
``--set field=value``; ``--help-config`` lists every field with its help. The run goes to
``--out`` (default ``runs/rl/<run name>``); ``--ship`` copies the model, config and curve to
``assets/models/rl_<game>.zip`` / ``.json`` / ``_curve.png``, which the ``rl`` policy loads
by default; a file already there (or a run's file in ``--out``) is replaced only with
``--overwrite``, checked before training. The work is :mod:`benchmarks.train_rl`'s.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.cli.arguments import out_path, positive, seed

HELP = "train the MaskablePPO baselines (pursuit, 21 points) and ship them to assets/models/"


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.train_rl import PRESETS

    parser.add_argument(
        "--game", choices=sorted(PRESETS), help="which game to train on (required to train)"
    )
    parser.add_argument("--timesteps", type=positive, help="total env steps (overrides the preset)")
    parser.add_argument("--max-wall-s", type=float, help="stop after this many seconds")
    parser.add_argument("--seed", type=seed, help="training seed (preset: 0)")
    parser.add_argument("--init-model", help="fine-tune this MaskablePPO .zip")
    parser.add_argument("--env-id", help="train on another env id of the game")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a field"
    )
    parser.add_argument("--out", type=out_path, help="run folder (default runs/rl/<run name>)")
    parser.add_argument(
        "--ship",
        action="store_true",
        help="copy the result to assets/models/ (a model there is replaced only with --overwrite)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run's files already in --out, or the model in assets/models/",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--help-config", action="store_true", help="list RLConfig's fields with their help, exit"
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.train_rl import PRESETS, build_config, train_run
    from ld_agents.rl.train import RLConfig
    from ld_envs.errors import InvalidArgument

    if args.help_config:
        for name, text in RLConfig.help().items():
            sys.stdout.write(f"{name:18s} {text}\n")
        return 0
    if args.game is None:
        raise InvalidArgument(
            f"--game is required to train (one of {', '.join(sorted(PRESETS))}); "
            "--help-config lists the config fields"
        )

    config = build_config(
        args.game,
        args.set,
        total_timesteps=args.timesteps,
        max_wall_s=args.max_wall_s,
        seed=args.seed,
        init_model=args.init_model,
        env_id=args.env_id,
        progress_bar=False if args.no_progress else None,
    )
    summary = train_run(config, args.out, args.game if args.ship else None, args.overwrite)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0
