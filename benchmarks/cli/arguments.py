"""Argument types shared by the commands (argparse ``type=`` callables: paths, seeds,
positive counts), and the options the LoRA training commands share. Every command's
``--seed`` is :func:`seed`, so a negative one fails the same way everywhere.

A bad value fails while the arguments are parsed, before any work: argparse prints the
usage and the message and exits with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def out_path(text: str) -> Path:
    """A path to write to; an empty one (``--out ''``) would mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "empty path; give a folder or file (e.g. runs/NAME; '.' for this folder)"
        )
    return Path(text)


def in_path(text: str) -> Path:
    """A path to read from; an empty one is refused (it would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give the file or folder to read")
    return Path(text)


def in_file(text: str) -> Path:
    """An existing file to read (a missing one, or a folder, fails while parsing)."""
    path = in_path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no file at {text}; check the path")
    return path


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def seed(text: str) -> int:
    """A seed: an integer >= 0 (numpy's seeding refuses negative ones)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be an integer >= 0, got {value}")
    return value


def seeds(text: str) -> tuple[int, ...]:
    """Comma-separated seeds (each >= 0), at least one: ``0,1000``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(
            f"give at least one seed, comma-separated (e.g. 0,1000), got {text!r}"
        )
    return tuple(seed(p) for p in parts)


def positive(text: str) -> int:
    """A count that must be at least 1 (episodes, samples, steps, workers...)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


__all__ = ["in_file", "in_path", "out_path", "positive", "seed", "seeds"]


def add_ship_options(
    parser: argparse.ArgumentParser, example: str, user: str, run_flag: str = "--out"
) -> None:
    """``--ship PATH`` and ``--overwrite`` of a LoRA training command (train-kd, train-ld,
    train-writer): ``example`` a ship folder, ``user`` what finds the adapter there."""
    parser.add_argument(
        "--ship",
        type=out_path,
        default=None,
        metavar="PATH",
        help=f"also copy the adapter and its run record here (e.g. {example}, where {user} "
        "finds it; an adapter there is replaced only with --overwrite)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace another run's files in {run_flag}, or an adapter already in --ship",
    )
