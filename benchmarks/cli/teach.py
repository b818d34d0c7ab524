"""``ld-gym teach``: ask a teacher model to write a function base and its manual.

The work is :func:`ld_agents.ld.teach.teach`; this module parses the arguments and writes
the report beside the kept functions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ld_agents.ld.teach import teach, teacher_prompt

HELP = "ask a teacher model to write a function base + manual for a game, validate, keep the good"

EXIT_OK, EXIT_INCOMPLETE = 0, 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", required=True, choices=["pursuit", "twentyone"])
    parser.add_argument(
        "--model", required=True, help="teacher: openai:URL?model=NAME, hf:..., vllm:..."
    )
    parser.add_argument("--out", required=True, help="where to write the kept functions (JSON)")
    parser.add_argument(
        "--report",
        default=None,
        help="report JSON (default: OUT with .report.json); a Markdown copy is written beside it",
    )
    parser.add_argument("--max-new-tokens", type=int, default=4096)
    parser.add_argument("--states", type=int, default=60, help="sampled inputs per function")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--answer-file", default=None, help="process a saved teacher answer instead of asking"
    )
    parser.add_argument("--print-prompt", action="store_true", help="print the prompt and exit")


def run(args: argparse.Namespace) -> int:
    if args.print_prompt:
        print(teacher_prompt(args.game))
        return EXIT_OK
    answer = Path(args.answer_file).read_text() if args.answer_file else None
    report = teach(
        args.game,
        args.model,
        out=args.out,
        max_new_tokens=args.max_new_tokens,
        n_states=args.states,
        seed=args.seed,
        answer=answer,
    )
    rpath = Path(args.report) if args.report else Path(args.out).with_suffix(".report.json")
    rpath.parent.mkdir(parents=True, exist_ok=True)
    rpath.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    rpath.with_suffix(".md").write_text(report.format_markdown())
    print(report.format())
    print(f"report: {rpath} (+ .md)")
    return EXIT_OK if report.complete else EXIT_INCOMPLETE
