"""The ld-gym command layer: one registry of commands, help for every option, defaults shown."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.cli.main import COMMANDS, build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_command_is_listed_and_loads():
    subs = _subparsers()
    assert list(subs) == COMMANDS.names(sort=False)
    for name, parser in subs.items():
        assert parser.get_default("_module") is not None, f"{name} is unavailable"


@pytest.mark.parametrize("name", COMMANDS.names(sort=False))
def test_every_option_has_help_and_its_default_shows(name):
    parser = _subparsers()[name]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"ld-gym {name} {action.option_strings or action.dest}: no help"
    text = parser.format_help()
    defaults = [
        a
        for a in parser._actions
        if a.option_strings
        and a.default not in (None, False, argparse.SUPPRESS)
        and not (isinstance(a.default, (list, tuple, dict, str)) and not a.default)
    ]
    for action in defaults:
        shown = f"(default:{action.default})".replace(" ", "")
        assert "default" in action.help or shown in "".join(text.split()), (
            f"ld-gym {name} {action.option_strings[0]}: default {action.default!r} not shown"
        )


def test_unknown_command_names_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benhc"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'benhc'" in err and "bench" in err
