"""Torch threads: physical cores of the affinity, split among workers, set in workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.executors import process_pool
from ld_agents.llm import threads
from ld_agents.llm.threads import cpu_quota, physical_cores, plan_threads, use_threads


def _topology(root: Path, cpu: int, package: int, core: int) -> None:
    folder = root / f"cpu{cpu}" / "topology"
    folder.mkdir(parents=True)
    (folder / "physical_package_id").write_text(f"{package}\n")
    (folder / "core_id").write_text(f"{core}\n")


def test_physical_cores_counts_each_core_once_among_the_given_cpus(tmp_path):
    """Two hardware threads of one core count once; cores of two packages both count; a
    CPU without topology counts as a core."""
    for cpu, (package, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0)]):
        _topology(tmp_path, cpu, package, core)
    assert physical_cores([0, 1, 2, 3, 4], tmp_path) == 3
    assert physical_cores([0, 1], tmp_path) == 1  # an affinity of one core's two threads
    assert physical_cores([0, 9], tmp_path) == 2  # cpu9 has no topology


def test_cpu_quota_reads_cgroup_v2_and_v1(tmp_path):
    """``cpu.max`` (v2) or ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (v1); none: None."""
    assert cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(tmp_path) == 2.0


def test_plan_splits_the_cores_among_workers_and_obeys_omp_num_threads(monkeypatch):
    """cores // workers, at least 1; OMP_NUM_THREADS, when set, wins; a requested number
    wins over both."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert plan_threads().threads == 8
    assert plan_threads(3).threads == 2
    assert plan_threads(16).to_json() == {
        "threads": 1,
        "workers": 16,
        "cores": 8,
        "source": "cores // workers",
    }
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    plan = plan_threads(2)
    assert (plan.threads, plan.source) == (3, "OMP_NUM_THREADS")
    assert plan_threads(2, requested=5).to_json() == {
        "threads": 5,
        "workers": 2,
        "cores": 8,
        "source": "requested",
    }


def test_use_threads_sets_a_loaded_torch_and_for_workers_the_variables(monkeypatch):
    """A loaded torch gets the number at once; ``environ`` also sets OMP/MKL_NUM_THREADS."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_chosen", None)
    for name in threads.THREAD_VARS:  # set, then removed: monkeypatch restores them after
        monkeypatch.setenv(name, "1")
        monkeypatch.delenv(name)
    try:
        use_threads(1)
        assert torch.get_num_threads() == 1 and "OMP_NUM_THREADS" not in os.environ
        use_threads(3, environ=True)
        assert torch.get_num_threads() == 3
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "3"
        assert threads.configure_torch() == 3
    finally:
        torch.set_num_threads(before)


def _worker_threads() -> tuple[int, str | None]:
    """In a pool worker: torch's threads once imported there and configured (as
    ``run_chunk`` does once a chunk's policies are built), and OMP_NUM_THREADS."""
    import torch

    threads.configure_torch()
    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


@pytest.mark.parametrize("planned", [None, 3], ids=["plan-for-2-workers", "three"])
def test_a_process_worker_runs_torch_on_the_planned_threads(planned):
    """A sweep's process worker imports torch with the threads it was given: the plan for
    two workers (half the cores here), or any number asked for."""
    pytest.importorskip("torch")
    wanted = planned or plan_threads(2).threads
    with process_pool(1, wanted) as pool:
        assert pool.submit(_worker_threads).result(timeout=300) == (wanted, str(wanted))
