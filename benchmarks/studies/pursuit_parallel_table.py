"""Evaders through the PettingZoo view: a table of pursuers vs evaders on the benchmark starts.

Every game is played through :class:`ld_envs.pursuit_parallel.PursuitParallelEnv` (four
agents, each acting on its own observation and mask), starting from the starts of an
``ld-gym bench`` sweep (episode ``i`` resets with ``benchmarks.sweep.episode_seed(seed,
i)``); each evader policy is seeded with the ``policy_seed`` the env reports, so the
greedy evader's games are the very games ``Pursuit-v0`` plays. The pursuers are ld-gym
pursuer policies (``scripted``, ``rl``, ...) split into the three agents by
:func:`~ld_envs.pursuit_parallel.joint_pursuer_action`.

    python -m benchmarks.studies.pursuit_parallel_table --pursuers scripted,rl \\
        --evaders greedy,random \\
        --out benchmarks/results/rl/parallel_evaders.md
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ld_envs import pursuit_parallel as pp
from ld_envs.pursuit import steps_lower_bound

logger = logging.getLogger(__name__)


def play(env: pp.PursuitParallelEnv, pursuers: Any, evader: Any, seed: int) -> dict[str, Any]:
    """One game through the parallel API; the record of its end."""
    obs, infos = env.reset(seed=seed)
    evader.reset(seed=infos[pp.EVADER_AGENT]["policy_seed"])
    if hasattr(pursuers, "reset"):
        pursuers.reset(seed=seed)
    bound = steps_lower_bound(env.pursuers, env.evader_cell)
    evader_return = 0.0
    while env.agents:
        if obs[pp.EVADER_AGENT]["turn"] == pp.PURSUERS_TURN:
            actions = pp.joint_pursuer_action(obs, pursuers)
            actions[pp.EVADER_AGENT] = 0
        else:
            actions = dict.fromkeys(env.agents, 0)
            actions[pp.EVADER_AGENT] = int(evader.act(obs[pp.EVADER_AGENT]))
        obs, rewards, _, _, infos = env.step(actions)
        evader_return += rewards[pp.EVADER_AGENT]
    info = infos[pp.EVADER_AGENT]
    return {
        "seed": seed,
        "outcome": info["outcome"],
        "steps": info["steps"],
        "violations": info["violations"],
        "evader_violations": info["evader_violations"],
        "evader_return": evader_return,
        "lower_bound": bound,
    }


def summarize(records: list[dict[str, Any]]) -> dict[str, float]:
    """Rates and means over games."""
    n = len(records)
    wins = [r for r in records if r["outcome"] == "success"]
    return {
        "games": n,
        "capture": len(wins) / n,
        "escape": sum(r["outcome"] == "failure_without_violation" for r in records) / n,
        "pursuer_violation_end": sum(r["outcome"] == "failure_with_violation" for r in records) / n,
        "mean_steps_capture": float(np.mean([r["steps"] for r in wins])) if wins else math.nan,
        "mean_lower_bound_capture": float(np.mean([r["lower_bound"] for r in wins]))
        if wins
        else math.nan,
        "mean_steps_all": float(np.mean([r["steps"] for r in records])),
        "evader_mean_return": float(np.mean([r["evader_return"] for r in records])),
        "evader_violations": float(np.mean([r["evader_violations"] for r in records])),
    }


def main(argv: list[str] | None = None) -> int:
    import ld_agents
    from benchmarks.studies.rl_new_rule import bench_seeds

    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.pursuit_parallel_table")
    parser.add_argument("--pursuers", default="scripted", help="pursuer policy names")
    parser.add_argument("--evaders", default="greedy,random", help="evader policy names")
    parser.add_argument("--episodes", type=int, default=200, help="starts per evader")
    parser.add_argument("--seed", type=int, default=0, help="sweep seed of the starts")
    parser.add_argument("--restricted", action="store_true", help="PursuitRestricted rules")
    parser.add_argument("--out", help="Markdown file (a JSON beside it)")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.seed < 0:
        parser.error(f"--episodes must be >= 1 and --seed >= 0, got {args.episodes}, {args.seed}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    env_id = "PursuitRestricted-v0" if args.restricted else "Pursuit-v0"
    env = pp.parallel_env(restricted="random" if args.restricted else None)
    seeds = bench_seeds(args.seed, args.episodes)
    rows = []
    for p_name in args.pursuers.split(","):
        for e_name in args.evaders.split(","):
            pursuers = ld_agents.make(p_name, env_id)
            evader = ld_agents.make(e_name, env_id, side="evader")
            t0 = time.time()
            records = [play(env, pursuers, evader, s) for s in seeds]
            row = {"pursuers": p_name, "evader": e_name, **summarize(records)}
            row["wall_s"] = round(time.time() - t0, 2)
            rows.append(row)
            logger.info("%s", row)
    lines = [
        f"# Evaders through the PettingZoo ParallelEnv ({env_id} rules)",
        "",
        f"{args.episodes} starts of `ld-gym bench` seed {args.seed}; every agent acts on its own "
        "observation and action mask through `ld_envs.pursuit_parallel`.",
        "",
        "| pursuers | evader | capture | escape (100 steps) | pursuers' violation end | "
        "avg steps to capture | steps lower bound (same games) | avg steps (all) | "
        "evader mean return | illegal evader moves / game |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pursuers']} | {r['evader']} | {100 * r['capture']:.1f}% | "
            f"{100 * r['escape']:.1f}% | {100 * r['pursuer_violation_end']:.1f}% | "
            f"{r['mean_steps_capture']:.2f} | {r['mean_lower_bound_capture']:.2f} | "
            f"{r['mean_steps_all']:.2f} | {r['evader_mean_return']:+.3f} | "
            f"{r['evader_violations']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
