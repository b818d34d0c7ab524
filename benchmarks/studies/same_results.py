"""Same results, faster: the LLM policies' choices on one fixed set of decisions, path by path.

    python -m benchmarks.studies.same_results [--decisions 200] [--ld-naive 40] [--out DIR]

The decisions are the observations met while the scripted pursuers play ``Pursuit-v0``
against the greedy evader (episode seeds 9000, 9001, ...; apart from the benchmark's), so
every policy answers the same boards.

* ``kd`` and ``raw``: float32 (the previous default) against ``dtype=auto`` (bfloat16 on a
  CPU with bfloat16 instructions, float32 elsewhere), both batched as a sweep batches them
  (``act_batch`` over ``--batch`` decisions); the actions that differ are listed.
* ``--compare drafts``: ``kd`` and ``raw`` with dtype=auto, decoded token by token against
  prompt-lookup drafted decoding (``ld_agents.llm.speculative``), on one loaded model.
* ``--compare attention``: ``kd`` and ``raw`` with dtype=auto, ``ld`` in its bf16, their
  attention by torch's kernel against bf16 products (``attention=matmul``,
  ``ld_agents.llm.cpu_attention``), on one loaded model; each difference is also played
  alone in float32.
* ``--compare head``: the same three, their output layer by ``F.linear`` against
  ``(W @ rows.T).T`` (``head=transposed``, ``ld_agents.llm.float32_products``), one model
  each; each difference is also played alone in float32.
* ``ld``: the policy's path (every stage of a batch of decisions in one
  ``choice_logprobs_batch`` call, a token tree on the pinned static part) against the
  naive way (one full forward per candidate, ``loglikelihood(method="naive")``) on the
  first ``--ld-naive`` decisions, same adapter and dtype.

Milliseconds per decision are measured in the same run (with the CPU's flags). Writes
``same_results.{json,md}`` into ``--out`` (default ``runs/same_results``; the committed
record: ``--out benchmarks/results/same_results``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

OUT = Path("runs") / "same_results"


def observations(n: int, seed: int = 9000) -> list[Any]:
    """``n`` observations of scripted play on Pursuit-v0 (greedy evader)."""
    import gymnasium as gym

    import ld_agents
    import ld_envs  # noqa: F401

    env = gym.make("Pursuit-v0")
    player = ld_agents.make("scripted", "Pursuit-v0")
    out: list[Any] = []
    episode = 0
    while len(out) < n:
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done and len(out) < n:
            out.append(obs)
            obs, _, term, trunc, _ = env.step(player.act(obs))
            done = term or trunc
        episode += 1
    env.close()
    return out


def play(policy: Any, obs: list[Any], batch: int) -> tuple[list[list[int]], float]:
    """Actions (as lists) and milliseconds per decision, batched as a sweep batches."""
    actions: list[list[int]] = []
    t0 = time.perf_counter()
    for i in range(0, len(obs), batch):
        actions += [list(map(int, a)) for a in policy.act_batch(obs[i : i + batch])]
    return actions, 1000 * (time.perf_counter() - t0) / len(obs)


def _spec(name: str, engine: str, dtype: str) -> str:
    from ld_agents.kd.policy import default_adapter, kd_backend_spec

    if engine == "vllm":
        dtype = "bfloat16" if dtype == "auto" else dtype
        extra = f"&adapter={default_adapter('Pursuit-v0')}" if name == "kd" else ""
        return f"vllm:embedded?dtype={dtype}{extra}"
    if name == "kd":
        return kd_backend_spec(default_adapter("Pursuit-v0"), dtype=dtype)
    return f"hf:embedded?dtype={dtype}"


def compare_dtypes(name: str, obs: list[Any], batch: int, engine: str = "hf") -> dict[str, Any]:
    """``name`` (kd or raw) in float32 (transformers) and with dtype=auto on ``engine``
    (transformers, or vLLM in bfloat16): agreement, differences, speed."""
    import ld_agents
    from ld_agents.llm.base import get_backend

    runs = {}
    for dtype in ("float32", "auto"):
        spec = _spec(name, engine if dtype == "auto" else "hf", dtype)
        policy = ld_agents.make(name, "Pursuit-v0", model=get_backend(spec))
        policy.act_batch(obs[:2])  # load and warm up
        actions, ms = play(policy, obs, batch)
        runs[dtype] = {
            "ms_per_decision": ms,
            "actions": actions,
            "dtype": str(getattr(policy.backend, "dtype", "bfloat16")).removeprefix("torch."),
            "spec": spec,
            "why": getattr(policy.backend, "dtype_reason", ""),
        }
    a, b = runs["float32"]["actions"], runs["auto"]["actions"]
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return {
        "decisions": len(obs),
        "equal": len(obs) - len(diff),
        "differ": [{"decision": i, "float32": a[i], "auto": b[i]} for i in diff],
        "float32_ms": runs["float32"]["ms_per_decision"],
        "auto_ms": runs["auto"]["ms_per_decision"],
        "auto_dtype": runs["auto"]["dtype"],
        "engine": engine,
        "auto_why": runs["auto"]["why"],
        "speedup": runs["float32"]["ms_per_decision"] / runs["auto"]["ms_per_decision"],
    }


def compare_drafts(name: str, obs: list[Any], batch: int) -> dict[str, Any]:
    """``name`` (kd or raw) with dtype=auto, decoded token by token (``draft_tokens=0``)
    and with prompt-lookup drafts (the default), on one loaded model: agreement, speed,
    forwards per decision and the guesses kept."""
    import ld_agents
    from ld_agents.llm.base import get_backend

    spec = _spec(name, "hf", "auto")
    policy = ld_agents.make(name, "Pursuit-v0", model=get_backend(spec))
    backend = policy.backend
    default = backend.draft_tokens
    policy.act_batch(obs[:2])  # load and warm up
    runs = {}
    for label, k in (("token_by_token", 0), ("drafted", default)):
        backend.draft_tokens = k
        before = backend.stats.snapshot()
        actions, ms = play(policy, obs, batch)
        after = backend.stats.snapshot()
        extra = {k: after.get(k, 0) - before.get(k, 0) for k in ("draft_tokens", "draft_accepted")}
        passes = after["forward_passes"] - before["forward_passes"]
        runs[label] = {"actions": actions, "ms": ms, "passes": passes / len(obs), **extra}
    a, b = runs["token_by_token"]["actions"], runs["drafted"]["actions"]
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    drafted = runs["drafted"]
    differ = [{"decision": i, "token_by_token": a[i], "drafted": b[i]} for i in diff]
    _alone(policy, [obs[i] for i in diff], differ, default, "")
    if diff:  # the same decisions one at a time in float32
        exact = ld_agents.make(name, "Pursuit-v0", model=get_backend(_spec(name, "hf", "float32")))
        _alone(exact, [obs[i] for i in diff], differ, default, "_float32")
    return {
        "decisions": len(obs),
        "equal": len(obs) - len(diff),
        "differ": differ,
        "explained": _explain(differ),
        "paths": f"token by token vs drafted (draft_tokens={default}), "
        f"{str(backend.dtype).removeprefix('torch.')}",
        "old_ms": runs["token_by_token"]["ms"],
        "new_ms": drafted["ms"],
        "forwards_per_decision": {k: runs[k]["passes"] for k in runs},
        "guesses_fed": drafted["draft_tokens"],
        "guesses_kept": drafted["draft_accepted"],
        "speedup": runs["token_by_token"]["ms"] / drafted["ms"],
    }


def compare_attention(name: str, obs: list[Any], batch: int) -> dict[str, Any]:
    """``name`` (kd or raw with dtype=auto, ld with its bf16 default) with its attention by
    torch's kernel and by bf16 products (``attention=matmul``, ``ld_agents.llm.cpu_attention``),
    on one model per path; each differing decision is also played alone in float32."""
    return _compare_option(
        name,
        obs,
        batch,
        "attention",
        ("kernel", "matmul"),
        "attention by torch's kernel vs by bf16 products (attention=matmul)",
        taken="attention",
        needs="a bf16 model on a CPU with bf16 instructions",
    )


def compare_head(name: str, obs: list[Any], batch: int) -> dict[str, Any]:
    """``name`` (kd or raw with dtype=auto, ld with its bf16 default) with its output layer
    multiplied by ``F.linear`` and as ``(W @ rows.T).T`` (``head=transposed``,
    ``ld_agents.llm.float32_products``), on one model per path; each differing decision is
    also played alone in float32."""
    return _compare_option(
        name,
        obs,
        batch,
        "head",
        ("linear", "transposed"),
        "output layer by F.linear vs as (W @ rows.T).T (head=transposed)",
        taken="head_product",
    )


def compare_products(name: str, obs: list[Any], batch: int) -> dict[str, Any]:
    """``name`` (kd or raw with dtype=auto, ld with its bf16 default) with torch's own bf16
    products and with float32 products rounded to bf16 (``bf16_matmul=native`` and
    ``float32``, ``ld_agents.llm.product_speed``; attention follows its ``auto`` rule), on
    one model per path; each differing decision is also played alone in float32."""
    return _compare_option(
        name,
        obs,
        batch,
        "bf16_matmul",
        ("native", "float32"),
        "torch's bf16 products vs float32 products rounded to bf16 (bf16_matmul=float32)",
        taken="bf16_matmul",
        needs="a bf16 model",
    )


def _compare_option(
    name: str,
    obs: list[Any],
    batch: int,
    option: str,
    modes: tuple[str, str],
    paths: str,
    taken: str,
    needs: str | None = None,
) -> dict[str, Any]:
    """``name`` played with backend ``option`` at each of ``modes`` (old, new), a fresh
    model each (nothing cached is shared): agreement and speed; differing decisions
    replayed alone in float32. A backend whose attribute ``taken`` is not the mode asked
    for, or (where the comparison ``needs`` a bf16 model) that is not bf16, is refused."""
    import ld_agents
    from ld_agents.ld.policy import LDConfig, ld_backend_spec
    from ld_agents.llm.base import get_backend, make_backend
    from ld_envs.errors import InvalidArgument

    spec = ld_backend_spec("pursuit", LDConfig()) if name == "ld" else _spec(name, "hf", "auto")
    runs = {}
    for mode in modes:
        backend = make_backend(f"{spec}&{option}={mode}")
        got = getattr(backend, taken)
        if got != mode or (needs and str(backend.dtype) != "torch.bfloat16"):
            raise InvalidArgument(
                f"comparing {option}={mode} needs {needs or 'a backend that takes it'}; "
                f"got {backend.dtype} with {option} {got}"
            )
        policy = ld_agents.make(name, "Pursuit-v0", model=backend)
        policy.act_batch(obs[:2])  # warm up
        runs[mode] = play(policy, obs, batch)
        backend.close()
    (a, old_ms), (b, new_ms) = runs[modes[0]], runs[modes[1]]
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    differ = [{"decision": i, modes[0]: a[i], modes[1]: b[i]} for i in diff]
    if diff:
        if name == "ld":
            exact = ld_agents.make("ld", "Pursuit-v0", dtype="float32")
        else:
            exact = ld_agents.make(
                name, "Pursuit-v0", model=get_backend(_spec(name, "hf", "float32"))
            )
        for row in differ:
            row["float32_alone"] = list(map(int, exact.act_batch([obs[row["decision"]]])[0]))
    explained = {"differing": len(diff)}
    for mode in modes:
        explained[f"{mode}_equals_float32"] = sum(r[mode] == r["float32_alone"] for r in differ)
    return {
        "decisions": len(obs),
        "equal": len(obs) - len(diff),
        "differ": differ,
        "modes": list(modes),
        "explained": explained,
        "paths": f"{paths}, {str(backend.dtype).removeprefix('torch.')}",
        "old_ms": old_ms,
        "new_ms": new_ms,
        "speedup": old_ms / new_ms,
    }


def _alone(policy: Any, obs: list[Any], rows: list[dict[str, Any]], k: int, tag: str) -> None:
    """Add to each of ``rows`` the actions of both decoding paths on its decision alone
    (batch 1: no padding, no earlier answers as drafts), under ``alone_token_by_token<tag>``
    and ``alone_drafted<tag>``."""
    for label, tokens in (("token_by_token", 0), ("drafted", k)):
        policy.backend.draft_tokens = tokens
        for row, o in zip(rows, obs, strict=True):
            policy.backend.forget_answers()  # no drafts from the other path's answer
            row[f"alone_{label}{tag}"] = list(map(int, policy.act_batch([o])[0]))


def _explain(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many of the differing decisions each cause covers."""

    def count(a: str, b: str) -> int:
        return sum(r[a] == r[b] for r in rows)

    return {
        "differing": len(rows),
        "float32_paths_equal_alone": count("alone_token_by_token_float32", "alone_drafted_float32"),
        "token_by_token_batched_equals_alone": count("token_by_token", "alone_token_by_token"),
        "drafted_batched_equals_alone": count("drafted", "alone_drafted"),
        "paths_equal_alone": count("alone_token_by_token", "alone_drafted"),
        "token_by_token_equals_float32": count("token_by_token", "alone_drafted_float32"),
        "drafted_equals_float32": count("drafted", "alone_drafted_float32"),
    }


def naive_stage_choices(policy: Any, obs: list[Any]) -> list[str]:
    """The function an LD ``policy`` chooses at each stage of each observation, scored the
    naive way: one full forward per candidate (``loglikelihood(method="naive")``)."""
    from ld_agents.ld.prompts import label_choices

    chosen: list[str] = []
    for o in obs:
        state = policy.state(o)
        for stage in policy.base.stage_names:
            cands = policy.stage_candidates(stage, state)
            ctx = policy.prompt(stage, cands, state)
            s = policy.backend.loglikelihood(
                [(ctx, c) for c in label_choices(len(cands))], method="naive"
            )
            chosen.append(cands[max(range(len(s)), key=s.__getitem__)].name)
    return chosen


def compare_ld(obs: list[Any], naive_n: int, batch: int) -> dict[str, Any]:
    """The LD policy's path against naive scoring on the same decisions (stage choices)."""
    import ld_agents

    policy = ld_agents.make("ld", "Pursuit-v0")
    policy.act_batch(obs[:2])
    t0 = time.perf_counter()
    fast: list[str] = []
    for i in range(0, len(obs), batch):
        policy.act_batch(obs[i : i + batch])
        fast += [d.chosen for ds in policy.last_decisions for d in ds]
    fast_ms = 1000 * (time.perf_counter() - t0) / len(obs)
    stages = policy.base.stage_names
    t0 = time.perf_counter()
    naive = naive_stage_choices(policy, obs[:naive_n])
    naive_ms = 1000 * (time.perf_counter() - t0) / max(1, naive_n)
    policy.close()
    k = len(naive)
    diff = [i for i in range(k) if fast[i] != naive[i]]
    return {
        "decisions": len(obs),
        "naive_decisions": naive_n,
        "stage_choices_compared": k,
        "equal": k - len(diff),
        "differ": [
            {
                "decision": i // len(stages),
                "stage": stages[i % len(stages)],
                "policy": fast[i],
                "naive": naive[i],
            }
            for i in diff
        ],
        "policy_ms": fast_ms,
        "naive_ms": naive_ms,
        "speedup": naive_ms / fast_ms,
    }


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Same results, faster",
        "",
        f"Command: `{r['command']}`; commit {r['commit']}; {r['machine']}.",
        f"{r['decisions']} decisions of scripted play on Pursuit-v0 (episode seeds from 9000), "
        f"batched {r['batch']} at a time.",
        "",
        "| policy | paths compared | equal | ms / decision (old) | ms / decision (new) | "
        "speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("kd", "raw", "ld"):
        if name in r and (name != "ld" or "paths" in r[name]):
            x = r[name]
            paths = x.get("paths") or (
                f"transformers float32 vs {x.get('engine', 'hf')} dtype=auto ({x['auto_dtype']})"
            )
            old_ms, new_ms = x.get("old_ms", x.get("float32_ms")), x.get("new_ms", x.get("auto_ms"))
            lines.append(
                f"| {name} | {paths} | {x['equal']}/{x['decisions']} | {old_ms:.0f} | "
                f"{new_ms:.0f} | {x['speedup']:.2f}x |"
            )
    if "ld" in r and "naive_ms" in r["ld"]:
        x = r["ld"]
        lines.append(
            f"| ld | naive scoring vs the policy's token tree (stage choices of the first "
            f"{x['naive_decisions']} decisions) | {x['equal']}/{x['stage_choices_compared']} | "
            f"{x['naive_ms']:.0f} | {x['policy_ms']:.0f} | {x['speedup']:.1f}x |"
        )
    lines.append("")
    for name in ("kd", "raw", "ld"):
        if name in r and r[name]["differ"]:
            lines += [f"Differences ({name}):", ""]
            lines += [f"- {json.dumps(d)}" for d in r[name]["differ"]]
            lines.append("")
    for name in ("kd", "raw"):
        if name in r and "guesses_fed" in r[name]:
            x = r[name]
            f = x["forwards_per_decision"]
            lines.append(
                f"{name}: forwards per decision {f['token_by_token']:.1f} token by token, "
                f"{f['drafted']:.1f} drafted; guesses kept {x['guesses_kept']} of "
                f"{x['guesses_fed']}."
            )
            e = x.get("explained") or {}
            if e.get("differing"):
                lines.append(
                    f"Of its {e['differing']} differing decisions, rerun one at a time: in "
                    f"float32 the two paths agree on {e['float32_paths_equal_alone']}; in "
                    f"{x['paths'].rsplit(', ', 1)[-1]} they agree on {e['paths_equal_alone']}. "
                    "The batched token-by-token path equals itself alone on "
                    f"{e['token_by_token_batched_equals_alone']} (its rows are left-padded, and "
                    "past the 512-token sliding window padding shifts what a sliding layer "
                    f"sees); the batched drafted path on {e['drafted_batched_equals_alone']} "
                    "(rounding of other shapes). Equal to float32: token by token "
                    f"{e['token_by_token_equals_float32']}, drafted {e['drafted_equals_float32']}."
                )
            lines.append("")
    for name in ("kd", "raw", "ld"):
        e = r.get(name, {}).get("explained", {})
        old, new = r.get(name, {}).get("modes", ("kernel", "matmul"))
        if f"{new}_equals_float32" in e and e["differing"]:
            lines += [
                f"{name}: of its {e['differing']} differing decisions, played alone in float32, "
                f"the {old} path's choice equals float32's on {e[f'{old}_equals_float32']} and "
                f"the {new} path's on {e[f'{new}_equals_float32']}.",
                "",
            ]
    lines.append(
        "Differences between float32 and bfloat16 are rounding: greedy decoding takes another "
        "token where two were within bfloat16's precision. LD's differences (if any) are "
        "the same rounding between one full forward and the cached tree. Drafted decoding's "
        "differences (if any) are bfloat16 rounding too: a forward of several tokens rounds "
        "a little differently from one of a single token (in float32 the texts are equal, "
        "tests/test_speculative.py)."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys

    from ld_agents.files import git_commit, output_path, write_json_atomic, write_text_atomic
    from ld_agents.llm.hardware import describe_machine

    p = argparse.ArgumentParser(prog="python -m benchmarks.studies.same_results")
    p.add_argument("--decisions", type=int, default=200, help="decisions compared")
    p.add_argument("--batch", type=int, default=20, help="decisions per act_batch call")
    p.add_argument("--ld-naive", type=int, default=40, help="LD decisions also scored naively")
    p.add_argument("--policies", default="kd,raw,ld", help="comma list of kd, raw, ld")
    p.add_argument(
        "--engine",
        default="hf",
        choices=["hf", "vllm"],
        help="the new path's engine for kd and raw (vllm: run in the vLLM venv)",
    )
    p.add_argument(
        "--compare",
        default="dtypes",
        choices=["dtypes", "drafts", "attention", "head", "products"],
        help="for kd and raw: float32 against dtype=auto (dtypes), or token-by-token "
        "decoding against prompt-lookup drafts, both dtype=auto (drafts); for kd, raw and "
        "ld: attention by torch's kernel against bf16 products (attention), or the output "
        "layer by F.linear against (W @ rows.T).T (head), or torch's bf16 products against "
        "float32 products rounded to bf16 (products)",
    )
    p.add_argument("--out", default=str(OUT), help="output folder")
    args = p.parse_args(argv)
    out = output_path(args.out)
    obs = observations(args.decisions)
    result: dict[str, Any] = {
        "command": "python -m benchmarks.studies.same_results " + shlex.join(sys.argv[1:]),
        "commit": git_commit(),
        "machine": describe_machine(),
        "decisions": args.decisions,
        "batch": args.batch,
    }
    for name in args.policies.split(","):
        if args.compare == "attention":
            result[name] = compare_attention(name, obs, args.batch)
        elif args.compare == "head":
            result[name] = compare_head(name, obs, args.batch)
        elif args.compare == "products":
            result[name] = compare_products(name, obs, args.batch)
        elif name in ("kd", "raw") and args.compare == "drafts":
            result[name] = compare_drafts(name, obs, args.batch)
        elif name in ("kd", "raw"):
            result[name] = compare_dtypes(name, obs, args.batch, args.engine)
        elif name == "ld":
            result["ld"] = compare_ld(obs, args.ld_naive, args.batch)
        print(name, {k: v for k, v in result[name].items() if k != "differ"}, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "same_results.json", result)
    write_text_atomic(out / "same_results.md", to_markdown(result))
    print(out / "same_results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
