"""Per-call latency of sandboxed function code: long-lived worker vs a fresh process.

Three ways to run the same checked function, on the same inputs:

- ``in-process``: the source exec'd in this interpreter (no isolation; the floor);
- ``long-lived worker``: :class:`ld_agents.ld.sandbox.SandboxWorker`, loaded once, one JSON
  message round trip per call (what the LD policy uses);
- ``fresh process``: :func:`ld_agents.ld.sandbox.run_isolated`, a new limited worker per
  call (start, limits, static check, load, call, stop).

Functions: a one-line distance, and the pursuit base's ``encircle_evader`` on the
Figure 5 start (a real stage, ~40 candidate cells in, 3 targets out). A last row times a
whole 4-stage pursuit decision of the ground-truth chain in the long-lived worker.

    python -m benchmarks.studies.sandbox_speed [--calls 2000] [--fresh 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from ld_agents.ld.base import shipped_base
from ld_agents.ld.sandbox import SandboxWorker, run_isolated
from ld_envs.pursuit import PRESETS

DISTANCE = "def distance(a, b):\n    return abs(a[0] - b[0]) + abs(a[1] - b[1])\n"


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _row(label: str, how: str, times: list[float]) -> dict[str, Any]:
    return {
        "function": label,
        "mode": how,
        "calls": len(times),
        "median_us": statistics.median(times) * 1e6,
        "mean_us": statistics.fmean(times) * 1e6,
    }


def _measure(
    label: str, source: str, call_args: list[Any], worker: SandboxWorker, calls: int, fresh: int
) -> list[dict[str, Any]]:
    """The three modes on one function."""
    namespace: dict[str, Any] = {}
    exec(compile(source, label, "exec"), namespace)  # trusted shipped code, the floor
    fn = namespace[label]
    worker.load(label, source)
    worker.call(label, call_args)  # warm
    return [
        _row(label, "in-process", _timed(lambda: fn(*call_args), calls)),
        _row(label, "long-lived worker", _timed(lambda: worker.call(label, call_args), calls)),
        _row(label, "fresh process", _timed(lambda: run_isolated(source, label, call_args), fresh)),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per long-lived case")
    parser.add_argument("--fresh", type=int, default=20, help="calls per fresh-process case")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)

    base = shipped_base("pursuit")
    preset = PRESETS["figure5"]
    state = {
        "size": 21,
        "pursuers": [list(p) for p in preset["pursuers"]],
        "evader": list(preset["evader"]),
        "restricted": None,
    }
    encircle = base.function("encircle_evader").source
    cases = [("distance", DISTANCE, [[3, 8], [20, 18]])]
    rows = []
    with SandboxWorker() as worker:
        prev = None
        for st in base.stages[:-1]:
            prev = base.run_stage(
                worker, base.right_function(st.name, state, prev), state, prev
            ).value
        cases.append(("encircle_evader", encircle, [state, prev]))
        for label, source, call_args in cases:
            rows.extend(_measure(label, source, call_args, worker, args.calls, args.fresh))
        base.load_into(worker)
        chain = _timed(lambda: base.run_chain(worker, state), max(args.calls // 10, 10))
        rows.append(_row("pursuit decision (4 stages)", "long-lived worker", chain))
    print(
        f"sandbox per-call latency ({platform.processor() or platform.machine()}, "
        f"python {platform.python_version()})"
    )
    print(f"{'function':30s} {'mode':18s} {'calls':>6s} {'median':>12s} {'mean':>12s}")
    for r in rows:
        print(
            f"{r['function']:30s} {r['mode']:18s} {r['calls']:6d} "
            f"{r['median_us']:10.1f}us {r['mean_us']:10.1f}us"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
