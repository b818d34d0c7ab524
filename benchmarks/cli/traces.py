"""``ld-gym traces``: play a teacher on seeded starts and record (prompt, answer) pairs.

    ld-gym traces Pursuit-v0 --teacher scripted --starts 221
    ld-gym traces TwentyOne-v0 --teacher optimal --starts 1500 --out runs/traces-twentyone
    ld-gym traces Pursuit-v0 --teacher teacher --model openai:http://HOST/v1?model=NAME

A non-LLM teacher (``scripted``) has its moves rendered as answer text and is labelled a
stand-in teacher in the traces' metadata; an LLM teacher's own answers are recorded. Trace
starts come from their own seed stream and skip the benchmark's 200 starts. The work is
:func:`ld_agents.kd.write_traces`.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.cli.arguments import out_path, positive, seed

HELP = "KD: play a teacher on seeded starts and record (prompt, answer) pairs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "env_id", metavar="ENV_ID", help="Pursuit-v0, PursuitRestricted-v0 or TwentyOne-v0"
    )
    parser.add_argument(
        "--teacher", default="scripted", help="registered policy that teaches (default scripted)"
    )
    parser.add_argument(
        "--model", help="model spec of an LLM teacher (teacher, raw), e.g. openai:URL?model=NAME"
    )
    parser.add_argument(
        "--starts",
        type=positive,
        default=221,
        help="seeded starts to play (default 221, the paper's)",
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="trace seed (default 0); trace starts are kept apart from the benchmark's",
    )
    parser.add_argument(
        "--out",
        type=out_path,
        default=None,
        help="output folder (default runs/traces-ENV_ID-TEACHER-seedSEED in this folder)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace traces already in the output folder (they may have cost money to make)",
    )


def run(args: argparse.Namespace) -> int:
    from ld_agents.kd import write_traces

    traces, folder = write_traces(
        args.env_id,
        args.out,
        teacher=args.teacher,
        model=args.model,
        n_starts=args.starts,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(json.dumps(traces.meta, indent=2))
    print(f"wrote {len(traces.rows)} (prompt, answer) pairs to {folder}/traces.jsonl")
    return 0
