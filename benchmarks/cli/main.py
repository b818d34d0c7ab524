"""The ``ld-gym`` command line: one console script, one subcommand per module.

Each subcommand lives in its own module, named in :data:`COMMANDS` (the project's one
:class:`~ld_agents.registry.Registry` type), which provides:

* ``HELP: str`` — one line for ``ld-gym --help``;
* ``configure(parser: argparse.ArgumentParser) -> None`` — adds its arguments;
* ``run(args: argparse.Namespace) -> int`` — does the work, returns the exit status.

To add a subcommand (``validate``, ``teach``, ``traces``, ``train``, ...), write such a
module and add one line to :data:`COMMANDS`; ``--help`` shows every option's default. A
module is imported only to build the parser (keep heavy imports inside ``run``); one
that cannot be imported (an optional extra missing) is listed as unavailable instead of
breaking the other subcommands.

Errors on bad input (every :class:`ld_envs.errors.LdGymError`) and file-system errors
(``OSError``: an ``--out`` that cannot be made, a file that cannot be read) print one
message to stderr and exit 1, without a traceback; ``--debug`` shows the traceback (``--debug`` and
``-v`` go before or after the subcommand). Ctrl-C exits 130. Help texts are module
docstrings shown with their Sphinx markup stripped (:func:`terminal_text`).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ld_agents.registry import Registry

#: subcommand -> module providing HELP, configure(parser), run(args); loaded on first use
COMMANDS: Registry[ModuleType] = Registry(
    "command",
    lazy={
        "bench": "benchmarks.cli.bench",
        "reproduce": "benchmarks.cli.reproduce",
        "plot": "benchmarks.cli.plot",
        "demo": "benchmarks.cli.demo",
        "validate": "benchmarks.cli.validate",
        "emergency": "benchmarks.cli.emergency",
        "emergency-suite": "benchmarks.cli.emergency_suite",
        "teach": "benchmarks.cli.teach",
        "train-ld": "benchmarks.cli.train_ld",
        "traces": "benchmarks.cli.traces",
        "train-kd": "benchmarks.cli.train_kd",
        "train-rl": "benchmarks.cli.train_rl",
        "train-writer": "benchmarks.cli.train_writer",
    },
)

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that names the closest choice of a misspelled one (a command, ``--game``,
    ``--executor``): ``invalid choice: 'bnech'; did you mean 'bench'? (choose from ...)``,
    and the closest option of a misspelled option (``--sed``: did you mean ``--seed``?)."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        from ld_envs.errors import close_match

        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = getattr(parsed, "_parser", self)  # the subcommand's, when one was named
            options = [o for a in parser._actions for o in a.option_strings]
            typo = next((e.split("=")[0] for e in extras if e.startswith("-")), None)
            close = close_match(typo, options) if typo else None
            hint = f"; did you mean {close!r}?" if close else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def _check_value(self, action: argparse.Action, value: object) -> None:
        from ld_envs.errors import close_match

        choices = action.choices
        if choices is not None and value not in choices:
            close = close_match(value, [str(c) for c in choices])
            hint = f"; did you mean {close!r}?" if close else ""
            known = ", ".join(map(repr, choices))
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {known})"
            )
        super()._check_value(action, value)


#: Sphinx roles (``:func:`~a.b.c```, ``:mod:`a.b```) and inline literals (````x````)
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


def terminal_text(text: str) -> str:
    """Docstring text as a terminal shows it: Sphinx roles become their target (``~``: the
    last name only) and inline literals lose their double backticks. Every description and
    option help of ``ld-gym`` goes through here (:class:`HelpFormatter`)."""

    def role(match: re.Match[str]) -> str:
        tilde, target = match.groups()
        return target.rsplit(".", 1)[-1] if tilde else target

    return _LITERAL.sub(r"\1", _ROLE.sub(role, text))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in ``--help`` (unless its help already says it, or it has
    none, or an empty one such as ``[]``); descriptions keep their line breaks; Sphinx
    markup is stripped (:func:`terminal_text`)."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(terminal_text(text))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = terminal_text(action.help or "")
        default = action.default
        if (
            "default" in text
            or default in (None, argparse.SUPPRESS, False)
            or (isinstance(default, (list, tuple, dict, str)) and not default)
            or action.required
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def _common_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """``--debug`` and ``-v``: on the top parser (their defaults) and on each subcommand
    (``default=SUPPRESS``: given after the subcommand, they set the same flags; not given,
    they leave the top parser's value)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show tracebacks and debug logging on errors",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log progress (INFO)"
    )


def _load(name: str) -> ModuleType | str:
    """The subcommand's module, or why it cannot be loaded (an optional extra missing)."""
    try:
        return COMMANDS.get(name)
    except ImportError as exc:
        return f"unavailable ({exc})"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="ld-gym",
        description="Logic Distillation (IJCAI 2025) as a research suite.",
        epilog="--debug and -v may also follow the subcommand (ld-gym bench ... -v).",
        formatter_class=HelpFormatter,
    )
    _common_options(parser, False)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS.names(sort=False):
        module = _load(name)
        if isinstance(module, str):
            sub.add_parser(name, help=module)
            continue
        # the module's docstring opens with its own summary line: it is the description
        # (the one-line HELP only where there is no docstring)
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=doc or module.HELP,
            formatter_class=HelpFormatter,
            parents=[common],
        )
        module.configure(p)
        p.set_defaults(_module=module, _parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ld-gym`` console script; returns the exit status."""
    from ld_envs.errors import LdGymError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = getattr(args, "_module", None)
    if module is None:
        parser.error(f"subcommand {args.command!r} is {_load(args.command)}")
    try:
        return int(module.run(args) or 0)
    except LdGymError as exc:
        if args.debug:
            raise
        print(f"ld-gym {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a path that cannot be made, read or written (--out, an input)
        if args.debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        reason = f"{exc.strerror or exc}{where}"
        print(f"ld-gym {args.command}: error: {reason} (--debug: traceback)", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            f"ld-gym {args.command}: interrupted; finished work is saved "
            f"(rerun the same command to resume)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
