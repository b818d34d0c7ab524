"""Shared test set-up: headless pygame, no progress bars; the ``cli`` fixture."""

import os
from collections.abc import Callable

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("CI", "1")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str]]:
    """Run ``ld-gym ARGV`` in this process: ``cli(argv) -> (exit status, stderr)``."""
    from benchmarks.cli.main import main

    def run(argv: list[str]) -> tuple[int, str]:
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: a bad argument while parsing
            rc = int(exc.code or 0)
        return rc, capsys.readouterr().err

    return run
