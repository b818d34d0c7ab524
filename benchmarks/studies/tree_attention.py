"""LD decisions with the split token-tree attention against the dense mask, in one run.

The LD student scores every stage of a batch of decisions as token trees after its pinned
listing (``HFBackend._tree_hidden``). This study plays the same fixed pursuit observations
(``benchmarks.studies.same_results.observations``) through the shipped pursuit student,
alternating the two attention paths of the same loaded model (``backend.tree_split``):

* ``dense``: one SDPA call per layer with the tree's full 4D mask (the path before);
* ``split``: ``ld_agents.llm.tree_attention`` (prefix and trunk through the flash kernel,
  each subtree against its own nodes, merged by log-sum-exp).

Each round clears the policy's score cache, so both paths score every decision. It
reports ms per decision (best and median of the rounds), the ratio dense / split measured
in the same run, forwards and tokens per decision, how many decisions chose the same
functions at every stage and the largest score difference between the paths, and (for
bf16) how far each path's scores are from the float32 dense path's, with the CPU's flags
and the torch threads beside them.

    python -m benchmarks.studies.tree_attention [--decisions 100] [--rounds 3]
        [--dtype bfloat16] [--max-nodes 1024] [--json benchmarks/results/tree_attention.json]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from typing import Any

DEFAULT_JSON = "benchmarks/results/tree_attention.json"


def play(policy: Any, obs: list[Any], split: bool, max_nodes: int) -> dict[str, Any]:
    """One round of ``obs`` through ``policy`` on one attention path, from a cold score
    cache (the pinned listing's key-value states stay)."""
    backend = policy.backend
    backend.tree_split = split
    backend.tree_nodes = max_nodes
    policy._scores.clear()
    before = backend.stats.snapshot()
    t0 = time.perf_counter()
    actions = policy.act_batch(obs)
    seconds = time.perf_counter() - t0
    after = backend.stats.snapshot()
    return {
        "seconds": seconds,
        "actions": [list(map(int, a)) for a in actions],
        "scores": dict(policy._scores),
        "forwards": after["forward_passes"] - before["forward_passes"],
        "tokens": after["tokens_processed"] - before["tokens_processed"],
    }


def summary(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """ms per decision (best, median), forwards and tokens per decision of some rounds."""
    ms = [1000 * r["seconds"] / n for r in runs]
    return {
        "ms_per_decision_best": round(min(ms), 1),
        "ms_per_decision_median": round(statistics.median(ms), 1),
        "ms_per_decision_rounds": [round(x, 1) for x in ms],
        "forwards_per_decision": round(runs[0]["forwards"] / n, 3),
        "tokens_per_decision": round(runs[0]["tokens"] / n, 1),
    }


def measure(decisions: int, rounds: int, dtype: str, max_nodes: int) -> dict[str, Any]:
    """Both paths, ``rounds`` times each, interleaved, on ``decisions`` observations."""
    import ld_agents
    from benchmarks.studies.same_results import observations

    obs = observations(decisions)
    policy = ld_agents.make("ld", "Pursuit-v0", dtype=dtype)
    if not getattr(policy.backend, "tree_split", False):
        raise SystemExit("this backend does not split tree attention (not CPU, or not SDPA)")
    policy.act_batch(obs[: min(8, decisions)])  # warm-up: the listing's prefix, first use
    runs: dict[str, list[dict[str, Any]]] = {"dense": [], "split": []}
    for _ in range(rounds):
        for name in ("dense", "split"):
            runs[name].append(play(policy, obs, name == "split", max_nodes))
    dense, split = runs["dense"][0], runs["split"][0]
    same = sum(a == b for a, b in zip(dense["actions"], split["actions"], strict=True))
    diff = max(
        abs(x - y)
        for key, ref in dense["scores"].items()
        for x, y in zip(split["scores"][key], ref, strict=True)
    )
    out = {name: summary(r, decisions) for name, r in runs.items()}
    out["dense_over_split_best"] = round(
        out["dense"]["ms_per_decision_best"] / out["split"]["ms_per_decision_best"], 2
    )
    out["same_choices"] = f"{same}/{decisions}"
    out["max_score_difference"] = float(f"{diff:.3g}")
    if dtype != "float32":
        out["against_float32"] = against_float32(obs, dense["scores"], split["scores"], max_nodes)
    return out


def against_float32(
    obs: list[Any], dense: dict[str, list[float]], split: dict[str, list[float]], max_nodes: int
) -> dict[str, Any]:
    """How far each path's scores are from the float32 dense path's on the same decisions:
    the split path should be no further than the dense one (one more rounding at most)."""
    import numpy as np

    import ld_agents

    policy = ld_agents.make("ld", "Pursuit-v0", dtype="float32")
    ref = play(policy, obs, False, max_nodes)["scores"]
    policy.backend.close()
    out = {}
    for name, scores in (("dense", dense), ("split", split)):
        d = np.concatenate([np.abs(np.subtract(scores[k], ref[k])) for k in ref])
        out[name] = {"max": round(float(d.max()), 4), "mean": round(float(d.mean()), 4)}
    return out


def torch_threads() -> int:
    """The torch threads the backend ran with (``ld_agents.llm.threads`` sets them)."""
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    from ld_agents.files import git_commit, output_path, write_json_atomic
    from ld_agents.llm.hardware import cpu_info, describe_machine

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.studies.tree_attention", description=__doc__.split("\n")[0]
    )
    p.add_argument("--decisions", type=int, default=100, help="observations, one batch")
    p.add_argument("--rounds", type=int, default=3, help="rounds of each path, interleaved")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    p.add_argument("--max-nodes", type=int, default=1024, help="token-tree nodes per forward")
    p.add_argument("--json", default=DEFAULT_JSON, help="where the result goes")
    args = p.parse_args(argv)
    for name in ("decisions", "rounds", "max_nodes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    out = output_path(args.json)
    result: dict[str, Any] = {
        "command": "python -m benchmarks.studies.tree_attention " + shlex.join(sys.argv[1:]),
        "commit": git_commit(),
        "machine": describe_machine(),
        "cpu": cpu_info(),
        "torch_threads": torch_threads(),
        "decisions": args.decisions,
        "dtype": args.dtype,
        "max_nodes": args.max_nodes,
        **measure(args.decisions, args.rounds, args.dtype, args.max_nodes),
    }
    write_json_atomic(out, result)
    print({k: v for k, v in result.items() if k not in ("command", "cpu")})
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
