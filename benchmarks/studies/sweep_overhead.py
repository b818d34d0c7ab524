"""What a sweep costs over the bare env loop, and how long the baseline sweeps take.

Two measurements, in one run:

1. **Overhead.** The same episodes of one policy are played twice: by a bare loop
   (``gym.make``, ``reset(seed)``, ``act``/``step``; nothing written) and by
   :func:`benchmarks.sweep.run_sweep` (serial executor, no progress bar) into a fresh
   folder, which adds the manifest, the record building, one fsynced ``os.write`` per
   episode, the folder lock and the git commit look-up. The best of ``--repeats`` of each
   is kept; the report gives the ratio and the overhead per episode in milliseconds, in
   wall time and in CPU time of this process (``time.process_time``: on a shared machine
   it is the steadier figure, since it leaves out waiting for the CPU and for fsync).
2. **Baselines.** The wall time of a fresh 200-episode sweep of every non-LLM baseline
   registered for each env (``--baselines``).

    python -m benchmarks.studies.sweep_overhead [--env Pursuit-v0] [--policy random]
        [--episodes 200] [--repeats 3] [--baselines] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.games import build_env, build_policy
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, run_sweep
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
    #: of ``sweep_s``, the time in fsync (one per episode; grows with disk contention)
    fsync_s: float
    #: CPU seconds of this process (best of the repeats)
    bare_cpu_s: float
    sweep_cpu_s: float

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


def sweep_once(env_id: str, policies: list[str], episodes: int, seed: int = 0) -> tuple[float, Any]:
    """One fresh sweep into a temporary folder; return seconds and the result."""
    spec = SweepSpec(env_id, [PolicySpec(p) for p in policies], episodes, seed)
    with tempfile.TemporaryDirectory(prefix="ld-gym-overhead-") as folder:
        t0 = time.perf_counter()
        result = run_sweep(spec, folder, RunOptions(progress=False))
        return time.perf_counter() - t0, result


def measure_overhead(env_id: str, policy: str, episodes: int, repeats: int) -> Overhead:
    bare, sweep, sync, bare_cpu, sweep_cpu = [], [], [], [], []
    for _ in range(repeats):  # interleaved, so that machine load hits both alike
        c0 = time.process_time()
        seconds, outcomes = bare_loop(env_id, policy, episodes)
        bare_cpu.append(time.process_time() - c0)
        bare.append(seconds)
        c0 = time.process_time()
        seconds, result = sweep_once(env_id, [policy], episodes)
        sweep_cpu.append(time.process_time() - c0)
        sweep.append(seconds)
        sync.append(result.sync_seconds)
        got = [
            (r["outcome"], r["steps"]) for r in sorted(result.records, key=lambda r: r["episode"])
        ]
        if env_id.startswith("Pursuit") and got != outcomes:
            raise AssertionError("the sweep and the bare loop played different episodes")
    best = min(range(repeats), key=lambda k: sweep[k])
    return Overhead(
        env_id, policy, episodes, min(bare), sweep[best], sync[best], min(bare_cpu), min(sweep_cpu)
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
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--baselines", action="store_true", help="also time every baseline")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)

    result = measure_overhead(args.env, args.policy, args.episodes, args.repeats)
    print(
        f"{result.env_id} / {result.policy}, {result.episodes} episodes (best of "
        f"{args.repeats}): bare loop {result.bare_s:.3f} s, sweep {result.sweep_s:.3f} s, "
        f"ratio {result.ratio:.2f}, overhead {result.overhead_ms_per_episode:.2f} ms/episode; "
        f"fsync {result.fsync_s:.3f} s of it, ratio without fsync {result.ratio_without_fsync:.2f}"
    )
    print(
        f"  CPU time: bare loop {result.bare_cpu_s:.3f} s, sweep {result.sweep_cpu_s:.3f} s, "
        f"ratio {result.cpu_ratio:.2f}, overhead {result.cpu_overhead_ms_per_episode:.2f} "
        f"ms/episode"
    )
    out: dict[str, Any] = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "overhead": {
            **asdict(result),
            "ratio": result.ratio,
            "overhead_ms_per_episode": result.overhead_ms_per_episode,
            "ratio_without_fsync": result.ratio_without_fsync,
            "cpu_ratio": result.cpu_ratio,
            "cpu_overhead_ms_per_episode": result.cpu_overhead_ms_per_episode,
        },
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
