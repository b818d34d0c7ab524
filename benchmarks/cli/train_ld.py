"""``ld-gym train-ld``: LoRA-train the LD student (function selection) for a game.

    ld-gym train-ld --game pursuit --states 40 --steps 260 --ship assets/adapters/ld-pursuit \\
        --overwrite

The recipe is :class:`ld_agents.ld.train.LDTrainConfig` (each option's help is its field's);
the work is :func:`ld_agents.ld.train.train_ld`. The run (checkpoints, the adapter, its run
record) goes to ``--run-dir`` (default ``runs/ld-<game>`` under the current directory); the
adapter is copied where the ``ld`` policy finds it only when ``--ship PATH`` names it; an
adapter already there is replaced only with ``--overwrite`` (checked before training).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from benchmarks.cli.arguments import add_ship_options, out_path, seed
from ld_agents.ld.train import DTYPES, GAMES, LDTrainConfig

HELP = "LoRA-train the LD student (function selection) for a game"

#: the options that only pursuit (the game with an emergency stage) uses
PURSUIT_ONLY = ("rule_rows", "synthetic_rule_rows", "near_miss_rows", "ruled_rows")


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(LDTrainConfig)}


def configure(p: argparse.ArgumentParser) -> None:
    f = _fields()

    def option(flag: str, name: str, **kw: Any) -> None:
        default = f[name].default
        p.add_argument(flag, dest=name, default=default, help=f[name].metadata["help"], **kw)

    p.add_argument("--game", required=True, choices=GAMES, help=f["game"].metadata["help"])
    for name in PURSUIT_ONLY:  # no default here: given for twentyone is refused
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=int,
            default=None,
            help=f[name].metadata["help"] + f" Default {f[name].default}.",
        )
    for name in (
        "states",
        "rule_listings",
        "cue_listings",
        "focus",
        "pool",
        "mistake_rows",
        "contrast_rows",
    ):
        option("--" + name.replace("_", "-"), name, type=int)
    option("--shuffled-copies", "shuffled_copies", type=int)
    option("--steps", "steps", type=int)
    option("--batch-size", "batch_size", type=int)
    option("--lr", "learning_rate", type=float)
    option("--r", "r", type=int)
    p.add_argument(
        "--targets",
        dest="target_modules",
        default=",".join(f["target_modules"].default),
        help=f["target_modules"].metadata["help"] + " Comma-separated.",
    )
    option("--dtype", "dtype", choices=DTYPES)
    option("--threads", "threads", type=int)
    option("--max-length", "max_length", type=int)
    option("--init-adapter", "init_adapter", metavar="DIR")
    p.add_argument(
        "--cue-stages",
        dest="cue_stages",
        default=None,
        help=f["cue_stages"].metadata["help"] + " Comma-separated; 'none' for none.",
    )
    option("--seed", "seed", type=seed)
    p.add_argument(
        "--run-dir",
        type=out_path,
        default=None,
        help="run folder (default: runs/ld-<game>, current directory); a run's own folder resumes",
    )
    p.add_argument(
        "--ship-checkpoint",
        type=int,
        default=None,
        metavar="STEP",
        help="do not train: ship the run's checkpoint-STEP (a run stopped early) to --ship",
    )
    add_ship_options(p, "assets/adapters/ld-pursuit", "the ld policy", run_flag="--run-dir")


def config_from_args(args: argparse.Namespace) -> LDTrainConfig:
    """The recipe the arguments name."""
    from ld_envs.errors import InvalidArgument

    values = {name: getattr(args, name) for name in _fields() if hasattr(args, name)}
    # 0 or the default (what a recorded twentyone command repeats) change nothing
    given = [
        name for name in PURSUIT_ONLY if values.get(name) not in (None, 0, _fields()[name].default)
    ]
    if given and args.game != "pursuit":
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InvalidArgument(f"{flags}: pursuit only (no emergency stage in {args.game})")
    for name in PURSUIT_ONLY:
        if values.get(name) is None:
            values.pop(name, None)
    values["target_modules"] = tuple(t.strip() for t in args.target_modules.split(","))
    if args.cue_stages is not None:
        names = [x.strip() for x in args.cue_stages.split(",")]
        values["cue_stages"] = () if names == ["none"] else tuple(names)
    return LDTrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from ld_agents.kd.train import check_lora_outputs
    from ld_agents.ld.train import ship_checkpoint, train_ld
    from ld_agents.lora import ADAPTER_DIR, ship_adapter
    from ld_envs.errors import InvalidArgument

    run_dir = Path(args.run_dir or f"runs/ld-{args.game}")
    if args.ship_checkpoint is not None:
        if args.ship is None:
            raise InvalidArgument("--ship-checkpoint needs --ship PATH (where to ship it)")
        check_lora_outputs(None, args.ship, overwrite=args.overwrite)
        record = ship_checkpoint(run_dir, args.ship_checkpoint, args.ship)
        ckpt = run_dir / f"checkpoint-{args.ship_checkpoint}"
        print(f"shipped {ckpt} -> {Path(args.ship) / ADAPTER_DIR} ({record['status']})")
        return 0
    config = config_from_args(args)
    check_lora_outputs(run_dir, args.ship, overwrite=args.overwrite, option="--run-dir")
    record = train_ld(config, run_dir)
    adapter = run_dir / ADAPTER_DIR
    if args.ship is not None:
        adapter = ship_adapter(adapter, record, args.ship)
    print(
        f"trained {record['global_step']} steps on {record['examples']} rows in "
        f"{record['wall_seconds']:.0f} s ({record['steps_per_second']:.3f} steps/s), "
        f"final loss {record['train_loss']:.4f} -> {adapter}"
    )
    return 0
