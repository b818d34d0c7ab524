"""``ld-gym train-kd``: LoRA-fine-tune the small model on teacher traces (the KD student).

    ld-gym train-kd runs/traces-Pursuit-v0-scripted-seed0 --max-steps 200
    ld-gym train-kd runs/traces-twentyone --out runs/kd-21 --ship assets/adapters/kd-twentyone \\
        --overwrite

The adapter lands in ``OUT/adapter`` with its run record (config, data and base-model
fingerprints, loss curve, steps per second); rerunning resumes from the last checkpoint.
Another run's files in ``--out`` and an adapter already in ``--ship`` are replaced only with
``--overwrite`` (checked before training).
The work is :func:`ld_agents.kd.train_kd`.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.cli.arguments import add_ship_options, in_path, out_path, positive, seed

HELP = "KD: LoRA-fine-tune the small model on teacher traces"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", type=in_path, help="folder written by `ld-gym traces`")
    parser.add_argument(
        "--out",
        type=out_path,
        default=None,
        help="run folder, adapter in OUT/adapter (default runs/kd-NAME in this folder, NAME "
        "the traces folder's name without 'traces-')",
    )
    parser.add_argument(
        "--model",
        default="embedded",
        help="base model: 'embedded' (default; also 'hf:embedded'), a Hugging Face folder or "
        "a .gguf file",
    )
    parser.add_argument(
        "--max-steps", type=positive, default=200, help="optimizer steps (default 200)"
    )
    parser.add_argument(
        "--batch-size", type=positive, default=8, help="examples per step (default 8)"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=2e-4, help="peak learning rate (default 2e-4)"
    )
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=["float32", "bfloat16"],
        help="weights dtype for training (default bfloat16)",
    )
    parser.add_argument("--limit", type=positive, default=None, help="use the first N traces only")
    parser.add_argument(
        "--seed", type=seed, default=0, help="seed of initialisation and data order (default 0)"
    )
    parser.add_argument("--r", type=positive, default=8, help="LoRA rank, alpha = 2r (default 8)")
    parser.add_argument(
        "--targets",
        default="q_proj,k_proj,v_proj,o_proj",
        help="comma-separated module names LoRA adapts (add gate_proj,up_proj,down_proj for "
        "the MLPs)",
    )
    parser.add_argument(
        "--save-steps", type=positive, default=50, help="checkpoint interval in steps (default 50)"
    )
    add_ship_options(parser, "assets/adapters/kd-pursuit", "the kd policy")


def run(args: argparse.Namespace) -> int:
    from ld_agents.kd import default_kd_dir, train_kd

    out = args.out or default_kd_dir(args.traces)
    record = train_kd(
        args.traces,
        out,
        model=args.model,
        limit=args.limit,
        ship=args.ship,
        overwrite=args.overwrite,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        dtype=args.dtype,
        seed=args.seed,
        save_steps=args.save_steps,
        r=args.r,
        alpha=2 * args.r,
        target_modules=[t.strip() for t in args.targets.split(",")],
        max_length=1024,
    )
    summary = {
        k: record[k] for k in ("global_step", "train_loss", "wall_seconds", "steps_per_second")
    }
    print(json.dumps(summary, indent=2))
    if args.ship is not None:
        print(f"shipped: {args.ship / 'adapter'}")
    print(f"adapter: {out / 'adapter'}")
    return 0
