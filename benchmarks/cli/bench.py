"""``ld-gym bench``: run or resume a sweep and print the paper's table for it.

ld-gym bench Pursuit-v0 --policies scripted,random --episodes 200 --seed 0 --out runs/p
ld-gym bench Pursuit-v0 --policies raw --model hf:embedded --evader raw --out runs/t1
ld-gym bench TwentyOne-v0 --policies optimal,random --out runs/21 --paired optimal,random
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument

HELP = "run or resume a benchmark sweep and print its table (the paper's Tables 1-3)"


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name, e.g. scripted,random")
    return names


def _pair(text: str) -> tuple[str, str]:
    parts = [n.strip() for n in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two policy labels A,B; got {text!r}")
    return parts[0], parts[1]


def _json_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(obj, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return obj


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.sweep import DEFAULT_EPISODES, EXECUTORS

    parser.add_argument("env_id", metavar="ENV_ID", help="Pursuit-v0, PursuitRestricted-v0, ...")
    parser.add_argument(
        "--policies",
        required=True,
        type=_names,
        metavar="NAME[,NAME...]",
        help="registered policy names (ld_agents.known_policies(ENV_ID))",
    )
    # --episodes is checked by the sweep (episodes < 1 gets the library's message)
    parser.add_argument(
        "--episodes",
        type=int,
        default=DEFAULT_EPISODES,
        metavar="N",
        help=f"episodes per policy (default {DEFAULT_EPISODES}, the paper's)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="sweep seed (default 0)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--model",
        metavar="SPEC",
        help="model spec for LLM policies (hf:embedded, vllm:PATH, openai:URL?model=NAME)",
    )
    parser.add_argument(
        "--evader",
        "--opponent",
        dest="opponent",
        metavar="NAME",
        help="the other side: pursuit's evader (greedy, random, or a policy such as raw); "
        "21 points' opponent (dealer, random, ...)",
    )
    parser.add_argument(
        "--evader-model",
        "--opponent-model",
        dest="opponent_model",
        metavar="SPEC",
        help="model spec for an LLM evader/opponent (default: --model)",
    )
    parser.add_argument(
        "--env-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="gym.make keyword arguments, e.g. '{\"size\": 21}'",
    )
    parser.add_argument(
        "--policy-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="keyword arguments for every policy (ld_agents.make)",
    )
    parser.add_argument(
        "--chunk-size",
        type=_positive,
        default=None,
        metavar="N",
        help="episodes per unit of work and per batch (default 20; fixed per folder)",
    )
    parser.add_argument(
        "--workers", type=_positive, default=1, metavar="N", help="parallel workers (default 1)"
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="serial, process or ray (default: serial, or process with --workers > 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--paired",
        type=_pair,
        action="append",
        default=[],
        metavar="A,B",
        help="add a paired comparison of two policies (repeatable)",
    )
    parser.add_argument(
        "--paper-family",
        default="GLM4",
        metavar="NAME",
        help="the paper's model family for the paper column: GLM4, LLaMA3, Qwen2.5, or none",
    )


def _takes(name: str, env_id: str, key: str) -> bool:
    """Whether policy ``name``'s factory names the argument ``key`` (not just **kwargs)."""
    from benchmarks.rollout import _factory

    try:
        return key in inspect.signature(_factory(name, env_id)).parameters
    except (KeyError, TypeError, ValueError):
        return False


def spec_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~benchmarks.sweep.SweepSpec` an ``ld-gym bench`` command line asks for."""
    from benchmarks.results_io import read_manifest
    from benchmarks.sweep import DEFAULT_CHUNK_SIZE, PolicySpec, SweepSpec, game_hooks

    hooks = game_hooks(args.env_id)  # unknown env id fails here, listing the known
    env_kwargs = dict(args.env_kwargs)
    if args.opponent is not None:
        env_kwargs[hooks.opponent_key] = args.opponent
    opponent_model = args.opponent_model or args.model
    opponent = env_kwargs.get(hooks.opponent_key)
    if (
        opponent_model
        and opponent not in (None, *hooks.builtin_opponents)
        and _takes(opponent, args.env_id, "model")
    ):
        extra = dict(env_kwargs.get(hooks.opponent_kwargs_key) or {})
        extra.setdefault("model", opponent_model)
        env_kwargs[hooks.opponent_kwargs_key] = extra
    elif args.opponent_model and opponent in (None, *hooks.builtin_opponents):
        raise InvalidArgument(
            f"--evader-model needs --evader naming an LLM policy, not {opponent or 'the default'}"
        )
    policies = []
    for name in args.policies:
        kwargs = dict(args.policy_kwargs)
        if args.model and _takes(name, args.env_id, "model"):
            kwargs.setdefault("model", args.model)
        policies.append(PolicySpec(name, kwargs))
    chunk = args.chunk_size
    if chunk is None:
        old = read_manifest(args.out) if args.out.is_dir() else None
        chunk = int(old.get("chunk_size", DEFAULT_CHUNK_SIZE)) if old else DEFAULT_CHUNK_SIZE
    return SweepSpec(
        env_id=args.env_id,
        policies=policies,
        episodes=args.episodes,
        seed=args.seed,
        env_kwargs=env_kwargs,
        chunk_size=chunk,
    )


def run(args: argparse.Namespace) -> int:
    from benchmarks.sweep import RunOptions, run_sweep
    from benchmarks.tables import build_report

    spec = spec_from_args(args)
    labels = {p.label for p in spec.policies}
    family = None if args.paper_family.lower() == "none" else args.paper_family
    if family is not None:
        from benchmarks.tables import paper_column

        paper_column(spec.env_id, family)  # an unknown family fails before the sweep runs
    executor = args.executor or ("process" if args.workers > 1 else "serial")
    options = RunOptions(
        executor=executor, workers=args.workers, progress=False if args.no_progress else None
    )
    result = run_sweep(spec, args.out, options)
    for msg in result.report.messages(args.out / "episodes.jsonl"):
        print(f"warning: {msg}", file=sys.stderr)
    known = set(result.policies)
    for a, b in args.paired:
        for name in (a, b):
            if name not in known:
                raise InvalidArgument(
                    f"--paired {a},{b}: no policy {name!r} in {args.out}; "
                    f"known: {', '.join(sorted(known))}"
                )
    report = build_report(result.manifest, result.records, paired=args.paired, family=family)
    paths = report.save(args.out)
    print(report.to_text())
    extra = sorted(known - labels)
    if extra:
        print(f"(also in this folder: {', '.join(extra)})")
    print(
        f"ran {result.ran} episodes in {result.seconds:.1f} s; "
        f"saved {', '.join(str(p) for p in paths)}"
    )
    return 0
