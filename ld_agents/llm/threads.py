"""How many CPU threads torch uses, in this process and in a sweep's worker processes.

The default is the physical cores this process may run on: the CPUs of its affinity
(``taskset``, a container's cpuset), each core counted once however many hardware threads
it has, and no more than a cgroup CPU quota allows. With ``W`` workers (a sweep's
``process`` or ``ray`` executor) each worker gets ``max(1, cores // W)``, so that together
they do not oversubscribe the cores: two workers on two cores each running torch on two
threads run slower than one. ``OMP_NUM_THREADS``, when set, is the user's choice and wins,
in the process and in every worker; a number a caller requests (a sweep's
``RunOptions(threads=N)``) wins over both.

:func:`plan_threads` decides; :func:`use_threads` applies a number in this process (and,
for a worker, in the variables a torch imported later starts from); :func:`configure_torch`
gives a loaded torch the process's number (a sweep calls it once a chunk's policies are
built, since a model backend imports torch on demand).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: the variables torch's OpenMP and MKL thread pools start from
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SYSFS_CPU = Path("/sys/devices/system/cpu")
CGROUP = Path("/sys/fs/cgroup")

#: the number :func:`use_threads` gave this process (``None``: none yet)
_chosen: int | None = None


@dataclass(frozen=True)
class ThreadPlan:
    """The torch threads of each process of a run, and why."""

    #: torch threads per process
    threads: int
    #: processes running at once (1: this process alone)
    workers: int
    #: physical cores this process may use (affinity, cgroup quota)
    cores: int
    #: ``"cores // workers"``, ``"OMP_NUM_THREADS"`` or ``"requested"``
    source: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def affinity() -> set[int]:
    """The CPUs this process may run on (all of them where affinity is unknown)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def physical_cores(cpus: Iterable[int] | None = None, sysfs: Path | str = SYSFS_CPU) -> int:
    """Distinct physical cores among ``cpus`` (default: :func:`affinity`), from the sysfs
    topology; each CPU counts as a core where the topology cannot be read."""
    cpus = sorted(affinity() if cpus is None else cpus)
    cores: set[tuple[str, str] | int] = set()
    for cpu in cpus:
        topology = Path(sysfs) / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            cores.add(cpu)
            continue
        cores.add((package, core))
    return max(1, len(cores))


def cpu_quota(root: Path | str = CGROUP) -> float | None:
    """CPUs a cgroup quota allows this process (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_*``),
    or ``None`` when there is no quota."""
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cores() -> int:
    """Physical cores of the affinity, capped by the cgroup quota (rounded up)."""
    cores = physical_cores()
    quota = cpu_quota()
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def user_threads() -> int | None:
    """``OMP_NUM_THREADS`` when it holds a positive integer, else ``None``."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def plan_threads(workers: int = 1, requested: int | None = None) -> ThreadPlan:
    """The torch threads of each of ``workers`` processes (see the module docstring);
    ``requested`` (a caller's explicit number) wins over everything."""
    workers = max(1, int(workers))
    cores = usable_cores()
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be >= 1, got {requested}")
        return ThreadPlan(int(requested), workers, cores, "requested")
    user = user_threads()
    if user is not None:
        return ThreadPlan(user, workers, cores, "OMP_NUM_THREADS")
    return ThreadPlan(max(1, cores // workers), workers, cores, "cores // workers")


def torch_threads() -> int | None:
    """Torch's intra-op threads in this process, or ``None`` when torch is not loaded."""
    torch = sys.modules.get("torch")
    get = getattr(torch, "get_num_threads", None)
    return int(get()) if callable(get) else None


def use_threads(threads: int, *, environ: bool = False) -> None:
    """Make ``threads`` this process's torch threads: now when torch is loaded, later
    through :func:`configure_torch`; ``environ`` also sets :data:`THREAD_VARS` (for a worker
    process: a torch imported later, and the worker's own children, start from them)."""
    global _chosen
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    _chosen = int(threads)
    if environ:
        for name in THREAD_VARS:
            os.environ[name] = str(_chosen)
    configure_torch()


def configure_torch() -> int | None:
    """Give a loaded torch this process's threads (those of :func:`use_threads`, else
    :func:`plan_threads` for one process); return them, or ``None`` without torch."""
    current = torch_threads()
    if current is None:
        return None
    wanted = _chosen if _chosen is not None else plan_threads().threads
    if current != wanted:
        sys.modules["torch"].set_num_threads(wanted)
    return wanted


__all__ = [
    "THREAD_VARS",
    "ThreadPlan",
    "affinity",
    "configure_torch",
    "cpu_quota",
    "physical_cores",
    "plan_threads",
    "torch_threads",
    "usable_cores",
    "use_threads",
    "user_threads",
]
