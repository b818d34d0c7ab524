"""What a sweep costs over the bare env loop, and how long the baseline sweeps take.

Two measurements, in one run:

1. **Overhead.** The same episodes of one policy are played three times, interleaved: by a
   bare loop (``gym.make``, ``reset(seed)``, ``act``/``step``; nothing written), and by
   :func:`benchmarks.sweep.run_sweep` (serial executor, no progress bar) into a fresh
   folder, which adds the manifest, the record building, one ``os.write`` per episode, the
   folder lock and the git commit look-up: once with the batched ``fsync`` of
   :mod:`benchmarks.results_io` (the default) and once with one ``fsync`` per record
   (``sync_every=1``, how sweeps wrote before). The best of ``--repeats`` of each is kept;
   the report gives the ratios and the overhead per episode in milliseconds, in wall time
   and in CPU time of this process (``time.process_time``: on a shared machine it is the
   steadier figure, since it leaves out waiting for the CPU and for the disk), and the
   median over the repeats of each repeat's own ratio (its runs ran back to back, under
   about the same load).
2. **Baselines.** The wall time of a fresh 200-episode sweep of every non-LLM baseline
   registered for each env (``--baselines``).

The JSON output records the CPU (:func:`ld_agents.llm.hardware.cpu_info`), the load
average and the torch threads a sweep would use beside the figures.

    python -m benchmarks.studies.sweep_overhead [--env Pursuit-v0] [--policy random]
        [--episodes 200] [--repeats 7] [--baselines] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.games import build_env, build_policy
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, run_sweep
from ld_agents.files import git_commit
from ld_agents.llm.hardware import cpu_info
from ld_agents.llm.threads import plan_threads
from ld_agents.seeding import episode_seed, policy_seed

logger = logging.getLogger(__name__)

#: policies that need no model, by env (those registered are measured)
BASELINES = ("scripted", "random", "random_blind", "dealer", "optimal")
ENVS = ("Pursuit-v0", "PursuitRestricted-v0", "TwentyOne-v0")


@dataclass
class Overhead:
    env_id: str
    policy: str
    episodes: int
    bare_s: float
    sweep_s: float
    #: of ``sweep_s``, the time in fsync (batched; grows with disk contention), and how many
    fsync_s: float
    #: CPU seconds of this process (best of the repeats)
    bare_cpu_s: float
    sweep_cpu_s: float
    fsyncs: int = 0
    #: the same sweep with one fsync per record (``sync_every=1``): wall, CPU, fsync seconds
    per_record_s: float = 0.0
    per_record_cpu_s: float = 0.0
    per_record_fsync_s: float = 0.0
    #: every repeat's seconds, in order (``bare``, ``bare_cpu``, ``sweep``, ``sweep_cpu``,
    #: ``per_record``, ``per_record_cpu``): the runs of one repeat ran back to back
    samples: dict[str, list[float]] = field(default_factory=dict)

    def paired_ratio(self, name: str, base: str = "bare") -> float:
        """The median over the repeats of ``name / base`` within a repeat: the figure least
        moved by load on a shared machine, since a repeat's runs meet about the same load."""
        pairs = zip(self.samples[name], self.samples[base], strict=True)
        return statistics.median(a / b for a, b in pairs)

    @property
    def ratio(self) -> float:
        return self.sweep_s / self.bare_s

    @property
    def overhead_ms_per_episode(self) -> float:
        return 1000 * (self.sweep_s - self.bare_s) / self.episodes

    @property
    def ratio_without_fsync(self) -> float:
        return (self.sweep_s - self.fsync_s) / self.bare_s

    @property
    def cpu_ratio(self) -> float:
        return self.sweep_cpu_s / self.bare_cpu_s

    @property
    def cpu_overhead_ms_per_episode(self) -> float:
        return 1000 * (self.sweep_cpu_s - self.bare_cpu_s) / self.episodes

    @property
    def per_record_ratio(self) -> float:
        return self.per_record_s / self.bare_s

    @property
    def per_record_cpu_ratio(self) -> float:
        return self.per_record_cpu_s / self.bare_cpu_s

    def to_json(self) -> dict[str, Any]:
        names = ("ratio", "overhead_ms_per_episode", "ratio_without_fsync", "cpu_ratio")
        names += ("cpu_overhead_ms_per_episode", "per_record_ratio", "per_record_cpu_ratio")
        paired = {
            "ratio": self.paired_ratio("sweep"),
            "cpu_ratio": self.paired_ratio("sweep_cpu", "bare_cpu"),
            "per_record_ratio": self.paired_ratio("per_record"),
            "per_record_cpu_ratio": self.paired_ratio("per_record_cpu", "bare_cpu"),
        }
        return {
            **asdict(self),
            **{name: getattr(self, name) for name in names},
            "median_paired": paired,
        }


def bare_loop(env_id: str, policy: str, episodes: int, seed: int = 0) -> tuple[float, list]:
    """Play the sweep's episodes without the sweep; return seconds and the outcomes."""
    spec = PolicySpec(policy)
    env = build_env(env_id, {})
    agent = build_policy(spec, env_id, {})
    outcomes = []
    t0 = time.perf_counter()
    for i in range(episodes):
        obs, info = env.reset(seed=episode_seed(seed, i))
        agent.reset(seed=policy_seed(seed, i))
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            done = terminated or truncated
        outcomes.append((info["outcome"], info.get("steps")))
    elapsed = time.perf_counter() - t0
    env.close()
    return elapsed, outcomes


def sweep_once(
    env_id: str, policies: list[str], episodes: int, seed: int = 0, sync_every: int | None = None
) -> tuple[float, Any]:
    """One fresh sweep into a temporary folder; return seconds and the result
    (``sync_every``: fsync after this many records; ``None``: the default)."""
    seconds, _, result = _timed_sweep(env_id, policies, episodes, seed, sync_every)
    return seconds, result


def _timed_sweep(
    env_id: str, policies: list[str], episodes: int, seed: int, sync_every: int | None
) -> tuple[float, float, Any]:
    """(wall s, CPU s, result) of one fresh sweep (from the spec to the return of
    ``run_sweep``; making and deleting the temporary folder left out)."""
    options = RunOptions(progress=False)
    if sync_every is not None:
        options = RunOptions(progress=False, sync_every=sync_every)
    with tempfile.TemporaryDirectory(prefix="ld-gym-overhead-") as folder:
        t0, c0 = time.perf_counter(), time.process_time()
        spec = SweepSpec(env_id, [PolicySpec(p) for p in policies], episodes, seed)
        result = run_sweep(spec, folder, options)
        return time.perf_counter() - t0, time.process_time() - c0, result


def measure_overhead(env_id: str, policy: str, episodes: int, repeats: int) -> Overhead:
    bare, bare_cpu = [], []
    runs: dict[str, list[tuple]] = {"batched": [], "per_record": []}
    bare_loop(env_id, policy, 1)  # warm up: the first use imports and registers
    _timed_sweep(env_id, [policy], 1, 0, None)
    for _ in range(repeats):  # interleaved, so that machine load hits all alike
        c0 = time.process_time()
        seconds, outcomes = bare_loop(env_id, policy, episodes)
        bare_cpu.append(time.process_time() - c0)
        bare.append(seconds)
        for name, sync_every in (("batched", None), ("per_record", 1)):
            runs[name].append(_timed_sweep(env_id, [policy], episodes, 0, sync_every))
            result = runs[name][-1][2]
            got = [
                (r["outcome"], r["steps"])
                for r in sorted(result.records, key=lambda r: r["episode"])
            ]
            if env_id.startswith("Pursuit") and got != outcomes:
                raise AssertionError("the sweep and the bare loop played different episodes")
    fast = min(runs["batched"], key=lambda run: run[0])
    slow = min(runs["per_record"], key=lambda run: run[0])
    samples = {"bare": bare, "bare_cpu": bare_cpu}
    for name, key in (("batched", "sweep"), ("per_record", "per_record")):
        samples[key] = [run[0] for run in runs[name]]
        samples[f"{key}_cpu"] = [run[1] for run in runs[name]]
    return Overhead(
        env_id,
        policy,
        episodes,
        bare_s=min(bare),
        sweep_s=fast[0],
        fsync_s=fast[2].sync_seconds,
        bare_cpu_s=min(bare_cpu),
        sweep_cpu_s=min(run[1] for run in runs["batched"]),
        fsyncs=fast[2].syncs,
        per_record_s=slow[0],
        per_record_cpu_s=min(run[1] for run in runs["per_record"]),
        per_record_fsync_s=slow[2].sync_seconds,
        samples=samples,
    )


def baseline_sweeps(episodes: int) -> list[dict[str, Any]]:
    """Wall time of a fresh sweep of each registered non-LLM baseline, env by env."""
    from ld_agents.base import known_policies

    rows = []
    for env_id in ENVS:
        try:
            known = known_policies(env_id)
        except Exception as exc:  # an env whose module is not there yet
            logger.warning("skipping %s: %s", env_id, exc)
            continue
        for policy in (p for p in BASELINES if p in known):
            seconds, result = sweep_once(env_id, [policy], episodes)
            outcomes: dict[str, int] = {}
            for r in result.records:
                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            rows.append(
                {
                    "env_id": env_id,
                    "policy": policy,
                    "episodes": episodes,
                    "seconds": seconds,
                    "outcomes": outcomes,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Pursuit-v0", help="env id to measure")
    parser.add_argument("--policy", default="random", help="random: 100-step episodes")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per measurement")
    parser.add_argument(
        "--repeats", type=int, default=7, help="best (and median) of this many runs"
    )
    parser.add_argument("--baselines", action="store_true", help="also time every baseline")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    for flag in ("episodes", "repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    from ld_agents.base import known_policies
    from ld_envs.errors import LdGymError

    try:
        known = known_policies(args.env)
    except LdGymError as exc:  # an unknown --env
        parser.error(str(exc))
    if args.policy not in known:
        parser.error(f"--policy {args.policy!r} is not a policy of {args.env}")

    load_start = os.getloadavg()
    result = measure_overhead(args.env, args.policy, args.episodes, args.repeats)
    print(
        f"{result.env_id} / {result.policy}, {result.episodes} episodes (best of "
        f"{args.repeats}): bare loop {result.bare_s:.3f} s, sweep {result.sweep_s:.3f} s, "
        f"ratio {result.ratio:.3f}, overhead {result.overhead_ms_per_episode:.2f} ms/episode; "
        f"{result.fsyncs} fsync(s), {result.fsync_s:.3f} s"
    )
    print(
        f"  CPU time: bare loop {result.bare_cpu_s:.3f} s, sweep {result.sweep_cpu_s:.3f} s, "
        f"ratio {result.cpu_ratio:.3f}, overhead {result.cpu_overhead_ms_per_episode:.2f} "
        f"ms/episode"
    )
    print(
        f"  one fsync per record (sync_every=1): sweep {result.per_record_s:.3f} s, ratio "
        f"{result.per_record_ratio:.3f} (fsync {result.per_record_fsync_s:.3f} s); CPU "
        f"{result.per_record_cpu_s:.3f} s, ratio {result.per_record_cpu_ratio:.3f}"
    )
    paired = result.to_json()["median_paired"]
    print(
        f"  median of the paired ratios: wall {paired['ratio']:.3f}, CPU "
        f"{paired['cpu_ratio']:.3f}; one fsync per record: wall "
        f"{paired['per_record_ratio']:.3f}, CPU {paired['per_record_cpu_ratio']:.3f}"
    )
    out: dict[str, Any] = {
        "commit": git_commit(),
        "command": "python -m benchmarks.studies.sweep_overhead "
        + shlex.join(argv or sys.argv[1:]),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpu": json.loads(json.dumps(cpu_info(), default=sorted)),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": plan_threads().to_json(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "repeats": args.repeats,
        "overhead": result.to_json(),
    }
    if args.baselines:
        rows = baseline_sweeps(args.episodes)
        for row in rows:
            print(
                f"{row['env_id']:<22} {row['policy']:<13} {row['episodes']} episodes "
                f"{row['seconds']:6.2f} s  {row['outcomes']}"
            )
        out["baselines"] = rows
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
