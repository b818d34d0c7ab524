"""The shipped pursuit policies' own paths against the FLOP bound of what they process.

    python -m benchmarks.studies.policy_speed [--decisions 40] [--batch 20] [--rounds 2]
        [--policies ld,kd,raw] [--naive 4] [--out runs/policy_speed]

Each policy plays the same fixed ``Pursuit-v0`` boards (those of
``benchmarks.studies.same_results``), batched as a sweep batches them (``act_batch`` over
``--batch`` decisions), round after round on one loaded model:

* ``ld``: the student's token trees on its pinned listing (the sweep default), and the
  naive way on the first ``--naive`` decisions (one full forward per candidate);
* ``kd`` and ``raw`` with ``dtype=auto``, as the demo and sweeps run them: drafted greedy
  decoding (the default) and token by token (``draft_tokens=0``). A batch of 13 rows or
  more decodes token by token whatever ``draft_tokens`` says (since the committed record,
  which measured the drafted path at batch 20 and led to that rule): compare the two at
  ``--batch 4``.

For each path it records milliseconds per decision (median and best of the rounds), and per
decision the forwards, the tokens processed and the output-layer rows, as the backend
counts them. The FLOP bound is ``benchmarks.studies.llm_speed.flop_bound`` of those tokens
and rows (2 x body parameters per token, 2 x vocabulary x width per output row) at the
``torch.mm`` rate measured just before each round, in the dtype the backend multiplies in.
Attention is not counted, so the bound is a floor and ``x bound`` is an upper estimate.
Writes ``policy_speed.{json,md}`` into ``--out``, with the CPU's flags, threads and commit.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ld_agents.base import check_count

OUT = Path("runs") / "policy_speed"
POLICIES = ("ld", "kd", "raw")
COUNTERS = ("forward_passes", "tokens_processed", "logit_rows")


def multiply_dtype(backend: Any) -> Any:
    """The dtype a backend's linear layers multiply in (float32 under
    ``bf16_matmul=float32``)."""
    import torch

    if getattr(backend, "bf16_matmul", None) == "float32":
        return torch.float32
    return backend.dtype


def one_round(policy: Any, obs: list[Any], batch: int) -> dict[str, float]:
    """Play ``obs`` once through ``policy`` (``batch`` per call): wall seconds, the matmul
    rate measured just before, and the backend's counters, all per decision."""
    from benchmarks.studies.llm_speed import matmul_gflops

    backend = policy.backend
    gflops = matmul_gflops(multiply_dtype(backend), n=1024, repeats=3)
    if hasattr(policy, "_scores"):
        policy._scores.clear()  # LD: score every decision again
    before = backend.stats.snapshot()
    t0 = time.perf_counter()
    for i in range(0, len(obs), batch):
        policy.act_batch(obs[i : i + batch])
    seconds = time.perf_counter() - t0
    after = backend.stats.snapshot()
    n = len(obs)
    row = {k: (after.get(k, 0) - before.get(k, 0)) / n for k in COUNTERS}
    return {"seconds": seconds / n, "gflops": gflops, **row}


def summary(rounds: list[dict[str, float]], sizes: dict[str, int]) -> dict[str, Any]:
    """Median and best ms per decision, counters per decision and the FLOP-bound ratio."""
    from benchmarks.studies.llm_speed import flop_bound

    ms = [1000 * r["seconds"] for r in rounds]
    last = rounds[-1]
    bound = [flop_bound(r["tokens_processed"], r["logit_rows"], sizes, r["gflops"]) for r in rounds]
    return {
        "ms_per_decision_median": round(statistics.median(ms), 1),
        "ms_per_decision_best": round(min(ms), 1),
        "ms_rounds": [round(x, 1) for x in ms],
        **{f"{k}_per_decision": round(last[k], 2) for k in COUNTERS},
        "matmul_gflops": round(statistics.median(r["gflops"] for r in rounds), 1),
        "flop_bound_ms": round(1000 * statistics.median(bound), 1),
        "x_bound": round(
            statistics.median(r["seconds"] / b for r, b in zip(rounds, bound, strict=True)), 2
        ),
    }


def time_paths(name: str, obs: list[Any], batch: int, rounds: int, naive: int) -> dict:
    """Every path of policy ``name`` on ``obs``, interleaved round by round on one model."""
    import ld_agents
    from benchmarks.studies.llm_speed import model_sizes
    from benchmarks.studies.same_results import _spec
    from ld_agents.llm.base import get_backend

    if name == "ld":
        policy = ld_agents.make("ld", "Pursuit-v0")  # the student's bf16
    else:  # as the sweeps run them: dtype=auto
        policy = ld_agents.make(name, "Pursuit-v0", model=get_backend(_spec(name, "hf", "auto")))
    backend = policy.backend
    policy.act_batch(obs[:2])  # warm-up: pinned listing, tokenizer, kernels
    sizes = model_sizes(backend)
    paths = {"drafted": 4, "token_by_token": 0} if name in ("kd", "raw") else {"trees": None}
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    for _ in range(rounds):
        for path, draft in paths.items():
            if draft is not None:
                backend.draft_tokens = draft
            runs[path].append(one_round(policy, obs, batch))
    out = {p: summary(r, sizes) for p, r in runs.items()}
    if name == "ld" and naive:
        from benchmarks.studies.same_results import naive_stage_choices

        start = backend.stats.snapshot()
        t0 = time.perf_counter()
        naive_stage_choices(policy, obs[:naive])
        end = backend.stats.snapshot()
        row = {k: (end.get(k, 0) - start.get(k, 0)) / naive for k in COUNTERS}
        row["seconds"] = (time.perf_counter() - t0) / naive
        row["gflops"] = runs["trees"][-1]["gflops"]
        out["naive"] = summary([row], sizes)
        out["naive"]["decisions"] = naive
    for path in out.values():
        path["speedup_vs_naive"] = (
            round(out["naive"]["ms_per_decision_median"] / path["ms_per_decision_median"], 1)
            if "naive" in out
            else None
        )
    out["dtype"] = str(backend.dtype).removeprefix("torch.")
    out["bf16_matmul"] = getattr(backend, "bf16_matmul", None)
    out["attention"] = getattr(backend, "attention", None)
    backend.close()
    return out


def to_markdown(r: dict[str, Any]) -> str:
    """The result as a table, one row per policy path."""
    lines = [
        f"# Policy paths against the FLOP bound ({r['decisions']} Pursuit-v0 decisions, "
        f"batch {r['batch']}, {r['rounds']} rounds)",
        "",
        f"`{r['command']}` at commit {r['commit']}; {r['machine']}; torch threads {r['threads']}.",
        "",
        "| policy | path | ms / decision (median, best) | forwards | tokens | output rows "
        "| bound ms | x bound | vs naive |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in POLICIES:
        for path, x in r.get(name, {}).items():
            if not isinstance(x, dict):
                continue
            naive = f"{x['speedup_vs_naive']}x" if x.get("speedup_vs_naive") else ""
            lines.append(
                f"| {name} | {path} | {x['ms_per_decision_median']:.0f}, "
                f"{x['ms_per_decision_best']:.0f} | {x['forward_passes_per_decision']} | "
                f"{x['tokens_processed_per_decision']:.0f} | {x['logit_rows_per_decision']:.0f} "
                f"| {x['flop_bound_ms']:.0f} | {x['x_bound']} | {naive} |"
            )
    lines += [
        "",
        "The bound counts the linear layers only (2 x body parameters per token processed, "
        "2 x vocabulary x width per output row) at the `torch.mm` rate measured before each "
        "round; attention is not counted.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from benchmarks.studies.same_results import observations
    from ld_agents.files import git_commit, output_path, write_json_atomic, write_text_atomic
    from ld_agents.llm.hardware import cpu_info, describe_machine
    from ld_envs.errors import InvalidArgument

    p = argparse.ArgumentParser(prog="python -m benchmarks.studies.policy_speed")
    p.add_argument("--decisions", type=int, default=40, help="decisions per round")
    p.add_argument("--batch", type=int, default=20, help="decisions per act_batch call")
    p.add_argument("--rounds", type=int, default=2, help="rounds per path (interleaved)")
    p.add_argument("--policies", default="ld,kd,raw", help="comma list of ld, kd, raw")
    p.add_argument("--naive", type=int, default=4, help="LD decisions also scored naively")
    p.add_argument("--out", default=str(OUT), help="output folder")
    args = p.parse_args(argv)
    for key in ("decisions", "batch", "rounds"):
        check_count(f"--{key}", getattr(args, key))
    check_count("--naive", args.naive, minimum=0)
    names = args.policies.split(",")
    bad = [n for n in names if n not in POLICIES]
    if bad or len(set(names)) < len(names):
        raise InvalidArgument(
            f"--policies: unknown or repeated {bad or names}; expected some of {list(POLICIES)}"
        )
    out = output_path(args.out)
    obs = observations(args.decisions)
    result: dict[str, Any] = {
        "command": "python -m benchmarks.studies.policy_speed " + shlex.join(sys.argv[1:]),
        "commit": git_commit(),
        "machine": describe_machine(),
        **cpu_info(),
        "threads": torch.get_num_threads(),
        "decisions": args.decisions,
        "batch": args.batch,
        "rounds": args.rounds,
    }
    for name in names:
        result[name] = time_paths(name, obs, args.batch, args.rounds, args.naive)
        print(name, result[name], flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "policy_speed.json", result)
    write_text_atomic(out / "policy_speed.md", to_markdown(result))
    print(to_markdown(result))
    print(out / "policy_speed.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
