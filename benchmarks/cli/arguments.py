"""Argument types shared by the commands (argparse ``type=`` callables).

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


__all__ = ["in_file", "in_path", "out_path"]
