"""Speed of LLM scoring and generation on the embedded model (transformers backend).

One pursuit-like decision: a prompt of about 370 tokens (static rules + the state) and the
13 target cells a pursuer may choose, 7-8 tokens each. Decisions per second are measured
in one run for each way of scoring them:

* ``naive``: one full forward per candidate (context + candidate), logits at every position;
* ``logits_to_keep``: the same, logits only at the candidate's positions;
* ``padded_batch``: all 13 sequences in one right-padded batch, logits where scored;
* ``cached_batch``: the prompt once, the 13 candidates as one batch on its key-value cache
  (repeated 13 times), the output layer once per distinct token prefix;
* ``cached``: the prompt once, the candidates as one token tree after it (shared prefixes
  such as " (1" run once; the cache is not repeated): the backend's default;
* ``cached+static``: as ``cached``, with the rules' key-value states reused across
  decisions (``backend.cache_prefix(rules)``): only the state's tokens and the candidates run;
* ``label``: candidates shown as lettered options, one forward of the prompt, the next-token
  log-softmax read at the 13 letters; ``label+static`` with the rules reused;
  ``label+static+batch16``: 16 decisions of different episodes (what a sweep's
  ``act_batch`` does) in one ``choice_logprobs_batch`` call, time and work per decision.

For each method the FLOP bound is ``2 * body_params * tokens + 2 * vocab * d_model * rows``
(body parameters exclude the embedding; ``rows`` are the positions whose logits are
computed) divided by the matmul rate measured here with ``torch.mm``. Float32 and bfloat16
both run; bf16 scores are compared with float32 (max abs difference, same choice?).
Greedy generation is timed at batch 1 and batched (16 and 32 prompts together).

Usage: ``python -m benchmarks.studies.llm_speed [--quick] [--out FILE]``.
Methods and dtypes run interleaved, round by round, each call next to a short ``torch.mm``
timing, so that on a shared machine contention hits every method alike: compare the ratios
within one run (medians; ``x bound`` is each call's time over its bound at the matmul rate
measured just before it). ``--clock cpu`` (chosen by itself when the load average exceeds
the CPU count) times the process's CPU seconds divided by its threads instead of wall time;
``--threads 1`` with it gives the cleanest figures on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ld_agents.files import git_commit

logger = logging.getLogger(__name__)

#: default output file, under the current directory
OUT = Path("runs") / "llm_speed.json"

RULES = """\
You command three blue pursuers, A, B and C, that chase one orange evader on a board of \
21 x 21 cells. A cell is written (x, y), with 0 <= x, y <= 20.
Rules:
1. In every step the pursuers move first, in the order A, B, C; then the evader moves.
2. A pursuer moves to a cell at Manhattan distance at most 2 from its cell, or stays. It \
must stay on the board and may not enter a cell that another pursuer holds.
3. The evader moves to a cell at distance at most 1, or stays.
4. The pursuers win when all three are at distance at most 1 from the evader.
5. An illegal or unreadable choice leaves the pursuer where it is and counts as a \
violation; more than 7 violations lose the game.
"""

LETTERS = "abcdefghijklm"
MOVES = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (-2, 0), (0, 2), (0, -2),
         (1, 1), (1, -1), (-1, 1), (-1, -1)]  # fmt: skip


@dataclass
class Decision:
    """One decision: prompt, candidate cells, and the lettered variant of the prompt."""

    context: str
    candidates: list[str]
    label_context: str


def make_decisions(n: int, seed: int = 0) -> list[Decision]:
    """``n`` pursuit-like decisions for pursuer A, drawn from a seed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = (int(rng.integers(10, 19)), int(rng.integers(10, 19)))
        b = (int(rng.integers(0, 21)), int(rng.integers(0, 21)))
        c = (int(rng.integers(0, 21)), int(rng.integers(0, 21)))
        e = (int(rng.integers(0, 21)), int(rng.integers(0, 21)))
        cells = [(a[0] + dx, a[1] + dy) for dx, dy in MOVES]
        dist = [abs(a[0] - e[0]) + abs(a[1] - e[1]) for a in (a, b, c)]
        state = (
            f"State (step {int(rng.integers(1, 60))}): evader at {e}; "
            f"A at {a}, distance {dist[0]}; B at {b}, distance {dist[1]}; "
            f"C at {c}, distance {dist[2]}.\n"
        )
        listing = ", ".join(f"{x}" for x in cells)
        context = RULES + state + f"A may move to: {listing}.\nPursuer A moves to"
        lettered = "; ".join(f"{L} {cell}" for L, cell in zip(LETTERS, cells, strict=True))
        label_context = RULES + state + f"Options for A: {lettered}.\nThe best option for A is"
        out.append(Decision(context, [f" {cell}" for cell in cells], label_context))
    return out


class Clock:
    """Wall time, or the process's CPU time divided by the torch threads ("cpu").

    On a machine shared with other jobs, wall time measures the neighbours as much as the
    method; CPU time counts only this process's work (divided by the threads, it is the
    wall time the work would take on idle cores, spin-waiting included).
    """

    kind = "wall"
    threads = 1

    @classmethod
    def now(cls) -> float:
        if cls.kind == "cpu":
            return time.process_time() / cls.threads
        return time.perf_counter()


def matmul_gflops(dtype: Any, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` torch.mm rate in GFLOP/s for an n x n product (on ``Clock``)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = Clock.now()
        for _ in range(4):
            torch.mm(a, b)
        best = min(best, (Clock.now() - t0) / 4)
    return 2 * n**3 / max(best, 1e-9) / 1e9


def model_sizes(backend: Any) -> dict[str, int]:
    """Body parameters (without the embedding/output matrix), vocab and width."""
    model = backend.model
    emb = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    return {
        "body_params": int(total - emb.numel()),
        "vocab": int(emb.shape[0]),
        "d_model": int(emb.shape[1]),
    }


METHODS = [
    "naive",
    "logits_to_keep",
    "padded_batch",
    "cached_batch",
    "cached",
    "cached+static",
    "label",
    "label+static",
]
SLOW = ("naive", "logits_to_keep")
#: decisions of different episodes scored together (a sweep's act_batch), per decision
BATCHED = "label+static+batch16"
BATCH = 16
METHODS.append(BATCHED)


def one_decision(
    backend: Any, method: str, d: Decision, pool: list[Decision] | None = None
) -> tuple[float, list[float], dict]:
    """Score one decision with ``method``; returns (seconds, scores, stats delta).

    Prefix-cache entries other than the pinned rules are dropped first, so each decision
    pays for its own prompt; ``+static`` methods have the rules pinned beforehand.
    ``BATCHED`` scores ``d`` and the other decisions of ``pool`` (``BATCH`` in all) in one
    ``choice_logprobs_batch`` call and reports the time and work per decision.
    """
    b = backend
    static = "+static" in method
    b.clear_prefix_cache(pinned=not static)
    if static and b.cache_prefix(RULES) == 0:
        raise RuntimeError("prefix caching unavailable")
    b.tree_attention = method != "cached_batch"
    before = b.stats.snapshot()
    t0 = Clock.now()
    n = 1
    if method == BATCHED:
        group = [d, *[x for x in (pool or []) if x is not d]][:BATCH]
        n = len(group)
        labels = [f" {L}" for L in LETTERS]
        scores = b.choice_logprobs_batch([x.label_context for x in group], labels)[0]
    elif method.startswith("label"):
        scores = b.choice_logprobs(d.label_context, [f" {L}" for L in LETTERS])
    else:
        kind = {"naive": "naive", "logits_to_keep": "keep", "padded_batch": "batch"}
        reqs = [(d.context, c) for c in d.candidates]
        scores = b.loglikelihood(reqs, method=kind.get(method, "cached"))
    seconds = (Clock.now() - t0) / n
    after = b.stats.snapshot()
    delta = {
        k: (after.get(k, 0) - before.get(k, 0)) / n for k in ("tokens_processed", "logit_rows")
    }
    b.tree_attention = True
    return seconds, scores, delta


def flop_bound(tokens: float, rows: float, sizes: dict[str, int], gflops: float) -> float:
    """Seconds at the measured matmul rate for ``tokens`` through the body and ``rows`` logits."""
    flops = 2 * sizes["body_params"] * tokens + 2 * sizes["vocab"] * sizes["d_model"] * rows
    return flops / (gflops * 1e9)


def summarise(calls: list[dict], sizes: dict[str, int]) -> dict[str, Any]:
    """Median cost of a method's calls and its ratio to the FLOP bound (per call, median)."""
    secs = [c["seconds"] for c in calls]
    tokens = float(np.mean([c["tokens_processed"] for c in calls]))
    rows = float(np.mean([c["logit_rows"] for c in calls]))
    ratios = [
        c["seconds"] / flop_bound(c["tokens_processed"], c["logit_rows"], sizes, c["gflops"])
        for c in calls
    ]
    gfl = float(np.median([c["gflops"] for c in calls]))
    return {
        "calls": len(calls),
        "seconds_per_decision": float(np.median(secs)),
        "best_seconds": float(np.min(secs)),
        "decisions_per_s": 1.0 / float(np.median(secs)),
        "tokens_per_decision": tokens,
        "logit_rows_per_decision": rows,
        "flop_bound_s": flop_bound(tokens, rows, sizes, gfl),
        "vs_bound": float(np.median(ratios)),
    }


def time_generation(backend: Any, decisions: list[Decision], batch: int, new: int) -> dict:
    """Greedy generation of ``new`` tokens for ``batch`` prompts at once.

    The rules are pinned in the prefix cache (as a raw policy would); a first call with one
    new token measures the prefill, so decoding alone can be told apart.
    """
    from ld_agents.llm.base import GenerationRequest

    b = backend
    prompts = [
        d.context.rsplit("\n", 1)[0] + "\nAnswer in the form A: (x, y); B: (x, y); C: (x, y)\n"
        "Answer:"
        for d in decisions[:batch]
    ]
    b.clear_prefix_cache()
    b.cache_prefix(RULES)
    t0 = Clock.now()
    b.generate_until([GenerationRequest(p, (), 1) for p in prompts])
    prefill = Clock.now() - t0
    b.clear_prefix_cache(pinned=False)
    before = b.stats.tokens_generated
    t0 = Clock.now()
    b.generate_until([GenerationRequest(p, (), new) for p in prompts])
    total = Clock.now() - t0
    tokens = b.stats.tokens_generated - before
    return {
        "batch": batch,
        "new_tokens": tokens,
        "seconds": total,
        "tokens_per_s": tokens / total,
        "decode_tokens_per_s": (tokens - len(prompts)) / max(total - prefill, 1e-9),
        "prefill_seconds": prefill,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter generation")
    parser.add_argument("--rounds", type=int, default=None, help="decisions per fast method")
    parser.add_argument(
        "--naive-rounds", type=int, default=None, help="decisions for naive and logits_to_keep"
    )
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma list of dtypes")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: the physical cores this process may use)",
    )
    parser.add_argument(
        "--clock",
        choices=("auto", "wall", "cpu"),
        default="auto",
        help="wall time, or CPU time / threads (auto: cpu when the load exceeds the CPUs)",
    )
    parser.add_argument("--no-generation", action="store_true", help="skip the generation timing")
    parser.add_argument(
        "--gen-tokens",
        type=int,
        default=None,
        help="new tokens per prompt (default 32, quick 16; a raw pursuer answer is ~20-40)",
    )
    parser.add_argument(
        "--gen-batches", default=None, help="comma-separated batch sizes (default 1,16,32)"
    )
    parser.add_argument(
        "--out",
        default=str(OUT),
        help=f"JSON file (default {OUT}; the committed one: benchmarks/results/llm_speed.json)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ld_agents.llm.models import offline

    offline()
    import torch

    from ld_agents.llm import make_backend
    from ld_agents.llm.hardware import cpu_info
    from ld_agents.llm.threads import plan_threads, use_threads

    plan = plan_threads()  # the physical cores of this process's affinity, or OMP_NUM_THREADS
    use_threads(args.threads or plan.threads)
    Clock.threads = torch.get_num_threads()
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    Clock.kind = args.clock if args.clock != "auto" else ("cpu" if busy else "wall")
    rounds = args.rounds or (2 if args.quick else 5)
    slow_rounds = min(rounds, args.naive_rounds or (1 if args.quick else 2))
    dtypes = args.dtypes.split(",")
    decisions = make_decisions(max(rounds, 32))
    results: dict[str, Any] = {
        "commit": git_commit(),
        "machine": platform.processor() or platform.machine(),
        **cpu_info(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "threads_source": "--threads" if args.threads else plan.source,
        "load_average_start": os.getloadavg(),
        "clock": Clock.kind,
        "quick": args.quick,
        "dtypes": {},
    }
    backends, calls, scores = {}, {}, {}
    for dtype in dtypes:
        t0 = time.perf_counter()
        backends[dtype] = make_backend(f"hf:embedded?dtype={dtype}")
        b = backends[dtype]
        tok = b.tokenizer
        results["dtypes"][dtype] = {
            "load_seconds": time.perf_counter() - t0,
            "prompt_tokens": len(tok(decisions[0].context)["input_ids"]),
            "label_prompt_tokens": len(tok(decisions[0].label_context)["input_ids"]),
            "rules_tokens": len(tok(RULES)["input_ids"]),
            "candidate_tokens": [
                len(tok(c, add_special_tokens=False)["input_ids"]) for c in decisions[0].candidates
            ],
            **model_sizes(b),
        }
        one_decision(b, "cached", decisions[-1])  # warm-up (and the tree-path check)
        calls[dtype] = {m: [] for m in METHODS}
        scores[dtype] = {m: [] for m in METHODS}
    # interleaved rounds: contention on a shared machine hits every method alike
    for r in range(rounds):
        for m in METHODS:
            if m in SLOW and r >= slow_rounds:
                continue
            for dtype in dtypes:
                gfl = matmul_gflops(getattr(torch, dtype), n=1024, repeats=3)
                sec, sc, delta = one_decision(backends[dtype], m, decisions[r], decisions)
                calls[dtype][m].append({"seconds": sec, "gflops": gfl, **delta})
                scores[dtype][m].append(sc)
                logger.info("round %d %-9s %-14s %7.3f s (mm %.0f GFLOP/s)", r, dtype, m, sec, gfl)
    results["matmul_gflops"] = {
        d: float(np.median([c["gflops"] for m in METHODS for c in calls[d][m]])) for d in dtypes
    }
    for dtype in dtypes:
        info = results["dtypes"][dtype]
        sizes = {k: info[k] for k in ("body_params", "vocab", "d_model")}
        info["methods"] = {m: summarise(calls[dtype][m], sizes) for m in METHODS}
        naive = info["methods"]["naive"]["seconds_per_decision"]
        ref = scores[dtype]["naive"]
        for m, res in info["methods"].items():
            res["speedup_vs_naive"] = naive / res["seconds_per_decision"]
            if not m.startswith("label"):
                got = np.array(scores[dtype][m][: len(ref)])
                res["max_abs_diff_vs_naive"] = float(np.max(np.abs(got - np.array(ref))))
        lab = backends[dtype].loglikelihood(
            [(decisions[0].label_context, f" {L}") for L in LETTERS], method="naive"
        )
        for m in ("label", "label+static", BATCHED):
            got = np.array(scores[dtype][m][0])
            info["methods"][m]["max_abs_diff_vs_naive"] = float(np.max(np.abs(got - lab)))
        info["scores_cached"] = [[round(x, 5) for x in s] for s in scores[dtype]["cached"]]
        if dtype != "float32" and "float32" in scores:
            for m in ("cached", "label"):
                a, f = np.array(scores[dtype][m]), np.array(scores["float32"][m])
                same = int(sum(np.argmax(x) == np.argmax(y) for x, y in zip(a, f, strict=True)))
                info.setdefault("vs_float32", {})[m] = {
                    "max_abs_diff": float(np.max(np.abs(a - f))),
                    "same_choice": f"{same}/{len(a)}",
                }
    if "float32" in dtypes:  # the naive way as the issue measured it: float32, full logits
        naive32 = results["dtypes"]["float32"]["methods"]["naive"]["seconds_per_decision"]
        for dtype in dtypes:
            for res in results["dtypes"][dtype]["methods"].values():
                res["speedup_vs_naive_float32"] = naive32 / res["seconds_per_decision"]
    if not args.no_generation:
        new = args.gen_tokens or (16 if args.quick else 32)
        batches = (1, 16) if args.quick else (1, 16, 32)
        if args.gen_batches:
            batches = tuple(int(b) for b in args.gen_batches.split(","))
        for dtype in dtypes:
            gen = []
            for bsz in batches:
                g = time_generation(backends[dtype], decisions, bsz, new)
                g["gflops"] = matmul_gflops(getattr(torch, dtype), n=1024, repeats=3)
                gen.append(g)
                logger.info(
                    "%s generation batch %d: %.1f tokens/s (decoding %.1f)",
                    dtype,
                    bsz,
                    g["tokens_per_s"],
                    g["decode_tokens_per_s"],
                )
            results["dtypes"][dtype]["generation"] = gen
    results["load_average_end"] = os.getloadavg()
    for b in backends.values():
        b.close()
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    logger.info("wrote %s", out)
    return results


def print_table(results: dict[str, Any]) -> None:
    """The decision-speed and generation tables (stdout)."""
    g = results["matmul_gflops"]
    rates = ", ".join(f"{v:.0f} {k}" for k, v in g.items())
    print(
        f"\ntorch.mm (median while measuring): {rates} GFLOP/s; {results['threads']} threads; "
        f"clock: {results['clock']}; "
        f"load average {results['load_average_start'][0]:.1f} -> "
        f"{results['load_average_end'][0]:.1f} on {results['cpus']} CPUs"
    )
    for dtype, info in results["dtypes"].items():
        ct = info["candidate_tokens"]
        print(
            f"\n{dtype}: prompt {info['prompt_tokens']} tokens (rules {info['rules_tokens']}, "
            f"lettered {info['label_prompt_tokens']}), 13 candidates of {min(ct)}-{max(ct)} "
            f"tokens; body {info['body_params'] / 1e6:.0f}M params; "
            f"load {info['load_seconds']:.1f} s"
        )
        print(
            f"{'method':<15} {'s/decision':>10} {'dec/s':>7} {'x naive':>8} {'x f32 nv':>8}"
            f" {'tokens':>7} {'rows':>5} {'bound s':>8} {'x bound':>7} {'max|d|':>8}"
        )
        for m, r in info["methods"].items():
            f32 = r.get("speedup_vs_naive_float32")
            print(
                f"{m:<15} {r['seconds_per_decision']:>10.3f} {r['decisions_per_s']:>7.2f}"
                f" {r['speedup_vs_naive']:>8.1f} {f'{f32:.1f}' if f32 else '-':>8}"
                f" {r['tokens_per_decision']:>7.0f}"
                f" {r['logit_rows_per_decision']:>5.0f} {r['flop_bound_s']:>8.3f}"
                f" {r['vs_bound']:>7.2f} {r.get('max_abs_diff_vs_naive', 0.0):>8.1e}"
            )
        for m, v in info.get("vs_float32", {}).items():
            print(
                f"{dtype} vs float32 ({m}): max |diff| {v['max_abs_diff']:.3f} nats, "
                f"same choice {v['same_choice']}"
            )
        for r in info.get("generation", []):
            print(
                f"generation batch {r['batch']:>2}: {r['new_tokens']:>4} tokens in "
                f"{r['seconds']:.1f} s = {r['tokens_per_s']:.1f} tokens/s end-to-end, "
                f"{r['decode_tokens_per_s']:.1f} decoding (prefill {r['prefill_seconds']:.1f} s)"
            )


if __name__ == "__main__":
    main()
