"""``ld-gym teach``: ask a teacher model to write a function base and its manual.

The work, files included, is :func:`ld_agents.ld.teach.run_teach`; this module parses the
arguments, checks the output paths before the teacher is asked (an existing file is replaced
only with ``--overwrite``; the kept functions may have cost money) and prints the report.
Exit 0 when every stage has a kept function, 1 otherwise.
"""

from __future__ import annotations

import argparse

from benchmarks.cli.arguments import in_file, out_path, positive, seed

HELP = "ask a teacher model to write a function base + manual for a game, validate, keep the good"

EXIT_OK, EXIT_INCOMPLETE = 0, 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--game", required=True, choices=["pursuit", "twentyone"], help="the game to write for"
    )
    parser.add_argument(
        "--model", required=True, help="teacher: openai:URL?model=NAME, hf:..., vllm:..."
    )
    parser.add_argument(
        "--out",
        type=out_path,
        default=None,
        help="where to write the kept functions (JSON; default: runs/teach/<game>.json)",
    )
    parser.add_argument(
        "--report",
        type=out_path,
        default=None,
        help="report JSON (default: OUT with .report.json); a Markdown copy is written beside it",
    )
    parser.add_argument(
        "--max-new-tokens", type=positive, default=4096, help="longest teacher answer, in tokens"
    )
    parser.add_argument("--states", type=positive, default=60, help="sampled inputs per function")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the sampled inputs")
    parser.add_argument(
        "--answer-file",
        type=in_file,
        default=None,
        help="process a saved teacher answer instead of asking",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing --out and --report files"
    )
    parser.add_argument("--print-prompt", action="store_true", help="print the prompt and exit")


def run(args: argparse.Namespace) -> int:
    from ld_agents.files import check_output_file, mark_made
    from ld_agents.ld.teach import DEFAULT_OUT_DIR, run_teach, teacher_prompt
    from ld_envs.errors import InvalidArgument

    if args.print_prompt:
        print(teacher_prompt(args.game))
        return EXIT_OK
    out = args.out or DEFAULT_OUT_DIR / f"{args.game}.json"
    out = check_output_file(out, overwrite=args.overwrite, replaceable=False)
    json_report = args.report or out.with_suffix(".report.json")
    written = {out.resolve()}
    for path in (json_report, json_report.with_suffix(".md")):
        if path.resolve() in written:  # one file would replace the other
            raise InvalidArgument(
                f"--report {json_report} would write {path} twice (the base, the JSON report "
                "and its Markdown copy beside it need three files); give --report a path "
                "ending in .json that differs from --out"
            )
        written.add(path.resolve())
        check_output_file(path, overwrite=args.overwrite, option="--report")
    report, path = run_teach(
        args.game,
        args.model,
        out=out,
        report=json_report,
        answer_file=args.answer_file,
        max_new_tokens=args.max_new_tokens,
        n_states=args.states,
        seed=args.seed,
    )
    mark_made([path, path.with_suffix(".md")])
    print(report.format())
    print(f"report: {path} (+ .md)")
    return EXIT_OK if report.complete else EXIT_INCOMPLETE
