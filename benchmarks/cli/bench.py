"""``ld-gym bench``: run or resume a sweep and print the paper's table for it.

    ld-gym bench Pursuit-v0 --policies scripted,random --episodes 200 --seed 0 --out runs/p
    ld-gym bench Pursuit-v0 --policies raw --model hf:embedded --evader raw --out runs/t1
    ld-gym bench TwentyOne-v0 --policies optimal,random --out runs/21 --paired optimal,random

The work is :mod:`benchmarks.bench` (the spec, the report) and :mod:`benchmarks.sweep`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks.cli.arguments import out_path, positive, seed

HELP = "run or resume a benchmark sweep and print its table (the paper's Tables 1-3)"


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name, e.g. scripted,random")
    return names


def _pair(text: str) -> tuple[str, str]:
    parts = [n.strip() for n in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two policy labels A,B; got {text!r}")
    return parts[0], parts[1]


def _json_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(obj, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return obj


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.sweep import DEFAULT_EPISODES, EXECUTORS

    parser.add_argument(
        "env_id", metavar="ENV_ID", help="Pursuit-v0, PursuitRestricted-v0 or TwentyOne-v0"
    )
    parser.add_argument(
        "--policies",
        required=True,
        type=_names,
        metavar="NAME[,NAME...]",
        help="registered policy names (ld_agents.known_policies(ENV_ID))",
    )
    # --episodes is checked by the sweep (episodes < 1 gets the library's message)
    parser.add_argument(
        "--episodes",
        type=int,
        default=DEFAULT_EPISODES,
        metavar="N",
        help=f"episodes per policy (default {DEFAULT_EPISODES}, the paper's)",
    )
    parser.add_argument("--seed", type=seed, default=0, metavar="S", help="sweep seed (default 0)")
    parser.add_argument(
        "--out",
        required=True,
        type=out_path,
        metavar="DIR",
        help="output folder: a new one, or a sweep's own folder to resume it",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what in --out is not this sweep's own: tables, a sweep.json that is "
        "no sweep record, and the episodes of a policy recorded with other settings (dropped "
        "and run again); never another sweep's (other env, seed or episodes)",
    )
    parser.add_argument(
        "--model",
        metavar="SPEC",
        help="model spec for LLM policies (hf:embedded, vllm:PATH, openai:URL?model=NAME)",
    )
    parser.add_argument(
        "--evader",
        "--opponent",
        dest="opponent",
        metavar="NAME",
        help="the other side: pursuit's evader (greedy, random, or a policy such as raw); "
        "21 points' opponent (dealer, random, ...)",
    )
    parser.add_argument(
        "--evader-model",
        "--opponent-model",
        dest="opponent_model",
        metavar="SPEC",
        help="model spec for an LLM evader/opponent (default: --model)",
    )
    parser.add_argument(
        "--env-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="gym.make keyword arguments, e.g. '{\"size\": 21}'",
    )
    parser.add_argument(
        "--policy-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="keyword arguments for every policy (ld_agents.make)",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive,
        default=None,
        metavar="N",
        help="episodes per unit of work and per batch (default 20; fixed per folder)",
    )
    parser.add_argument(
        "--workers", type=positive, default=1, metavar="N", help="parallel workers (default 1)"
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="serial, process or ray (default: serial, or process with --workers > 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--paired",
        type=_pair,
        action="append",
        default=[],
        metavar="A,B",
        help="add a paired comparison of two policies (repeatable)",
    )
    parser.add_argument(
        "--paper-family",
        default="GLM4",
        metavar="NAME",
        help="the paper's model family for the paper column: GLM4, LLaMA3, Qwen2.5, or none",
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.bench import bench_report, bench_spec, check_bench, paper_family
    from benchmarks.sweep import RunOptions, run_sweep

    spec = bench_spec(
        args.env_id,
        args.policies,
        args.out,
        episodes=args.episodes,
        seed=args.seed,
        model=args.model,
        opponent=args.opponent,
        opponent_model=args.opponent_model,
        env_kwargs=args.env_kwargs,
        policy_kwargs=args.policy_kwargs,
        chunk_size=args.chunk_size,
    )
    check_bench(spec, args.out, args.paired, overwrite=args.overwrite)
    family = paper_family(args.paper_family, spec.env_id)
    options = RunOptions.from_command(args.executor, args.workers, args.no_progress)
    result = run_sweep(spec, args.out, options, overwrite=args.overwrite)
    for msg in result.report.messages(args.out / "episodes.jsonl"):
        print(f"warning: {msg}", file=sys.stderr)
    report = bench_report(result, args.paired, family)
    paths = report.save(args.out)
    print(report.to_text())
    extra = sorted(set(result.policies) - {p.label for p in spec.policies})
    if extra:
        print(f"(also in this folder: {', '.join(extra)})")
    print(
        f"ran {result.ran} episodes in {result.seconds:.1f} s; "
        f"saved {', '.join(str(p) for p in paths)}"
    )
    return 0
