"""``ld-gym emergency RULE``: turn a new rule given as text into a validated function.

The model (``--model``, default the embedded ``hf:embedded``; any spec, e.g. an
OpenAI-compatible teacher ``openai:URL?model=NAME``) writes ``--samples`` candidates from
code-completion prompts; each is checked statically and validated in the sandbox against the
rule's properties; the first that passes is written as an extension file (``--out``, default
``runs/emergency/<game>_<rule>_<model>.json``). When none passes, the shipped stand-in is
written instead, labelled ``"stand-in, generation failed"``. The report (JSON + Markdown)
goes to ``--report-dir`` (default ``runs/emergency/reports``). Exit 0 when a generated
function passed, 2 when the stand-in was used. The work is
:func:`ld_agents.ld.emergency.run_emergency`.
"""

from __future__ import annotations

import argparse

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
    parser.add_argument(
        "--game", default="pursuit", choices=["pursuit"], help="the game the rule is for"
    )
    parser.add_argument("--model", default="hf:embedded", help="model spec that writes the code")
    parser.add_argument("--base", default=None, help="base JSON (default: the shipped base)")
    parser.add_argument("--samples", type=int, default=8, help="samples (prompt variants) to try")
    parser.add_argument("--batch", type=int, default=4, help="samples generated per batch")
    parser.add_argument(
        "--max-new-tokens", type=int, default=160, help="longest completion per sample, in tokens"
    )
    parser.add_argument(
        "--stop-at-first", action="store_true", help="stop after the batch where one passes"
    )
    parser.add_argument(
        "--variants", default=None, help="comma-separated prompt variant keys (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation inputs")
    parser.add_argument(
        "--out",
        default=None,
        help="extension file to write (default: runs/emergency/STEM.json; name a path under "
        "assets/function_bases/generated/ to ship it)",
    )
    parser.add_argument(
        "--report-dir",
        default=None,
        help="folder of the report STEM.json + STEM.md (default: runs/emergency/reports)",
    )
    parser.add_argument(
        "--name", default=None, help="file stem STEM (default: <game>_<rule kind>_<model>)"
    )


def run(args: argparse.Namespace) -> int:
    from ld_agents.ld.emergency import run_emergency

    done = run_emergency(
        args.rule,
        game=args.game,
        model=args.model,
        base=args.base,
        samples=args.samples,
        batch=args.batch,
        max_new_tokens=args.max_new_tokens,
        stop_at_first=args.stop_at_first,
        variants=args.variants.split(",") if args.variants else None,
        seed=args.seed,
        out=args.out,
        report_dir=args.report_dir,
        name=args.name,
    )
    result = done.result
    print(
        f"rule {args.rule!r} -> stage {result.stage}: {result.tried} samples from "
        f"{result.model}, {result.passed} passed"
    )
    if result.source_kind == "generated":
        print(f"added {result.function} (sample {result.first_pass}); extension {done.extension}")
    else:
        print(
            f"NO SAMPLE PASSED: fell back to the shipped stand-in {result.function} "
            f"(provenance 'stand-in, generation failed'); extension {done.extension}"
        )
    print(f"report: {done.report_json}, {done.report_md}")
    return EXIT_GENERATED if result.source_kind == "generated" else EXIT_FALLBACK
