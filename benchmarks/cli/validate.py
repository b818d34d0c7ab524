"""``ld-gym validate FILE --game pursuit|twentyone``: check function code in the sandbox.

FILE is a function-base JSON file (every function is checked), an extension JSON file (its
functions, in the context of the game's shipped base or ``--base``), or a Python source file
holding one function (against its stage's contract: ``--stage NAME`` or a ``# stage: NAME``
comment). The work is :func:`ld_agents.ld.validation.validate_file`.

Exit status 0 when every function passes, 1 with a report of what was kept, what was
rejected and why (function, check, input, expected, got). ``--json PATH`` also writes the
report as JSON.
"""

from __future__ import annotations

import argparse

from benchmarks.cli.arguments import out_path, positive, seed

HELP = "check a function base, an extension or one function's source in the sandbox"

EXIT_OK, EXIT_REJECTED = 0, 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="function-base JSON, extension JSON or one function's .py")
    parser.add_argument(
        "--game", required=True, choices=["pursuit", "twentyone"], help="the game FILE is for"
    )
    parser.add_argument(
        "--base", default=None, help="base JSON the extension/source belongs to (default: shipped)"
    )
    parser.add_argument("--stage", default=None, help="stage of a .py function")
    parser.add_argument(
        "--properties",
        default=None,
        help='JSON list of properties a .py function must keep, e.g. \'[{"name": '
        '"removes_exactly", "cells": "restricted_area"}]\'',
    )
    parser.add_argument("--states", type=positive, default=60, help="sampled inputs per function")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the sampled inputs")
    parser.add_argument(
        "--json", type=out_path, default=None, help="also write the report as JSON here (a file)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a --json file this command did not write"
    )


def run(args: argparse.Namespace) -> int:
    from ld_agents.files import check_output_file, mark_made
    from ld_agents.ld.validation import validate_file

    if args.json is not None:
        check_output_file(args.json, overwrite=args.overwrite, option="--json")
    report = validate_file(
        args.file,
        args.game,
        base=args.base,
        stage=args.stage,
        properties=args.properties,
        n_states=args.states,
        seed=args.seed,
    )
    print(report.format())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        mark_made([report.save(args.json)])
    return EXIT_OK if report.ok else EXIT_REJECTED
