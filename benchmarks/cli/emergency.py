"""``ld-gym emergency RULE``: turn a new rule given as text into a validated function.

The model (``--model``, default the embedded ``hf:embedded``; any spec, e.g. an
OpenAI-compatible teacher ``openai:URL?model=NAME``) writes ``--samples`` candidates from
code-completion prompts (rule text, stage, types, a neighbouring function, a signature and
a docstring); each is checked statically and validated in the sandbox against the rule's
properties; the first that passes is written as an extension file (``--out``, default
``assets/function_bases/generated/<game>_<rule>_emergency.json``). When none passes, the
shipped stand-in is written instead, labelled ``"stand-in, generation failed"``. The
report (JSON + Markdown) goes to ``--report-dir`` (default
``benchmarks/results/emergency``). Exit 0 when a generated function passed, 2 when the
stand-in was used.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ld_agents.ld.emergency import EmergencyResult

logger = logging.getLogger(__name__)

HELP = "write a new function for a new rule (emergency), validate it, add it to the base"

EXIT_GENERATED, EXIT_FALLBACK = 0, 2

DEFAULT_RULE = "no piece may enter the 5x5 block (x0, y0, x1, y1)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "rule",
        nargs="?",
        default=DEFAULT_RULE,
        help=f"the new rule as text (default: {DEFAULT_RULE!r})",
    )
    parser.add_argument("--game", default="pursuit", choices=["pursuit"])
    parser.add_argument("--model", default="hf:embedded", help="model spec that writes the code")
    parser.add_argument("--base", default=None, help="base JSON (default: the shipped base)")
    parser.add_argument("--samples", type=int, default=8, help="samples (prompt variants) to try")
    parser.add_argument("--batch", type=int, default=4, help="samples generated per batch")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument(
        "--stop-at-first", action="store_true", help="stop after the batch where one passes"
    )
    parser.add_argument(
        "--variants", default=None, help="comma-separated prompt variant keys (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation inputs")
    parser.add_argument("--out", default=None, help="extension file to write")
    parser.add_argument("--report-dir", default="benchmarks/results/emergency")
    parser.add_argument("--name", default=None, help="report file stem (default from the model)")


def _stem(model: str) -> str:
    keep = "".join(c if c.isalnum() else "_" for c in model)
    return "_".join(p for p in keep.split("_") if p)[:60] or "model"


def _default_stem(args: argparse.Namespace, result: EmergencyResult) -> str:
    return f"{args.game}_{result.rule_kind}_{_stem(args.model)}"


def run(args: argparse.Namespace) -> int:
    from ld_agents.ld.base import bases_dir, load_function_base, shipped_base
    from ld_agents.ld.emergency import handle_emergency, write_extension, write_report

    base = load_function_base(args.base) if args.base else shipped_base(args.game)
    stem = args.name

    def partial(res: EmergencyResult) -> None:
        # a partial report after each batch: a long run interrupted keeps what it judged
        write_report(res, args.report_dir, f"{stem or _default_stem(args, res)}.partial")

    result = handle_emergency(
        args.rule,
        base,
        backend=args.model,
        samples=args.samples,
        stop_at_first=args.stop_at_first,
        batch=args.batch,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        variants=args.variants.split(",") if args.variants else None,
        progress=partial,
    )
    stem = stem or _default_stem(args, result)
    for leftover in Path(args.report_dir).glob(f"{stem}.partial.*"):
        leftover.unlink()
    out = Path(args.out) if args.out else bases_dir() / "generated" / f"{stem}.json"
    write_extension(result, out)
    j, m = write_report(result, args.report_dir, stem)
    print(
        f"rule {args.rule!r} -> stage {result.stage}: {result.tried} samples from "
        f"{result.model}, {result.passed} passed"
    )
    if result.source_kind == "generated":
        print(f"added {result.function} (sample {result.first_pass}); extension {out}")
    else:
        print(
            f"NO SAMPLE PASSED: fell back to the shipped stand-in {result.function} "
            f"(provenance 'stand-in, generation failed'); extension {out}"
        )
    print(f"report: {j}, {m}")
    return EXIT_GENERATED if result.source_kind == "generated" else EXIT_FALLBACK
