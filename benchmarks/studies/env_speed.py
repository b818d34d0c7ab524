"""Steps per second of the ld-gym envs against Gymnasium's Blackjack-v1, in one run.

Every env is built with ``gym.make`` (so each carries the same default wrappers) and
stepped with actions drawn beforehand from a seeded generator, so the loop measures the
env and not the policy. Resets are included in the time. Pursuit is measured twice:
with pursuers that stay (long episodes, every step a full pursuer + evader turn) and with
random offsets (short episodes, many violations and resets).

    python -m benchmarks.studies.env_speed [--steps 100000] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import ld_envs  # noqa: F401  (registers the ids)


@dataclass
class Case:
    label: str
    env_id: str
    kwargs: dict[str, Any]
    actions: str  # "stay", "random_offsets" or "random_binary"


CASES = [
    Case("Blackjack-v1 (baseline)", "Blackjack-v1", {}, "random_binary"),
    Case("Pursuit-v0 greedy, stay", "Pursuit-v0", {"evader": "greedy"}, "stay"),
    Case("Pursuit-v0 greedy, random", "Pursuit-v0", {"evader": "greedy"}, "random_offsets"),
    Case("Pursuit-v0 random evader, stay", "Pursuit-v0", {"evader": "random"}, "stay"),
    Case("PursuitRestricted-v0 greedy, stay", "PursuitRestricted-v0", {}, "stay"),
    Case("TwentyOne-v0 dealer", "TwentyOne-v0", {}, "random_binary"),
]


def draw_actions(kind: str, n: int, rng: np.random.Generator) -> list[Any]:
    if kind == "stay":
        return [np.zeros(3, dtype=np.int64)] * n
    if kind == "random_offsets":
        return list(rng.integers(0, 13, size=(n, 3)))
    return [int(a) for a in rng.integers(0, 2, size=n)]


def measure(case: Case, steps: int, seed: int = 0) -> float:
    """Steps per second of one case (resets included)."""
    env = gym.make(case.env_id, **case.kwargs)
    actions = draw_actions(case.actions, steps, np.random.default_rng(seed))
    env.reset(seed=seed)
    step, reset = env.step, env.reset
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = step(a)
        if terminated or truncated:
            reset()
    return steps / (time.perf_counter() - start)


def run(steps: int, repeats: int) -> list[dict[str, Any]]:
    """Best of ``repeats`` for every case, interleaved so load affects all alike."""
    best = {c.label: 0.0 for c in CASES}
    for r in range(repeats):
        for case in CASES:
            best[case.label] = max(best[case.label], measure(case, steps, seed=r))
    base = best[CASES[0].label]
    return [
        {**asdict(c), "steps_per_s": best[c.label], "ratio_vs_blackjack": best[c.label] / base}
        for c in CASES
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("steps", "repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    rows = run(args.steps, args.repeats)
    print(f"{'case':<36} {'steps/s':>10} {'x Blackjack':>12}")
    for row in rows:
        print(f"{row['label']:<36} {row['steps_per_s']:>10,.0f} {row['ratio_vs_blackjack']:>12.2f}")
    if args.json:
        meta = {
            "machine": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        }
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
