"""Exact win / loss / draw of the shipped 21-points RL policy beside the exact optimum.

No sampling: ``ld_agents.baselines.optimal.evaluate`` averages the RL policy's (deterministic)
choices over every deal of the 26-card deck, reading them through
``RLPolicy.action_probs``; ``ld_agents.baselines.optimal.solve`` gives the best response's figures.
The 200-game sweep (``ld-gym bench TwentyOne-v0``) samples the same policies; this is
the number it estimates.

    python -m benchmarks.studies.rl_exact21 --out benchmarks/results/rl/twentyone_exact.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ld_agents.baselines import optimal
    from ld_agents.rl.policy import RLPolicy

    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.rl_exact21")
    parser.add_argument("--model", help="TwentyOne model (default: the shipped one)")
    parser.add_argument(
        "--opponent", default="dealer", choices=["dealer", "random"], help="the other side"
    )
    parser.add_argument("--open-cards", action="store_true", help="all cards face up")
    parser.add_argument("--out", help="JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    policy = RLPolicy("twentyone", args.model)
    policy.name = "rl"
    t0 = time.time()
    rl = optimal.evaluate(policy, args.opponent, args.open_cards)
    rl_s = time.time() - t0
    best = optimal.solve(args.opponent, args.open_cards)
    report = {
        "model": str(policy.path),
        "opponent": args.opponent,
        "open_cards": args.open_cards,
        "rl": asdict(rl),
        "optimal": asdict(best),
        "regret": best.expected_reward - rl.expected_reward,
        "rl_eval_seconds": round(rl_s, 1),
    }
    text = json.dumps(report, indent=2) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
