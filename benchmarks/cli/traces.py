"""``ld-gym traces``: play a teacher on seeded starts and record (prompt, answer) pairs.

    ld-gym traces Pursuit-v0 --teacher scripted --starts 221 --out runs/traces-pursuit
    ld-gym traces TwentyOne-v0 --teacher optimal --starts 1500 --out runs/traces-twentyone
    ld-gym traces Pursuit-v0 --teacher teacher --model openai:http://HOST/v1?model=NAME --out DIR

A non-LLM teacher (``scripted``) has its moves rendered as answer text and is labelled a
stand-in teacher in the traces' metadata; an LLM teacher's own answers are recorded. Trace
starts come from their own seed stream and skip the benchmark's 200 starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "KD: play a teacher on seeded starts and record (prompt, answer) pairs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "env_id", metavar="ENV_ID", help="Pursuit-v0, PursuitRestricted-v0 or TwentyOne-v0"
    )
    parser.add_argument("--teacher", default="scripted", help="registered policy that teaches")
    parser.add_argument("--model", help="model spec of an LLM teacher (teacher, raw)")
    parser.add_argument("--starts", type=int, default=221, help="seeded starts (paper: 221)")
    parser.add_argument(
        "--seed", type=int, default=0, help="trace seed (starts kept apart from benchmarks)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    import ld_agents
    from ld_agents.kd import collect_traces

    kwargs = {"model": args.model} if args.model else {}
    teacher = ld_agents.make(args.teacher, args.env_id, **kwargs)
    traces = collect_traces(teacher, args.env_id, n_starts=args.starts, seed=args.seed)
    traces.save(args.out)
    print(json.dumps(traces.meta, indent=2))
    print(f"wrote {len(traces.rows)} (prompt, answer) pairs to {args.out}/traces.jsonl")
    return 0
