"""Files the project writes and reads: atomic writers, the assets folder, the git commit.

One copy of each, used by every layer above (``benchmarks`` re-exports the writers from
``benchmarks.results_io``):

* :func:`write_bytes_atomic` / :func:`write_text_atomic` / :func:`write_json_atomic`: a
  fsynced temporary file in the same folder, then ``os.replace`` (atomic on POSIX), so a
  reader never sees half a file and a crash leaves the old one;
* :func:`assets_dir`: what ships (prompts, function bases, adapters, models), from
  ``LD_GYM_ASSETS`` when set, else the checkout's ``assets/``;
* :func:`git_commit`: the commit the results came from, for run records;
* :func:`check_output_file` / :func:`check_output_folder`: "may I write here?", asked by every
  command before its work starts (see Outputs below).

Outputs. A command never replaces a file it did not make unless the user asks
(``--overwrite``, ``overwrite=True``). What "made" means, in order:

* a resume of the command's own run: the folder holds the run's own record (a sweep's
  ``sweep.json``, ``reproduce.json``, a training run's record), named by ``resume``;
* a file ld-gym wrote and recorded with :func:`mark_made` (a record per folder in the
  cache, :func:`made_records_dir`, keeps each such file's SHA-256; nothing is added to the
  user's folder) and that nobody changed since, when the output may be remade
  (``replaceable=True``: tables, figures, reports). Costly data (traces, adapters,
  models) is never replaceable: remaking it needs ``--overwrite``.

An empty path (``--out ''``) is refused (it would mean the current folder), as are a file
where a folder is expected and a folder where a file is expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument, OutputExists

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


# ---------------------------------------------------------------------------- may I write here


def made_records_dir() -> Path:
    """Where :func:`mark_made` keeps its records: ``made/`` in the project's cache
    (``$LD_GYM_CACHE``, else ``~/.cache/ld-gym``)."""
    env = os.environ.get("LD_GYM_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "ld-gym") / "made"


def _record_of(folder: Path) -> Path:
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
    return made_records_dir() / f"{key}.json"


def output_path(path: Path | str | None, *, option: str = "--out") -> Path:
    """``path`` as a :class:`Path`; an empty one (``--out ''``) is refused."""
    if path is None or not str(path).strip():
        raise InvalidArgument(
            f"{option} is empty; give a path (e.g. {option} runs/NAME; '.' for this folder)"
        )
    return Path(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _made(folder: Path) -> dict[str, str]:
    try:
        made = json.loads(_record_of(folder).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return made if isinstance(made, dict) else {}


def made_here(path: Path | str) -> bool:
    """Whether ld-gym wrote ``path`` (:func:`mark_made`) and it is unchanged since."""
    path = Path(path)
    recorded = _made(path.parent).get(path.name)
    return recorded is not None and path.is_file() and recorded == _sha256(path)


def mark_made(paths: Iterable[Path | str]) -> None:
    """Record files just written, so that the same command may remake them later."""
    by_folder: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        by_folder.setdefault(path.parent, []).append(path)
    for folder, files in by_folder.items():
        made = {n: h for n, h in _made(folder).items() if (folder / n).exists()}
        made.update({p.name: _sha256(p) for p in files if p.is_file()})
        record = _record_of(folder)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, {"folder": str(folder.resolve()), "files": made})


def _refuse(clashes: list[Path], option: str, replaceable: bool) -> OutputExists:
    one = len(clashes) == 1
    listed = ", ".join(str(p) for p in clashes)
    why = (
        f" and {'was' if one else 'were'} not written by this command (or changed since)"
        if replaceable
        else ""
    )
    return OutputExists(
        f"{option}: {listed} already exist{'s' if one else ''}{why}; pass --overwrite to "
        f"replace {'it' if one else 'them'}, or choose another path"
    )


def check_output_file(
    path: Path | str | None,
    *,
    overwrite: bool = False,
    option: str = "--out",
    replaceable: bool = True,
) -> Path:
    """May a command write the file ``path``? Return it as a :class:`Path`, or raise.

    Refused: an empty path, a folder, a path under a file, and an existing file unless
    ``overwrite`` or (``replaceable``) ld-gym made it and it is unchanged (:func:`made_here`).
    """
    path = output_path(path, option=option)
    if path.is_dir():
        raise InvalidArgument(
            f"{option} {path} is a folder; give a file path (e.g. {path / 'report.json'})"
        )
    _check_parents(path, option)
    if path.exists() and not overwrite and not (replaceable and made_here(path)):
        raise _refuse([path], option, replaceable)
    return path


def check_output_folder(
    folder: Path | str | None,
    names: Iterable[str] = (),
    *,
    overwrite: bool = False,
    option: str = "--out",
    resume: str | None = None,
    replaceable: bool = True,
) -> Path:
    """May a command write the files ``names`` into ``folder``? Return it, or raise.

    Refused: an empty path, a file, a path under a file, and a folder already holding one of
    ``names`` (files or folders; a name with ``*`` is a glob pattern, e.g.
    ``checkpoint-*``) unless ``overwrite``, or the folder holds the run record
    ``resume`` (the command's own run, resumed), or (``replaceable``) ld-gym made that file
    and it is unchanged. Other files in the folder are never touched, so they do not count.
    """
    folder = output_path(folder, option=option)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument(
            f"{option} {folder} is a file; give a folder (e.g. {folder.with_suffix('')}-out)"
        )
    _check_parents(folder, option)
    if overwrite or not folder.is_dir() or (resume and (folder / resume).is_file()):
        return folder
    found = [p for n in names for p in (sorted(folder.glob(n)) if "*" in n else [folder / n])]
    clashes = [p for p in found if p.exists() and not (replaceable and made_here(p))]
    if clashes:
        raise _refuse(clashes, option, replaceable)
    return folder


def _check_parents(path: Path, option: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidArgument(f"{option} {path}: {parent} is a file, not a folder")
            return
