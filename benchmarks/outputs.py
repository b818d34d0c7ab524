"""Where the sweep commands write, checked before their work starts.

The rules are :mod:`ld_agents.files`' (never replace a file the command did not make,
unless ``--overwrite``); this module names what a sweep folder and the tables folder of
``ld-gym reproduce`` hold, so that ``bench``, ``demo`` and ``reproduce`` ask the same
question the same way:

* a sweep folder holding its ``sweep.json`` is that sweep's own: a rerun resumes it and
  remakes its tables (:func:`check_sweep_folder`); a ``sweep.json`` that is not a sweep
  record of ld-gym is refused, and replaced only with ``--overwrite``;
* any other folder may be used when it holds none of the files a sweep writes (a
  ``table.md`` of the user's is never replaced without ``--overwrite``);
* the tables folder of ``reproduce`` is its own when it holds ``reproduce.json``
  (:func:`check_tables_folder`).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.results_io import (
    EPISODES_FILE,
    MANIFEST_FILE,
    manifest_problem,
    not_a_sweep_record,
)
from ld_agents.files import check_output_folder

#: what a sweep writes in its folder (the run, its journal and its tables)
SWEEP_FILES = (MANIFEST_FILE, EPISODES_FILE, "journal", "table.md", "table.csv", "paired.csv")
#: the run record and summary ``ld-gym reproduce`` writes in its output folder
REPRODUCE_LOG = "reproduce.json"
REPRODUCE_FILES = (REPRODUCE_LOG, "README.md")


def check_sweep_folder(
    folder: Path | str | None, *, overwrite: bool = False, option: str = "--out"
) -> Path:
    """May a sweep (and its tables) be written to ``folder``? Return it, or raise
    :class:`~ld_envs.errors.OutputExists` / :class:`~ld_envs.errors.InvalidArgument`, or
    :class:`~benchmarks.results_io.SweepMismatch` for a ``sweep.json`` that is not a sweep
    record of ld-gym (replaced only with ``overwrite``)."""
    folder = check_output_folder(
        folder, SWEEP_FILES, overwrite=overwrite, option=option, resume=MANIFEST_FILE
    )
    problem = manifest_problem(folder)
    if problem is not None and not overwrite:
        raise not_a_sweep_record(folder, problem, option)
    return folder


def check_tables_folder(
    folder: Path | str | None,
    sweeps: list[str],
    *,
    overwrite: bool = False,
    option: str = "--out",
) -> Path:
    """May ``reproduce`` write its log, its README and the sweep folders ``sweeps`` to
    ``folder``? Each sweep folder is checked as :func:`check_sweep_folder` does."""
    folder = check_output_folder(
        folder, REPRODUCE_FILES, overwrite=overwrite, option=option, resume=REPRODUCE_LOG
    )
    for name in sweeps:
        check_sweep_folder(folder / name, overwrite=overwrite, option=option)
    return folder


__all__ = [
    "REPRODUCE_FILES",
    "REPRODUCE_LOG",
    "SWEEP_FILES",
    "check_sweep_folder",
    "check_tables_folder",
]
