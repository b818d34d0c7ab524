"""``ld-gym train-ld``: LoRA-train the LD student on a function base's manual.

Data: states from the ``train`` split (``sample_states``), each labelled stage by stage
with the ground truth on the chain's real stage inputs (``training_examples``), turned into
the policy's own prompts (``ld_agents.ld.policy.selection_rows``: game line, stage, the stage's
candidates as labelled one-line manual entries in the base's order, state -> the right
label), plus for pursuit manual-derived rule-matching rows for the emergency stage
(``rule_matching_rows``, candidates in shuffled orders, so the student learns to match an
extra rule in force to the function that handles it rather than a letter). The ``test``
split stays for ``benchmarks/studies/ld_selection.py``.
The base is the game's shipped base WITHOUT emergency functions: the restricted-area
function is never seen in training.

The adapter and its run record (config, data and base-model fingerprints, loss curve,
steps per second) are copied to ``assets/adapters/ld-<game>/``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

HELP = "LoRA-train the LD student (function selection) for a game; ships the adapter"

logger = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", required=True, choices=["pursuit", "twentyone"])
    p.add_argument("--states", type=int, default=3, help="training states (train split)")
    p.add_argument("--rule-rows", type=int, default=12, help="pursuit rule-matching rows")
    p.add_argument(
        "--synthetic-rule-rows",
        type=int,
        default=0,
        help="pursuit rule-matching rows with invented rules and functions (teach matching "
        "a rule in force to a function never seen before)",
    )
    p.add_argument(
        "--focus",
        type=int,
        default=12,
        help="rows per answer of each stage whose right function depends on the state",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=400,
        help="further training states the --focus rows are drawn from (raise it when a rare "
        "answer has fewer than --focus examples there)",
    )
    p.add_argument(
        "--shuffled-copies",
        type=int,
        default=1,
        help="extra copies of every row with the candidates in a random order (so the "
        "student learns the functions, not their letters)",
    )
    p.add_argument("--steps", type=int, default=12, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--r", type=int, default=8)
    p.add_argument(
        "--targets",
        default="q_proj,k_proj,v_proj,o_proj",
        help="comma-separated module names LoRA adapts (add gate_proj,up_proj,down_proj for "
        "the MLPs)",
    )
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run-dir", default=None, help="default runs/ld-<game>")
    p.add_argument("--ship", default=None, help="default assets/adapters/ld-<game>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ship-checkpoint",
        type=int,
        default=None,
        metavar="STEP",
        help="do not train: ship the run's checkpoint-STEP (a run stopped early)",
    )


def build_rows(
    game: str,
    states: int,
    rule_rows: int,
    seed: int = 0,
    focus: int = 12,
    pool: int = 400,
    shuffled_copies: int = 0,
    synthetic_rule_rows: int = 0,
) -> list[dict[str, str]]:
    """The training rows (shuffled, deterministic for a seed): every stage of ``states``
    states; ``focus`` rows per answer of each stage whose right function varies with the
    state (pursuit ``select``, 21 points ``decide``), drawn from a ``pool`` of further
    training states so that rare answers are not swamped; ``shuffled_copies`` more copies
    of each of these with the candidates in a random order (in base order the right letter
    of a stage whose answer never changes is constant, which a model can learn without
    reading the manual); rule-matching rows."""
    import random

    from ld_agents.ld.base import shipped_base, training_examples
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.policy import rule_matching_rows, selection_rows
    from ld_agents.ld.sandbox import SandboxWorker

    base = shipped_base(game)
    with SandboxWorker() as worker:
        drawn = sample_states(game, states + pool, "train", seed)
        examples = training_examples(base, worker, drawn[:states])
        extra = training_examples(base, worker, drawn[states:]) if focus else []
    by_stage: dict[str, dict[str, list[Any]]] = {}
    for ex in extra:
        by_stage.setdefault(ex.stage, {}).setdefault(ex.answer, []).append(ex)
    for answers in by_stage.values():
        if len(answers) > 1:  # the answer depends on the state
            for group in answers.values():
                examples += group[:focus]
    # the policy's own prompts (base order); the rule-matching rows shuffle their candidates
    rows = selection_rows(base, examples, shuffle_seed=None)
    for copy in range(shuffled_copies):
        rows += selection_rows(base, examples, shuffle_seed=seed * 1000 + copy + 1)
    if rule_rows:
        extra_states = sample_states(game, rule_rows * 2, "validation", seed)
        rows += rule_matching_rows(base, extra_states, seed=seed)[:rule_rows]
    if synthetic_rule_rows:
        from ld_agents.ld.policy import synthetic_rule_rows as synthetic

        extra_states = sample_states(game, synthetic_rule_rows * 2, "validation", seed + 1)
        rows += synthetic(base, extra_states, seed=seed)[:synthetic_rule_rows]
    random.Random(seed).shuffle(rows)
    return rows


def run(args: argparse.Namespace) -> int:
    import torch

    from ld_agents.llm.embedded import embedded_model_dir
    from ld_agents.lora import ADAPTER_DIR, LoraTrainConfig, ship_adapter, train_lora

    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir or f"runs/ld-{args.game}")
    ship = Path(args.ship or Path("assets") / "adapters" / f"ld-{args.game}")
    if args.ship_checkpoint is not None:
        return ship_checkpoint(run_dir, args.ship_checkpoint, ship)
    rows = build_rows(
        args.game,
        args.states,
        args.rule_rows if args.game == "pursuit" else 0,
        args.seed,
        focus=args.focus,
        pool=args.pool,
        shuffled_copies=args.shuffled_copies,
        synthetic_rule_rows=args.synthetic_rule_rows if args.game == "pursuit" else 0,
    )
    answers: dict[str, int] = {}
    for r in rows:
        answers[r["answer"]] = answers.get(r["answer"], 0) + 1
    logger.info("%d training rows; labels %s", len(rows), answers)
    config = LoraTrainConfig(
        output_dir=str(run_dir),
        r=args.r,
        alpha=2 * args.r,
        target_modules=args.targets.split(","),
        learning_rate=args.lr,
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=512,
        seed=args.seed,
        save_steps=8,
        logging_steps=2,
        dtype=args.dtype,
        extra={
            "what": f"LD student for {args.game}: prompt -> label of the right function",
            "states": args.states,
            "split": "train (sample_states); test split held out",
            "rule_rows": args.rule_rows if args.game == "pursuit" else 0,
            "shuffled_copies": args.shuffled_copies,
            "synthetic_rule_rows": args.synthetic_rule_rows if args.game == "pursuit" else 0,
            "focus": args.focus,
            "pool": args.pool,
            "rows": len(rows),
            "label_counts": answers,
            "command": "ld-gym train-ld "
            + " ".join(
                f"--{k.replace('_', '-')} {v}"
                for k, v in vars(args).items()
                if k
                in (
                    "game",
                    "states",
                    "rule_rows",
                    "shuffled_copies",
                    "synthetic_rule_rows",
                    "focus",
                    "pool",
                    "steps",
                    "batch_size",
                    "lr",
                    "r",
                    "targets",
                    "dtype",
                )
            ),
        },
    )
    record: dict[str, Any] = train_lora(embedded_model_dir(), rows, config)
    ship_adapter(run_dir / ADAPTER_DIR, record, ship)
    print(
        f"trained {record['global_step']} steps on {len(rows)} rows in "
        f"{record['wall_seconds']:.0f} s ({record['steps_per_second']:.3f} steps/s), "
        f"final loss {record['train_loss']:.4f} -> {ship / ADAPTER_DIR}"
    )
    return 0


def ship_checkpoint(run_dir: Path, step: int, ship: Path) -> int:
    """Ship ``checkpoint-STEP`` of a run that was stopped early, recording that it was."""
    from ld_agents.lora import RUN_FILE, ship_adapter

    ckpt = run_dir / f"checkpoint-{step}"
    if not (ckpt / "adapter_config.json").is_file():
        from ld_envs.errors import InvalidArgument

        raise InvalidArgument(f"no adapter checkpoint at {ckpt}")
    record = json.loads((run_dir / RUN_FILE).read_text())
    state = json.loads((ckpt / "trainer_state.json").read_text())
    log = state.get("log_history", [])
    planned = record["train_config"]["max_steps"]
    # wall clock from the run record's start to the checkpoint (model loading included)
    wall = (ckpt / "trainer_state.json").stat().st_mtime - (run_dir / RUN_FILE).stat().st_mtime
    record.update(
        wall_seconds_to_checkpoint=wall,
        steps_per_second=step / wall if wall > 0 else None,
        status=f"stopped early: checkpoint {step} of {planned} planned steps shipped",
        global_step=state.get("global_step", step),
        loss_curve=[{"step": h["step"], "loss": h["loss"]} for h in log if "loss" in h],
    )
    ship_adapter(ckpt, record, ship)
    print(f"shipped {ckpt} -> {ship / 'adapter'} ({record['status']})")
    return 0
