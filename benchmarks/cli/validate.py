"""``ld-gym validate FILE --game pursuit|twentyone``: check function code in the sandbox.

FILE is one of

- a function-base JSON file (``"kind": "base"``): every function is checked;
- an extension JSON file (``"kind": "extension"``, e.g. an emergency function): its
  functions are checked in the context of the game's shipped base (or ``--base``);
- a Python source file holding one function (the last top-level ``def``): checked
  against its stage's contract (``--stage NAME`` or a ``# stage: NAME`` comment).

Exit status 0 when every function passes, 1 with a report of what was kept, what was
rejected and why (function, check, input, expected, got). ``--json PATH`` also writes
the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HELP = "check a function base, an extension or one function's source in the sandbox"

EXIT_OK, EXIT_REJECTED = 0, 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="function-base JSON, extension JSON or one function's .py")
    parser.add_argument("--game", required=True, choices=["pursuit", "twentyone"])
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
    parser.add_argument("--states", type=int, default=60, help="sampled inputs per function")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled inputs")
    parser.add_argument("--json", default=None, help="also write the report as JSON here")


def run(args: argparse.Namespace) -> int:
    from ld_agents.ld.base import (
        FunctionBase,
        SchemaError,
        ValidationReport,
        load_function_base,
        load_source_entry,
        read_base_file,
        shipped_base,
        validate_base,
        validate_function,
    )
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_envs.errors import InvalidArgument

    if args.states < 1:
        raise InvalidArgument(f"--states must be >= 1, got {args.states}")
    path = Path(args.file)
    if not path.is_file():
        raise InvalidArgument(f"no file at {path}")

    def context() -> FunctionBase:
        if args.base is not None:
            return load_function_base(args.base)
        return shipped_base(args.game)

    with SandboxWorker() as worker:
        if path.suffix == ".py":
            base = context()
            props = None
            if args.properties is not None:
                try:
                    props = json.loads(args.properties)
                except json.JSONDecodeError as exc:
                    raise InvalidArgument(f"--properties is not JSON: {exc}") from exc
            entry = load_source_entry(path, base, args.stage, props)
            report = ValidationReport(base.game, str(path), enforcement=dict(worker.enforcement))
            report.functions.append(
                validate_function(base, entry, worker, n_states=args.states, seed=args.seed)
            )
        else:
            data = read_base_file(path)
            game = data.get("game") if isinstance(data, dict) else None
            if game != args.game:
                raise SchemaError(f"{path} is for game {game!r}, not --game {args.game!r}")
            if data.get("kind", "base") == "extension":
                base = context()
                added = base.extend(data, origin=str(path))
                report = validate_base(
                    base, worker, args.states, args.seed, names=[e.name for e in added]
                )
            else:
                base = FunctionBase.from_dict(data, origin=str(path))
                report = validate_base(base, worker, args.states, args.seed)
    print(report.format())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    return EXIT_OK if report.ok else EXIT_REJECTED


def validate_main(argv: Sequence[str] | None = None) -> int:
    """Run ``validate`` without the ``ld-gym`` front end (same arguments, same exit codes)."""
    from ld_envs.errors import LdGymError

    parser = argparse.ArgumentParser(prog="ld-gym validate", description=HELP)
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except LdGymError as exc:
        print(f"ld-gym validate: error: {exc}", file=sys.stderr)
        return EXIT_REJECTED


def _main() -> Any:  # pragma: no cover - `python -m benchmarks.cli.validate`
    sys.exit(validate_main())


if __name__ == "__main__":  # pragma: no cover
    _main()
