"""Files the project writes and reads: atomic writers, the assets folder, the git commit.

One copy of each, used by every layer above (``benchmarks`` re-exports the writers from
``benchmarks.results_io``):

* :func:`write_bytes_atomic` / :func:`write_text_atomic` / :func:`write_json_atomic`: a
  fsynced temporary file in the same folder, then ``os.replace`` (atomic on POSIX), so a
  reader never sees half a file and a crash leaves the old one;
* :func:`assets_dir`: what ships (prompts, function bases, adapters, models), from
  ``LD_GYM_ASSETS`` when set, else the checkout's ``assets/``;
* :func:`git_commit`: the commit the results came from, for run records.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

#: the checkout (or install) root: the folder holding ld_envs/, ld_agents/, benchmarks/
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def assets_dir() -> Path:
    """The project's ``assets/`` folder (``LD_GYM_ASSETS`` overrides it)."""
    env = os.environ.get("LD_GYM_ASSETS")
    if env:
        return Path(env)
    installed = Path(__file__).resolve().parent / "_assets"  # a non-editable install
    return installed if installed.is_dir() else PROJECT_ROOT / "assets"


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write bytes to ``path`` through a fsynced temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it owner-only; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write text to ``path`` through a temporary file and ``os.replace``."""
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path | str, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The project's git commit (``-dirty`` when the tree has changes; ``unknown`` without git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.stdout.strip() else "")
