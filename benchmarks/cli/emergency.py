"""``ld-gym emergency "RULE TEXT"``: the small model writes the function for a new rule.

    ld-gym emergency "Pursuer B may not stop in the same column as pursuer A." \\
        --rule '{"kind": "guard", "pursuer": "A", "other": "B", "axis": "column"}'
    ld-gym emergency "No piece may step into the block in state['restricted']." \\
        --rule restricted_area
    ld-gym emergency "No pursuer may stop on the four cells diagonal to the evader."

The writer (``--model``, default the embedded Gemma-3-270M with the shipped writer adapter)
draws ``--samples`` completions at ``--temperature``, seeds ``--seed``, ``--seed``+1, ...;
each is validated in the sandbox: against the rule's semantics when ``--rule`` gives them
(a spec in the schema of ``ld_envs.pursuit_rules``, or ``restricted_area``), otherwise
only the checks that need none (the report says which ran). The first sample that passes
is written as an extension file (``--out``); load it with
``ld_agents.make("ld", ENV_ID, extensions=[OUT], rules=[SPEC])``. Exit 0 when a sample
passed, 3 when none did (nothing is added). The work is
:func:`ld_agents.ld.emergency.write_rule_function`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.cli.arguments import out_path, positive, seed

HELP = "the small model writes the function for a new rule; validate it; add it to the base"

EXIT_PASSED, EXIT_NONE_PASSED = 0, 3


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rule_text", metavar="RULE", help="the new rule, as text")
    parser.add_argument(
        "--rule",
        default=None,
        metavar="SPEC",
        help="the rule's semantics: a JSON spec in the schema of ld_envs.pursuit_rules, a .json "
        "file holding one, or restricted_area (the drawn 5x5 area); without it only the "
        "checks that need no semantics run",
    )
    parser.add_argument(
        "--model", default="hf:embedded", help="model spec of the writer (hf:, vllm:, openai:)"
    )
    parser.add_argument(
        "--adapter",
        default="default",
        help="writer LoRA adapter folder for an hf: model: 'default' (the shipped one) or 'none'",
    )
    parser.add_argument("--samples", type=positive, default=8, help="functions to sample")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the first sample")
    parser.add_argument("--boards", type=positive, default=60, help="sampled boards per validation")
    parser.add_argument("--max-new-tokens", type=positive, default=160, help="longest completion")
    parser.add_argument("--name", default=None, help="file stem and function name")
    parser.add_argument(
        "--out",
        type=out_path,
        default=None,
        help="extension file (default: runs/emergency/NAME.json)",
    )
    parser.add_argument(
        "--report-dir",
        type=out_path,
        default="runs/emergency/reports",
        help="folder of NAME.json + NAME.md",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    from ld_agents.files import check_output_file, check_output_folder, mark_made
    from ld_agents.ld.emergency import (
        function_name,
        read_rule_arg,
        save_result,
        write_rule_function,
    )

    name = args.name or function_name(args.rule_text)
    out = Path(args.out) if args.out else Path("runs") / "emergency" / f"{name}.json"
    # refuse to replace a user's files before the model runs
    check_output_file(out, overwrite=args.overwrite, replaceable=False)
    check_output_folder(
        args.report_dir, [f"{name}.json", f"{name}.md"], overwrite=args.overwrite,
        option="--report-dir",
    )  # fmt: skip
    result = write_rule_function(
        args.rule_text,
        rule=read_rule_arg(args.rule),
        model=args.model,
        adapter=None if args.adapter == "none" else args.adapter,
        samples=args.samples,
        temperature=args.temperature,
        seed=args.seed,
        name=name,
        boards=args.boards,
        max_new_tokens=args.max_new_tokens,
    )
    extension, rjson, rmd = save_result(result, out, args.report_dir, name, overwrite=True)
    mark_made([rjson, rmd])
    print(
        f"rule -> stage {result.stage} ({result.how}); {len(result.samples)} samples, "
        f"{result.passed} passed; first pass at sample {result.first_pass or '-'}"
    )
    print(f"checks run: {', '.join(result.checks)}")
    if extension is not None:
        print(f"extension: {extension}")
    else:
        print("NO SAMPLE PASSED: nothing was added to the base")
    print(f"report: {rjson}, {rmd}")
    return EXIT_PASSED if extension is not None else EXIT_NONE_PASSED
