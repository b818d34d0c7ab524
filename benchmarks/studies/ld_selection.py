"""LD selection accuracy, selection vs generation entropy, and LD decision speed.

    python -m benchmarks.studies.ld_selection [--states 150] [--speed-decisions 8] [--out DIR]

1. **Accuracy** on held-out states (the ``test`` split of ``sample_states``, never used in
   training): every stage is labelled with the ground truth on the chain's real stage
   input (``training_examples``); the base model and the LD student (shipped adapter) each
   score the policy's own prompt (candidates in base order) and pick the best label. The
   pursuit base carries the restricted-area emergency function (never seen in training), so
   the ``constraints`` stage on restricted boards measures its use with no retraining.
2. **Entropy** (paper section 3.5): per item, the entropy of the selection distribution
   (softmax over the K candidates' label log-probabilities; at most log K) against the
   entropy of the model's full next-token distribution at the same point (what free
   generation samples from; at most log M, M the vocabulary size).
3. **Speed**: LD decisions (all stages of one pursuit step) per second through the policy's
   path (label scoring, one forward per stage on the cached static prefix) against the naive
   way (one full forward with full logits per candidate, ``loglikelihood(method="naive")``),
   in the same run, same prompts, checking both pick the same functions.

Writes ``ld_selection.{json,md}`` and ``ld_selection_entropy.png`` into ``--out`` (default
``runs/ld_selection``; the committed figures: ``--out benchmarks/results``), and each
finished half (base model, student) to ``ld_selection_parts/`` there, so that a run split
with ``--who`` picks up the halves already done.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: default output folder, under the current directory (name benchmarks/results to update the
#: committed figures)
OUT = Path("runs") / "ld_selection"


def _items(game: str, n: int, seed: int) -> tuple[Any, list[Any]]:
    from ld_agents.ld.base import shipped_base, training_examples
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.sandbox import SandboxWorker

    base = shipped_base(game, ["restricted_area"] if game == "pursuit" else [])
    with SandboxWorker() as worker:
        items = training_examples(base, worker, sample_states(game, n, "test", seed))
    return base, items


def _pick(backend: Any, ctx: str, k: int) -> tuple[int, list[float]]:
    from ld_agents.ld.policy import label_choices

    scores = backend.choice_logprobs(ctx, label_choices(k))
    return max(range(k), key=scores.__getitem__), scores


def _stage_key(base: Any, ex: Any) -> str:
    """The row an item counts in: its stage, with pursuit's constraints split by whether
    the restricted area is in force."""
    if ex.stage == "constraints" and base.game == "pursuit":
        return "constraints (restricted area)" if ex.state["restricted"] else "constraints"
    return ex.stage


def _without_emergency(cands: list[Any]) -> list[Any]:
    """A stage's candidates as a base without emergency functions shows them (Pursuit-v0)."""
    return [c for c in cands if c.role != "emergency"]


def _layout_of(backend: Any) -> tuple[str, tuple[str, ...]]:
    """The prompt layout a backend's LD adapter was trained on, and its cue-listed stages."""
    from ld_agents.ld.policy import adapter_prompt

    return adapter_prompt(getattr(backend, "adapter", None))


def _plain_constraints(
    backend: Any,
    layout: tuple[str, tuple[str, ...]],
    base: Any,
    cands: list[Any],
    size: int,
    state: Any,
    answer: str,
    rng: Any,
) -> tuple[int, int]:
    """Right (1) or not, in base and shuffled order, on the constraints stage without the
    emergency function (what Pursuit-v0's student is shown)."""
    from ld_agents.ld.prompts import layout_context

    def ctx(order: list[Any]) -> str:
        return layout_context(
            layout[0], base, "constraints", state, size, {"constraints": order}, layout[1]
        )

    best, _ = _pick(backend, ctx(cands), len(cands))
    shuffled = list(cands)
    rng.shuffle(shuffled)
    best_s, _ = _pick(backend, ctx(shuffled), len(cands))
    return int(cands[best].name == answer), int(shuffled[best_s].name == answer)


def evaluate(backend: Any, base: Any, items: list[Any], seed: int = 0) -> dict[str, Any]:
    """Accuracy per stage (policy order and a shuffled order), selection and next-token
    entropies, for one backend.

    The policy presents a stage's candidates in base order, where a stage whose right
    function never changes always has the same right letter; the shuffled order (seeded,
    the same for every backend) shows whether the choice follows the descriptions."""
    import random

    import torch

    from ld_agents.ld.prompts import layout_context, static_parts

    layout, cue = _layout_of(backend)
    rng = random.Random(seed)
    per: dict[str, list[int]] = defaultdict(list)
    per_shuffled: dict[str, list[int]] = defaultdict(list)
    h_sel: list[float] = []
    h_gen: list[float] = []
    ks: list[int] = []
    label_mass: list[float] = []
    for part in static_parts(layout, base, 21, cue):
        backend.cache_prefix(part)
    t0 = time.perf_counter()
    for ex in items:
        cands = base.stage_candidates(ex.stage)
        size = int(ex.state.get("size", 21)) if base.game == "pursuit" else 21
        ctx = layout_context(layout, base, ex.stage, ex.state, size, cue_stages=cue)
        best, scores = _pick(backend, ctx, len(cands))
        ok = int(cands[best].name == ex.answer)
        shuffled = list(cands)
        rng.shuffle(shuffled)
        best_s, _ = _pick(
            backend,
            layout_context(layout, base, ex.stage, ex.state, size, {ex.stage: shuffled}, cue),
            len(cands),
        )
        ok_s = int(shuffled[best_s].name == ex.answer)
        key = _stage_key(base, ex)
        for k in (key, "all"):
            per[k].append(ok)
            per_shuffled[k].append(ok_s)
        plain = _without_emergency(cands)
        if key == "constraints" and len(plain) < len(cands):
            # the same stage as Pursuit-v0 shows it (no emergency function in its base)
            ok_p, ok_ps = _plain_constraints(
                backend, (layout, cue), base, plain, size, ex.state, ex.answer, rng
            )
            per["constraints (Pursuit-v0 candidates)"].append(ok_p)
            per_shuffled["constraints (Pursuit-v0 candidates)"].append(ok_ps)
        m = max(scores)
        p = [math.exp(s - m) for s in scores]
        z = sum(p)
        h_sel.append(-sum(v / z * math.log(v / z) for v in p if v > 0))
        ks.append(len(cands))
        label_mass.append(sum(math.exp(s) for s in scores))
        # the full next-token distribution at the same point (free generation)
        state = backend._prefill(backend._encode([ctx])[0])
        with torch.inference_mode():
            logp = backend._log_softmax_rows(state.hidden[-1:])[0]
            h_gen.append(float(-(logp.exp() * logp).sum()))
    seconds = time.perf_counter() - t0
    vocab = int(backend.config.vocab_size)
    return {
        "items": len(items),
        "layout": layout,
        "cue_stages": list(cue),
        "accuracy": {k: sum(v) / len(v) for k, v in per.items()},
        "accuracy_shuffled": {k: sum(v) / len(v) for k, v in per_shuffled.items()},
        "n": {k: len(v) for k, v in per.items()},
        "selection_entropy_mean": sum(h_sel) / len(h_sel),
        "selection_entropy_bound_mean_logK": sum(math.log(k) for k in ks) / len(ks),
        "generation_entropy_mean": sum(h_gen) / len(h_gen),
        "generation_entropy_bound_logM": math.log(vocab),
        "label_probability_mass_mean": sum(label_mass) / len(label_mass),
        "selection_entropies": [round(h, 5) for h in h_sel],
        "generation_entropies": [round(h, 5) for h in h_gen],
        "seconds": seconds,
    }


def speed(backend: Any, decisions: int, seed: int) -> dict[str, Any]:
    """LD path vs naive scoring on the same pursuit decisions (the chain's real inputs).

    The LD path is the policy's: every stage of a decision in one ``choice_logprobs_batch``
    call on the pinned static part (the state read once, each stage adding its cue); the
    batched row gives all decisions' stages to one call, as a sweep's ``act_batch`` does.
    The naive way runs one full forward with full logits per candidate."""
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.chain import collect_states
    from ld_agents.ld.prompts import label_choices, layout_context, static_parts

    base = shipped_base("pursuit")
    stages = base.stage_names
    states = collect_states("Pursuit-v0", 3, seed=seed)[:decisions]
    ks = [len(base.stage_candidates(st)) for st in stages]
    kmax = max(ks)
    layout, cue = _layout_of(backend)
    contexts = [
        [layout_context(layout, base, st, state, cue_stages=cue) for st in stages]
        for state in states
    ]
    for part in static_parts(layout, base, listed_later=cue):
        backend.cache_prefix(part)
    backend.choice_logprobs_batch(contexts[0], label_choices(kmax))  # first-use checks

    def best(rows: list[list[float]]) -> list[int]:
        return [max(range(k), key=r.__getitem__) for r, k in zip(rows, ks, strict=True)]

    before = backend.stats.tokens_processed
    t0 = time.perf_counter()
    fast = []
    for ctxs in contexts:
        fast += best(backend.choice_logprobs_batch(ctxs, label_choices(kmax)))
    t_fast = time.perf_counter() - t0
    tokens_fast = backend.stats.tokens_processed - before
    t0 = time.perf_counter()
    naive = []
    for ctxs in contexts:
        for ctx, k in zip(ctxs, ks, strict=True):
            s = backend.loglikelihood([(ctx, c) for c in label_choices(k)], method="naive")
            naive.append(max(range(k), key=s.__getitem__))
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = backend.choice_logprobs_batch(
        [c for ctxs in contexts for c in ctxs], label_choices(kmax)
    )
    batched = []
    for i in range(len(states)):
        batched += best(flat[i * len(stages) : (i + 1) * len(stages)])
    t_batched = time.perf_counter() - t0
    n = len(states)
    from benchmarks.studies.llm_speed import flop_bound, matmul_gflops, model_sizes

    gflops = matmul_gflops(backend.dtype)
    bound = flop_bound(tokens_fast / n, len(stages), model_sizes(backend), gflops)
    return {
        "decisions": n,
        "layout": layout,
        "matmul_gflops": gflops,
        "ld_flop_bound_seconds_per_decision": bound,
        "ld_vs_flop_bound": (t_fast / n) / bound,
        "stages_per_decision": len(stages),
        "candidates_per_decision": sum(ks),
        "ld_tokens_per_decision": tokens_fast / n,
        "ld_seconds_per_decision": t_fast / n,
        "ld_decisions_per_second": n / t_fast,
        "naive_seconds_per_decision": t_naive / n,
        "naive_decisions_per_second": n / t_naive,
        "speedup": t_naive / t_fast,
        "same_choices": fast == naive,
        "stage_choices_agreeing": _agreeing(fast, naive),
        "batched_seconds_per_decision": t_batched / n,
        "batched_decisions_per_second": n / t_batched,
        "batched_speedup": t_naive / t_batched,
        "batched_same_choices": batched == naive,
        "batched_stage_choices_agreeing": _agreeing(batched, naive),
    }


def _agreeing(a: list[int], b: list[int]) -> str:
    return f"{sum(x == y for x, y in zip(a, b, strict=True))}/{len(b)}"


def _machine() -> str:
    import os

    from ld_agents.llm.hardware import describe_machine

    return f"{describe_machine()}, load average {os.getloadavg()[0]:.1f} at the start"


def _prompts_key(base: Any, items: list[Any]) -> str:
    """A fingerprint of the prompts the items are scored with (a changed manual or state
    line is evaluated afresh)."""
    import hashlib

    from ld_agents.ld.prompts import dynamic_prompt, static_prompt

    h = hashlib.sha256()
    h.update(static_prompt(base, 21).encode())
    for ex in items:
        h.update(dynamic_prompt(base.game, ex.state).encode())
    return h.hexdigest()[:12]


def _adapter_key(game: str, adapter: str | None) -> str:
    """Part files are keyed by the shipped adapter's fingerprints (a retrained adapter is
    evaluated afresh)."""
    if adapter is None:
        return "none"
    from ld_agents.ld.policy import default_adapter

    run = default_adapter(game).parent / "ld_gym_run.json"
    if not run.is_file():
        return "unknown"
    rec = json.loads(run.read_text())
    return f"{rec.get('config', '')}-{rec.get('data', '')}-{rec.get('global_step', '')}"


def plot_entropies(result: dict[str, Any], path: Path) -> Path:
    """Histograms of the per-item selection entropy (over the K labels) and next-token
    entropy (full vocabulary), base model and LD student, one panel per game."""
    from benchmarks.plots import pyplot, save_figure

    plt = pyplot()
    games = [g for g in result["games"] if {"base", "student"} <= set(result["games"][g])]
    fig, axes = plt.subplots(1, len(games), figsize=(5.2 * len(games), 3.6), squeeze=False)
    for ax, game in zip(axes[0], games, strict=True):
        g = result["games"][game]
        top = max(max(g[w]["generation_entropies"]) for w in ("base", "student"))
        bins = [top * i / 30 for i in range(31)]
        styles = {
            ("base", "selection"): ("tab:blue", "-"),
            ("student", "selection"): ("tab:green", "-"),
            ("base", "generation"): ("tab:blue", ":"),
            ("student", "generation"): ("tab:green", ":"),
        }
        for (who, kind), (colour, ls) in styles.items():
            values = g[who][f"{kind}_entropies"]
            name = "base model" if who == "base" else "LD student"
            ax.hist(
                values,
                bins=bins,
                histtype="step",
                color=colour,
                linestyle=ls,
                linewidth=1.6,
                label=f"{name}, {kind} ({sum(values) / len(values):.2f})",
            )
        ax.axvline(g["base"]["selection_entropy_bound_mean_logK"], color="grey", lw=0.8)
        ax.set_title(f"{game}: {g['base']['items']} held-out stage decisions")
        ax.set_xlabel("entropy (nats); grey line: mean log K")
        ax.set_ylabel("decisions")
        ax.legend(fontsize=7)
    fig.suptitle("Selection over K functions vs free generation's next token (mean in legend)")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return save_figure(fig, path)


def _always_first(base: Any, items: list[Any]) -> dict[str, float]:
    """Accuracy of answering the first label every time, in the policy's order (the floor a
    model with a bias for "A" reaches without reading)."""
    per: dict[str, list[int]] = defaultdict(list)
    for ex in items:
        cands = base.stage_candidates(ex.stage)
        key = _stage_key(base, ex)
        if key == "constraints":
            plain = _without_emergency(cands)
            per["constraints (Pursuit-v0 candidates)"].append(int(plain[0].name == ex.answer))
        for k in (key, "all"):
            per[k].append(int(cands[0].name == ex.answer))
    return {k: sum(v) / len(v) for k, v in per.items()}


AS_PLAYED = "all, as played"
_PLAIN = "constraints (Pursuit-v0 candidates)"


def _add_as_played(acc: dict[str, float], n: dict[str, int]) -> None:
    """Add the accuracy over every item as the policy meets it in its env: boards with no
    rule in force with Pursuit-v0's candidates (its base has no emergency function), the
    restricted boards with the restricted-area function listed (PursuitRestricted-v0)."""
    if _PLAIN not in acc:
        return
    rows = [k for k in n if k not in ("all", "constraints", _PLAIN, AS_PLAYED)]
    total = sum(n[k] for k in rows) + n[_PLAIN]
    acc[AS_PLAYED] = (sum(acc[k] * n[k] for k in rows) + acc[_PLAIN] * n[_PLAIN]) / total
    n.setdefault(AS_PLAYED, total)


def _md(result: dict[str, Any]) -> str:
    lines = [
        "# LD selection accuracy, entropy and speed",
        "",
        f"Command: `{result['command']}`; {result['machine']}.",
        "Held-out states: `sample_states(game, N, 'test')` (training used the `train` split).",
        "Prompt: the policy's own (candidates in base order, label-token scoring); the "
        "shuffled columns present the same candidates in a seeded random order per item.",
        "",
    ]
    for game, g in result["games"].items():
        lines += [
            f"## {game}",
            "",
            f"Base model: `{g['base']['backend']}`; student: `{g['student']['backend']}`.",
            "",
            "| stage | n | always A | base model | LD student | base model, shuffled "
            "| LD student, shuffled |",
            "|---|---|---|---|---|---|---|",
        ]
        b, s = g["base"], g["student"]
        first = g.get("always_first", {})
        for k in b["accuracy"]:
            a = f"{first[k]:.1%}" if k in first else "-"
            lines.append(
                f"| {k} | {b['n'][k]} | {a} | {b['accuracy'][k]:.1%} | {s['accuracy'][k]:.1%} | "
                f"{b['accuracy_shuffled'][k]:.1%} | {s['accuracy_shuffled'][k]:.1%} |"
            )
        lines += [
            "",
            "'always A': answering the first candidate every time, in the policy's order (the "
            "right function is often listed first there, so a bias for A scores well without "
            "reading); the shuffled columns remove that floor (chance is 1/K).",
        ]
        if AS_PLAYED in b["accuracy"]:
            lines += [
                "",
                f"'{AS_PLAYED}': every item as the policy meets it in its env (boards with "
                "no rule in force with Pursuit-v0's candidates, restricted boards with the "
                "restricted-area function listed); 'all' and 'constraints' list the "
                "restricted-area function on every board, also where no rule is in force "
                "(there it is a no-op: it removes nothing without an area).",
            ]
        lines += [
            "",
            "| entropy (nats, mean over items) | base model | LD student |",
            "|---|---|---|",
            f"| selection (softmax over K labels) | {b['selection_entropy_mean']:.3f} | "
            f"{s['selection_entropy_mean']:.3f} |",
            f"| bound log K | {b['selection_entropy_bound_mean_logK']:.3f} | "
            f"{s['selection_entropy_bound_mean_logK']:.3f} |",
            f"| free generation (next token, full vocabulary) | "
            f"{b['generation_entropy_mean']:.3f} | {s['generation_entropy_mean']:.3f} |",
            f"| bound log M | {b['generation_entropy_bound_logM']:.3f} | "
            f"{s['generation_entropy_bound_logM']:.3f} |",
            f"| probability mass on the K labels | {b['label_probability_mass_mean']:.3f} | "
            f"{s['label_probability_mass_mean']:.3f} |",
            "",
        ]
    sp = result.get("speed")
    if sp:
        lines += [
            "## Speed (pursuit decisions, 4 stages, student backend)",
            "",
            "| path | s / decision | decisions / s |",
            "|---|---|---|",
            "| LD (label scoring: static part cached, the state read once per decision) | "
            f"{sp['ld_seconds_per_decision']:.3f} | "
            f"{sp['ld_decisions_per_second']:.2f} |",
            f"| LD batched over the {sp['decisions']} decisions (as a sweep's act_batch) | "
            f"{sp['batched_seconds_per_decision']:.3f} | "
            f"{sp['batched_decisions_per_second']:.2f} |",
            f"| naive (full forward + full logits per candidate) | "
            f"{sp['naive_seconds_per_decision']:.3f} | {sp['naive_decisions_per_second']:.3f} |",
            "",
            f"The LD path processes {sp.get('ld_tokens_per_decision', 0):.0f} tokens per "
            f"decision, {sp.get('ld_vs_flop_bound', float('nan')):.2f}x the FLOP bound of "
            "those tokens and 4 output rows at the "
            f"{sp.get('matmul_gflops', float('nan')):.0f} GFLOP/s torch.mm rate measured here.",
            "",
            f"Speed-up {sp['speedup']:.1f}x one decision at a time, "
            f"{sp['batched_speedup']:.1f}x batched, over {sp['decisions']} decisions "
            f"({sp['candidates_per_decision']:.0f} candidates each); stage choices equal to "
            f"naive scoring's (same dtype, full recomputation): "
            f"{sp.get('stage_choices_agreeing', sp['same_choices'])} (batched: "
            f"{sp.get('batched_stage_choices_agreeing', sp['batched_same_choices'])}); "
            "bf16 rounding differs between a cached prefix and a full forward (up to ~0.2 "
            "nats), which flips near-ties.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import sys

    import torch

    from ld_agents.ld.policy import LDConfig, ld_backend_spec
    from ld_agents.llm.base import get_backend

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=150, help="held-out states per game")
    p.add_argument("--games", default="pursuit,twentyone", help="comma list of games")
    p.add_argument("--dtype", default="bfloat16", help="model dtype")
    p.add_argument(
        "--speed-decisions", type=int, default=8, help="pursuit decisions timed (0: no timing)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the state draw")
    p.add_argument("--out", default=str(OUT), help=f"output folder (default {OUT})")
    p.add_argument("--who", default="base,student", help="which halves to run now")
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy CPU)")
    args = p.parse_args(argv)
    parts = Path(args.out) / "ld_selection_parts"
    parts.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result: dict[str, Any] = {
        "command": "python -m benchmarks.studies.ld_selection " + shlex.join(argv or sys.argv[1:]),
        "machine": _machine(),
        "dtype": args.dtype,
        "games": {},
    }
    for game in args.games.split(","):
        base, items = _items(game, args.states, args.seed)
        g: dict[str, Any] = {}
        prompts_key = _prompts_key(base, items)
        for who, adapter in (("base", None), ("student", "default")):
            key = f"{prompts_key}-{_adapter_key(game, adapter)}"
            part = parts / f"{game}-{who}-{args.states}-{key}.json"
            if part.is_file():  # a finished half (runs may be split: --who)
                g[who] = json.loads(part.read_text())
                continue
            if who not in args.who.split(","):
                continue
            spec = ld_backend_spec(game, LDConfig(adapter=adapter, dtype=args.dtype))
            g[who] = evaluate(get_backend(spec), base, items, args.seed)
            g[who]["backend"] = spec
            part.write_text(json.dumps(g[who], indent=2))
            logger.info("%s %s: %s", game, who, g[who]["accuracy"])
        g["always_first"] = _always_first(base, items)
        halves = [g[who] for who in ("base", "student") if who in g]
        for half in halves:  # both halves score the same items, hence the same counts
            _add_as_played(half["accuracy"], half["n"])
            _add_as_played(half["accuracy_shuffled"], half["n"])
        if halves:
            _add_as_played(g["always_first"], halves[0]["n"])
        result["games"][game] = g
        if game == "pursuit" and args.speed_decisions and "student" in args.who:
            spec = ld_backend_spec(game, LDConfig(dtype=args.dtype))
            result["speed"] = speed(get_backend(spec), args.speed_decisions, 70_000)
    if not all({"base", "student"} <= set(g) for g in result["games"].values()):
        logger.info("partial run: halves saved under %s", parts)
        return 0
    out = Path(args.out)
    (out / "ld_selection.json").write_text(json.dumps(result, indent=2))
    (out / "ld_selection.md").write_text(_md(result))
    plot_entropies(result, out / "ld_selection_entropy.png")
    print(_md(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
