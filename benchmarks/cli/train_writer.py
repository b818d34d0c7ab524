"""``ld-gym train-writer``: LoRA-fine-tune the small model to write a new rule's function.

    ld-gym train-writer --out runs/writer --max-steps 240
    ld-gym train-writer --out runs/writer --ship assets/adapters/ld-pursuit-writer --overwrite
    ld-gym train-writer --out runs/writer2 --seed 1 --max-steps 100 --learning-rate 3e-4 \\
        --init-adapter runs/writer/adapter

The training rows are (rule text -> function) pairs: the shipped base's own ``constraints``
functions and rules of the schema drawn at random, worded by the fixed wordings and by the
paraphrase grammar (:mod:`ld_agents.ld.writer_grammar`), with the held-out wording and kinds
kept out (:func:`ld_agents.ld.rule_writer.training_rows`). The adapter lands in
``OUT/adapter`` with its run record; rerunning resumes from the last checkpoint. Another
run's files in ``--out`` and an adapter already in ``--ship`` are replaced only with
``--overwrite`` (checked before training). ``ld-gym emergency`` and the suite use the
shipped writer (``assets/adapters/ld-pursuit-writer``) by default.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.cli.arguments import add_ship_options, out_path, seed

HELP = "the writer: LoRA-fine-tune the small model on (rule text -> function) pairs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=out_path, default="runs/writer", help="run folder (default runs/writer)"
    )
    parser.add_argument(
        "--rows", type=int, default=3000, help="training rows to draw (default 3000)"
    )
    parser.add_argument("--max-steps", type=int, default=240, help="optimizer steps (default 240)")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per step (default 8)")
    parser.add_argument(
        "--learning-rate", type=float, default=5e-4, help="peak learning rate (default 5e-4)"
    )
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=["float32", "bfloat16"],
        help="weights dtype for training (default bfloat16)",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="seed of the rows, initialisation and order"
    )
    parser.add_argument(
        "--init-adapter",
        default=None,
        help="continue training this adapter folder (same r and modules) instead of a fresh one",
    )
    parser.add_argument(
        "--save-steps", type=int, default=40, help="checkpoint interval in steps (default 40)"
    )
    add_ship_options(parser, "assets/adapters/ld-pursuit-writer", "ld-gym emergency")


def run(args: argparse.Namespace) -> int:
    from ld_agents.kd.train import check_lora_outputs
    from ld_agents.ld.rule_writer import train_writer
    from ld_agents.lora import ship_adapter
    from ld_envs.errors import InvalidArgument

    for option in ("rows", "max_steps", "batch_size", "save_steps"):
        if getattr(args, option) < 1:
            flag = "--" + option.replace("_", "-")
            raise InvalidArgument(f"{flag} must be a positive integer, got {getattr(args, option)}")
    check_lora_outputs(args.out, args.ship, overwrite=args.overwrite)
    record = train_writer(
        str(args.out),
        n_rows=args.rows,
        seed=args.seed,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        dtype=args.dtype,
        save_steps=args.save_steps,
        init_adapter=args.init_adapter,
    )
    summary = {k: record.get(k) for k in ("global_step", "wall_seconds", "steps_per_second")}
    print(json.dumps(summary, indent=2))
    if args.ship is not None:
        ship_adapter(args.out / "adapter", record, args.ship)
        print(f"shipped: {args.ship / 'adapter'}")
    print(f"adapter: {args.out / 'adapter'}")
    return 0
