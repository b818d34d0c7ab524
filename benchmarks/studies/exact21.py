"""Exact 21-points values of Table 3's policies, the LD student's stage losses, the costs.

Walks the game tree for the policies whose answers read card values as multisets
(scripted, dealer, optimal, rl, ld_oracle: seconds each; ld: its student reads a state
line of totals, each scored once), estimates what the walk would take for the generating
LLM policies (raw, kd read every card in order), measures the LD
student's first decision stage by stage and counts what a walk against the raw LLM as
opponent would ask (:mod:`benchmarks.exact21`). Writes ``exact21.json`` and
``exact21.md`` under ``runs/exact21`` unless ``--out`` names another folder (the
committed record: ``--out benchmarks/results/exact21``).

    python -m benchmarks.studies.exact21
    python -m benchmarks.studies.exact21 --estimate "" --no-stages --executor ray --workers 2
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from benchmarks.exact21 import DEFAULT_OUT, ESTIMATE_POLICIES, EXACT_POLICIES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.studies.exact21",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument(
        "--opponent", default="dealer", choices=["dealer", "random"], help="the built-in opponent"
    )
    p.add_argument("--open-cards", action="store_true", help="the opponent's first card face up")
    p.add_argument(
        "--policies",
        default=",".join(EXACT_POLICIES),
        help="policies walked exactly (comma list; '' for none)",
    )
    p.add_argument(
        "--estimate",
        default=",".join(ESTIMATE_POLICIES),
        help="policies whose walk is estimated from a sample (comma list; '' for none)",
    )
    p.add_argument("--sample", type=int, default=24, help="nodes asked per round by an estimate")
    p.add_argument(
        "--assume",
        default=None,
        help="also walk the estimated policies exactly, assuming this 'DETAIL,ORDER' "
        "(e.g. 'class,none': exact for the policy reading canonical observations; hours "
        "per LLM policy on a CPU)",
    )
    p.add_argument(
        "--no-stages",
        dest="stages",
        action="store_false",
        help="skip the LD student's first-decision values per stage (about an hour of CPU)",
    )
    p.add_argument(
        "--no-raw-opponent",
        dest="raw_opponent",
        action="store_false",
        help="skip counting what a walk against the raw LLM as opponent would ask",
    )
    p.add_argument(
        "--executor", default="serial", choices=["serial", "ray"], help="where answers run"
    )
    p.add_argument("--workers", type=int, default=1, help="Ray actors (with --executor ray)")
    p.add_argument("--chunk-size", type=int, default=64, help="observations per policy call")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no bars")
    return p


def main(argv: list[str] | None = None) -> int:
    from benchmarks.exact21 import Exact21Config, run_exact21, save_exact21, to_markdown

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    command = "python -m benchmarks.studies.exact21 " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    config = Exact21Config(
        out=Path(args.out),
        opponent=args.opponent,
        open_cards=args.open_cards,
        policies=args.policies,
        estimate=args.estimate,
        sample=args.sample,
        assume=args.assume,
        stages=args.stages,
        raw_opponent=args.raw_opponent,
        executor=args.executor,
        workers=args.workers,
        chunk_size=args.chunk_size,
        progress=args.progress,
        command=command.strip(),
    )
    record = run_exact21(config)
    paths = save_exact21(record, config.out)
    sys.stdout.write(to_markdown(record))
    sys.stdout.write("wrote " + ", ".join(str(p) for p in paths) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
