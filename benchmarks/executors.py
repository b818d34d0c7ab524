"""Where chunks run: this process, local worker processes, or Ray.

Every executor runs the same :func:`benchmarks.rollout.run_chunk` on the same
:class:`~benchmarks.specs.ChunkTask` and hands the records to the parent's ``sink``,
which alone writes the results file; so the records are the same on every executor.

Threads: each process that plays chunks gives torch the ``threads`` the caller planned
(:func:`ld_agents.llm.threads.plan_threads`: the physical cores, split among the workers),
this process directly and each worker in its initializer (a Ray worker before each
chunk), so that W workers never run W times the cores' threads.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.rollout import run_chunk
from benchmarks.specs import ChunkTask
from ld_agents.llm.threads import use_threads
from ld_envs.errors import InvalidArgument

EXECUTORS = ("serial", "process", "ray")


def _worker_init(parent: int, threads: int | None = None) -> None:
    """Worker initializer: set the torch threads, leave Ctrl-C to the parent, and exit when
    the parent dies.

    The parent stops its workers on Ctrl-C or an error; after ``kill -9`` it cannot, so
    each worker checks once a second that its parent is still there.
    """
    if threads is not None:
        use_threads(threads, environ=True)  # before any model imports torch
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="ld-gym-parent-watch", daemon=True).start()


def execute(
    tasks: Sequence[ChunkTask],
    executor: str,
    workers: int,
    sink: Callable[[list[dict[str, Any]]], None],
    threads: int | None = None,
) -> None:
    """Run every task on ``executor`` and pass each batch of records to ``sink``.

    ``serial`` passes records one episode at a time, as they end; ``process`` and ``ray``
    pass a chunk's records when the chunk ends. An error or Ctrl-C stops the workers and
    propagates; whatever reached ``sink`` before stays written. ``threads``: torch threads
    of each process that plays (``None``: leave them as they are).
    """
    if executor == "serial" or not tasks:
        if threads is not None:
            use_threads(threads)
        for task in tasks:
            run_chunk(task, on_record=lambda rec: sink([rec]))
    elif executor == "process":
        _execute_processes(tasks, workers, sink, threads)
    elif executor == "ray":
        _execute_ray(tasks, workers, sink, threads)
    else:  # guarded by RunOptions
        raise AssertionError(executor)


def process_pool(workers: int, threads: int | None = None) -> Any:
    """A pool of ``workers`` spawned processes set up by :func:`_worker_init`."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: LLM backends (torch, vLLM) and threads do not survive a fork
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(), threads),
    )


def _execute_processes(
    tasks: Sequence[ChunkTask],
    workers: int,
    sink: Callable[[list[dict[str, Any]]], None],
    threads: int | None,
) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait

    pool = process_pool(min(workers, len(tasks)), threads)
    clean = False
    try:
        pending = {pool.submit(run_chunk, t) for t in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                sink(fut.result())
        clean = True
    finally:
        if not clean:  # error or Ctrl-C: stop the workers now; written lines stay
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
        pool.shutdown(wait=clean, cancel_futures=True)


def _run_chunk_with_threads(
    task: ChunkTask,
    threads: int | None,
    modules: Sequence[str] = (),
    paths: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """A Ray task: set the worker's torch threads (Ray reuses workers), import the modules
    that registered the sweep's own policies (from the driver's import ``paths``), then
    play. Ray workers run none of the driver's code, so its registrations are not there."""
    if threads is not None:
        use_threads(threads, environ=True)
    for path in paths:
        if path not in sys.path:
            sys.path.append(path)
    for module in modules:
        importlib.import_module(module)
    return run_chunk(task)


def user_policy_modules(tasks: Sequence[ChunkTask]) -> list[str]:
    """The modules outside ld-gym that registered the tasks' policies (a user's
    ``my_policies``), for workers that import nothing of the driver's; a policy registered
    in a script run as ``__main__`` cannot be imported there and is left out."""
    from ld_agents.base import factory

    own = ("ld_agents", "ld_envs", "benchmarks", "__main__")
    found: list[str] = []
    for task in tasks:
        module = getattr(factory(task.policy.name, task.env_id), "__module__", None) or ""
        if module and module.split(".")[0] not in own and module not in found:
            found.append(module)
    return found


def _execute_ray(
    tasks: Sequence[ChunkTask],
    workers: int,
    sink: Callable[[list[dict[str, Any]]], None],
    threads: int | None,
) -> None:
    try:
        import ray
    except ImportError:
        raise InvalidArgument(
            "executor 'ray' needs Ray: pip install 'ld-gym[ray]' (or use --executor process)"
        ) from None
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(logging_level=logging.WARNING)  # connect to the running cluster
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        started = True
    remote = ray.remote(num_cpus=1, max_retries=0)(_run_chunk_with_threads)
    modules, paths = user_policy_modules(tasks), [p or os.getcwd() for p in sys.path]
    refs = [remote.remote(t, threads, modules, paths) for t in tasks]
    clean = False
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                sink(ray.get(ref))
        clean = True
    finally:
        if not clean:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
