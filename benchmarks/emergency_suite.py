"""The emergency suite: new rules at test time (the paper's section 3.4 and Table 2, broadened).

For every held-out rule of :func:`suite_rules`:

1. **Writing.** The small model writes the rule's function (:func:`write_rule_function`):
   ``samples`` samples for each seed set in ``seeds``; pass@1 (the share of samples that
   pass), pass@4 and pass@16 (the unbiased estimate from all samples, :func:`pass_at_k`),
   the sets where one passed and the samples each needed for its first pass.
2. **Playing.** A sweep per rule (resumable, as every sweep) of these policies, each told
   what the label says:

   - ``ld_generated``: the LD student with the function the model wrote (none found: the
     row is absent and the writing table says so); the rule as text in its state line;
   - ``ld_reference``: the same student with the project's reference function for the rule
     (the ceiling of selection; never shown as the model's);
   - ``kd``, ``raw``: the rule as text in the prompt; the legal cells listed are the base
     game's (``rule_mask="base"``), so the rule is known from its text alone;
   - ``rl_base_mask``: MaskablePPO trained on the base game, acting with the base game's
     mask (the rule unknown to it, as to the LLMs); ``rl_env_mask``: the same model with
     the env's mask, which already encodes the rule (the rule for free);
   - ``scripted``: knows the rules (reads the forbidden cells from the observation).

Everything goes under one folder: ``writing.json``, ``functions/<rule>.json`` (generated)
and ``reference/<rule>.json``, one sweep folder per rule, and ``suite.md``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.results_io import load_records
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, run_sweep
from benchmarks.tables import pursuit_row
from ld_agents.base import check_count
from ld_agents.files import check_output_folder, write_json_atomic, write_text_atomic
from ld_agents.ld import rule_writer as rw
from ld_envs import pursuit_rules
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

POLICIES = (
    "ld_generated",
    "ld_reference",
    "kd",
    "raw",
    "rl_base_mask",
    "rl_env_mask",
    "scripted",
)
#: what each policy is told about the new rule (the table's legend)
TOLD = {
    "ld_generated": "rule as text; the function the small model wrote joins the base",
    "ld_reference": "rule as text; the project's reference function joins the base",
    "kd": "rule as text in the prompt; base game's legal cells listed",
    "raw": "rule as text in the prompt; base game's legal cells listed",
    "rl_base_mask": "nothing: base game's mask (trained on the base game)",
    "rl_env_mask": "the env's mask, which encodes the rule (trained on the base game)",
    "scripted": "the rules' cells, from the observation",
}


@dataclass(frozen=True)
class SuiteRule:
    """One held-out rule: its spec (``None``: the drawn restricted area), the text the
    players and the writer read, and how it is held out."""

    label: str
    spec: dict[str, Any] | None
    text: str
    split: str

    @property
    def env_id(self) -> str:
        return "PursuitRestricted-v0" if self.spec is None else "Pursuit-v0"

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return {} if self.spec is None else {"rules": [self.spec]}

    @property
    def told(self) -> dict[str, Any]:
        """What an LD student is told: the spec with the rule's text as given (its state line
        then reads the words the writer read and the manual line quotes), or nothing for
        the area (its state carries the zone)."""
        return {} if self.spec is None else {"rules": [{**self.spec, "text": self.text}]}

    @property
    def semantics(self) -> Any:
        return rw.AREA_KIND if self.spec is None else self.spec


def _held_out_wording(spec: dict[str, Any]) -> str:
    return rw.wording(pursuit_rules.make_rule(spec, 21), rw.HELD_OUT_WORDING)


def suite_rules() -> list[SuiteRule]:
    """The held-out rules: new wordings and numbers of trained kinds, whole kinds the writer
    never saw (:data:`~ld_agents.ld.rule_writer.HELD_OUT_KINDS`), and the restricted area."""
    worded = [
        ("block", {"kind": "block", "cells": [7, 6, 10, 9]}),
        ("band", {"kind": "band", "axis": "column", "span": [10, 11]}),
        ("edge", {"kind": "edge", "width": 2}),
        ("distance", {"kind": "distance", "center": [12, 8], "radius": 2}),
        ("parity", {"kind": "parity", "x": 1, "y": 1, "pieces": "pursuers"}),
        ("slow", {"kind": "slow", "pursuer": "B", "speed": 1}),
        ("diagonal", {"kind": "diagonal", "pieces": "pursuers"}),
    ]
    new_kinds = [
        ("blocks", {"kind": "blocks", "rects": [[4, 4, 6, 6], [12, 5, 14, 8], [8, 13, 11, 15]]}),
        ("wall", {"kind": "wall", "axis": "row", "at": 10, "span": [2, 18], "gap": [9, 11]}),
        ("guard", {"kind": "guard", "pursuer": "A", "other": "C", "axis": "column"}),
    ]
    rules = [SuiteRule(k, s, _held_out_wording(s), "new wording") for k, s in worded]
    rules += [SuiteRule(k, s, _held_out_wording(s), "new kind") for k, s in new_kinds]
    area_text = rw.wording(None, rw.HELD_OUT_WORDING, rw.AREA_KIND)
    rules.append(SuiteRule("restricted_area", None, area_text, "new wording (the area)"))
    return rules


def select(rules: Sequence[SuiteRule], only: Sequence[str] | None) -> list[SuiteRule]:
    """The rules named in ``only`` (all when empty); an unknown name is an error."""
    if not only:
        return list(rules)
    known = {r.label: r for r in rules}
    missing = [o for o in only if o not in known]
    if missing:
        raise InvalidArgument(f"unknown suite rule(s) {missing}; known: {', '.join(known)}")
    return [known[o] for o in only]


# --------------------------------------------------------------------------- writing


def _check_written(
    entry: dict[str, Any],
    rule: SuiteRule,
    spec: str,
    samples: int,
    seeds: Sequence[int],
    path: Path,
) -> None:
    """Refuse to resume a rule that ``path`` records as written with another model, sample
    count, seeds or rule text (the suite's table would mix two runs)."""
    seeds_recorded = [s.get("seed") for s in entry.get("sets", [])]
    recorded = {  # None: the record lacks it (a hand-made or partial record): not compared
        "model": entry.get("model"),
        "samples": entry.get("samples_per_set"),
        "seeds": seeds_recorded if seeds_recorded and None not in seeds_recorded else None,
        "text": entry.get("text"),
    }
    wanted = {"model": spec, "samples": samples, "seeds": list(seeds), "text": rule.text}
    diff = [k for k in wanted if recorded[k] is not None and recorded[k] != wanted[k]]
    if diff:
        what = "; ".join(f"{k}: recorded {recorded[k]!r}, asked {wanted[k]!r}" for k in diff)
        raise InvalidArgument(
            f"{path} records rule {rule.label!r} written with other settings ({what}); use "
            "another --out folder, or the recorded settings to resume"
        )


def write_functions(
    rules: Sequence[SuiteRule],
    out: Path,
    samples: int,
    seeds: Sequence[int],
    model: str,
    adapter: str | Path | None,
    echo: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """The writing stage; resumes from ``writing.json`` (a rule done is not redone)."""
    from ld_agents.ld.emergency import write_rule_function, writer_backend_spec
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_agents.llm.base import get_backend

    path = out / "writing.json"
    done: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    spec = writer_backend_spec(model, adapter)
    for rule in rules:  # a rule written with other settings is never taken as this run's
        if rule.label in done:
            _check_written(done[rule.label], rule, spec, samples, seeds, path)
    todo = [r for r in rules if r.label not in done]
    if not todo:
        return done
    backend = get_backend(spec)
    with SandboxWorker() as worker:
        for rule in todo:
            sets = []
            for seed in seeds:
                res = write_rule_function(
                    rule.text,
                    rule.semantics,
                    backend=backend,
                    samples=samples,
                    seed=seed,
                    name=f"new_rule_{rule.label}",
                    worker=worker,
                )
                sets.append(res)
                echo(f"{rule.label} seed {seed}: {res.passed}/{samples} passed")
            first = next((r for r in sets if r.function() is not None), None)
            if first is not None:
                fpath = out / "functions" / f"{rule.label}.json"
                fpath.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(fpath, first.extension())
            done[rule.label] = {
                "split": rule.split,
                "text": rule.text,
                "spec": rule.spec,
                "samples_per_set": samples,
                "sets": [
                    {
                        "seed": r.seed,
                        "passed": r.passed,
                        "first_pass": r.first_pass,
                        "failures": [s.failure for s in r.samples if not s.ok][:3],
                    }
                    for r in sets
                ],
                "function": None if first is None else first.function().source,
                "model": sets[0].model,
            }
            write_json_atomic(path, done)
    return done


def reference_extension(rule: SuiteRule, out: Path) -> Path:
    """The project's reference function for a rule, as an extension (labelled so)."""
    name = f"reference_{rule.label}"
    made = None if rule.spec is None else pursuit_rules.make_rule(rule.spec, 21)
    source = rw.reference_source(made, name, None if made else rw.AREA_KIND)
    data = {
        "schema": "ld-gym/function-base",
        "schema_version": 1,
        "game": "pursuit",
        "kind": "extension",
        "provenance": {"author": "ld-gym project", "stand_in": True, "note": "reference code"},
        "rules": rule.text,
        "functions": [
            {
                "name": name,
                "stage": rw.STAGE,
                "role": "emergency",
                "signature": f"{name}(state, prev) -> cell_lists",
                "rule": rule.text,
                "when_to_call": f"when this rule is in force: {rule.text}",
                "right_when": "restricted_area_in_force" if made is None else "new_rule_in_force",
                "handles_rule": rule.label,
                "inputs": [
                    {"name": "state", "type": "pursuit state", "description": "the board"},
                    {"name": "prev", "type": "cell_lists", "description": "candidate cells"},
                ],
                "output": {"name": "result", "type": "cell_lists", "description": "kept cells"},
                "properties": [],
                "source": source,
                "examples": _reference_examples(made),
                "situations": [],
            }
        ],
    }
    path = out / "reference" / f"{rule.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    return path


def _reference_examples(rule: Any) -> list[dict[str, Any]]:
    """Two usage examples: the first seeded board where the rule removes a cell, and the
    board drawn after it (boards are drawn until one changes: an area can miss every
    candidate cell for many boards)."""
    out = []
    for state, prev in rw.sample_boards(400, 5, area=rule is None):
        expected = rw.expected_lists(rule, state, prev)
        if expected != prev or len(out) == 1:
            out.append({"state": state, "prev": prev, "expected": expected, "note": ""})
        if len(out) == 2:
            break
    return out


# --------------------------------------------------------------------------- selection


def selection_check(
    rule: SuiteRule,
    extension: Path,
    n: int = 40,
    seed: int = 0,
    adapter: str = "default",
    env_wording: bool = False,
) -> dict:
    """With the shipped LD adapter (no retraining; ``adapter``: another one): on ``n``
    starts, does the student pick the rule's function at its stage when the rule is in
    force, and the base game's function for "no extra rule" when it is not (the function
    still listed)? The state line reads the rule as given (as in play), or with
    ``env_wording`` the kind's own wording, which the manual line does not quote (a harder,
    cross-wording check; the area's state always reads the env's zone line)."""
    import gymnasium as gym

    import ld_agents
    from ld_agents.seeding import episode_seed

    files = {"emergency": str(extension)} if rule.spec is None else {"extensions": [extension]}
    told = {"rules": [rule.spec]} if env_wording and rule.spec is not None else rule.told
    policy = ld_agents.make("ld", rule.env_id, adapter=adapter, **told, **files)
    wanted = json.loads(Path(extension).read_text())["functions"][0]["name"]
    on = gym.make(rule.env_id, **rule.env_kwargs)
    off = gym.make("Pursuit-v0")
    hits_on = hits_off = 0
    try:
        text = policy.rule_text
        for i in range(n):
            obs, _ = on.reset(seed=episode_seed(seed, i))
            policy.rule_text = text
            shown, scores = policy.score(rw.STAGE, policy.state(obs))
            hits_on += shown[max(range(len(scores)), key=scores.__getitem__)].name == wanted
            obs, _ = off.reset(seed=episode_seed(seed, i))
            policy.rule_text = None
            shown, scores = policy.score(rw.STAGE, policy.state(obs))
            hits_off += (
                shown[max(range(len(scores)), key=scores.__getitem__)].name == "no_extra_rule"
            )
    finally:
        policy.close()
    return {"states": n, "picked_when_in_force": hits_on, "not_picked_when_absent": hits_off}


# --------------------------------------------------------------------------- playing


def policy_specs(
    rule: SuiteRule, generated: Path | None, reference: Path, policies: Sequence[str], model: str
) -> list[PolicySpec]:
    """The suite's policies for one rule (``ld_generated`` only with a generated function)."""
    told = rule.told
    text = {"rule_text": rule.text} if rule.spec is not None else {}
    base_mask = {"rule_mask": "base"} if rule.spec is not None else {}
    area_base = {"mask_area": False} if rule.spec is None else {"rule_mask": "base"}
    ld_files = (
        (lambda p: {"emergency": str(p)})
        if rule.spec is None
        else (lambda p: {"extensions": [str(p)]})
    )
    table = {
        "ld_generated": (
            None if generated is None else PolicySpec("ld", {**told, **ld_files(generated)})
        ),
        "ld_reference": PolicySpec("ld", {**told, **ld_files(reference)}),
        "kd": PolicySpec("kd", {**text, **base_mask}),
        "raw": PolicySpec("raw", {"model": model, **text, **base_mask}),
        "rl_base_mask": PolicySpec("rl", area_base),
        "rl_env_mask": PolicySpec("rl", {}),
        "scripted": PolicySpec("scripted", {}),
    }
    out = []
    for label in policies:
        spec = table[label]
        if spec is not None:
            out.append(PolicySpec(spec.name, spec.kwargs, label))
    return out


@dataclass
class SuiteConfig:
    """Settings of one suite run."""

    out: Path
    episodes: int = 50
    samples: int = 16
    seeds: tuple[int, ...] = (0, 1000)
    policies: tuple[str, ...] = POLICIES
    only: tuple[str, ...] = ()
    model: str = "hf:embedded"
    adapter: str | None = "default"
    seed: int = 0
    chunk_size: int = 50
    write_only: bool = False
    #: replace a suite.md/functions/reference folder this command did not make
    overwrite: bool = False


def rule_sweep(rule: SuiteRule, specs: list[PolicySpec], config: SuiteConfig) -> SweepSpec:
    """The sweep of one rule's env: ``specs`` for the suite's episodes, seed and chunks."""
    return SweepSpec(
        rule.env_id,
        specs,
        episodes=config.episodes,
        seed=config.seed,
        env_kwargs=rule.env_kwargs,
        chunk_size=config.chunk_size,
    )


def check_suite(config: SuiteConfig) -> tuple[list[SuiteRule], Path]:
    """Every input of a suite run, checked before anything is loaded or written: the
    policies and rules named, the writing stage's samples and seeds, the writer's model spec
    and adapter, and each rule's sweep (episodes, seed, chunk size, each policy's keywords
    and the raw model spec: :class:`~benchmarks.sweep.SweepSpec`,
    :func:`~benchmarks.games.check_sweep_inputs`), then the output folder. Returns the
    selected rules and the folder."""
    from benchmarks.games import check_model_spec, check_sweep_inputs
    from ld_agents.ld.emergency import writer_backend_spec

    unknown = [p for p in config.policies if p not in POLICIES]
    if unknown:
        raise InvalidArgument(f"unknown suite policies {unknown}; known: {', '.join(POLICIES)}")
    if not config.policies:
        raise InvalidArgument(f"no suite policy named; known: {', '.join(POLICIES)}")
    rules = select(suite_rules(), config.only)
    check_count("samples (--samples)", config.samples)
    if not config.seeds:
        raise InvalidArgument("seeds (--seeds) names no seed; give e.g. --seeds 0,1000")
    for seed in config.seeds:
        check_count("each seed of --seeds", seed, minimum=0)
    check_model_spec(config.model, "--model (the writer's and raw's)")
    check_model_spec(writer_backend_spec(config.model, config.adapter), "writer model spec")
    placeholder = Path("reference.json")  # the reference files are written later
    for rule in rules:
        specs = policy_specs(rule, placeholder, placeholder, config.policies, config.model)
        spec = rule_sweep(rule, specs, config)
        # the function files do not exist yet: everything else of each policy is checked
        files = ("extensions", "emergency")
        bare = [
            PolicySpec(p.name, {k: v for k, v in p.kwargs.items() if k not in files}, p.label)
            for p in spec.policies
        ]
        check_sweep_inputs(spec.env_id, spec.env_kwargs, bare)
    out = check_output_folder(
        config.out,
        ["suite.md", "functions", "reference", "sweeps", "selection.json"],
        overwrite=config.overwrite,
        resume="writing.json",
    )
    return rules, out


def run_suite(
    config: SuiteConfig,
    options: RunOptions | None = None,
    echo: Callable[[str], None] = logger.info,
) -> Path:
    """Run (or resume) the suite; return the path of ``suite.md``. Every input is checked
    first (:func:`check_suite`), before the writer is loaded."""
    rules, out = check_suite(config)
    out.mkdir(parents=True, exist_ok=True)
    writing = write_functions(
        rules, out, config.samples, config.seeds, config.model, config.adapter, echo
    )
    selection_path = out / "selection.json"
    selection = json.loads(selection_path.read_text()) if selection_path.is_file() else {}
    if not config.write_only:
        for rule in rules:
            generated = out / "functions" / f"{rule.label}.json"
            reference = reference_extension(rule, out)
            if "picked_env_wording" not in selection.get(rule.label, {}):
                # the model's function where it wrote one, else the reference's manual entry
                shown = generated if generated.is_file() else reference
                other = selection_check(rule, shown, env_wording=True) if rule.spec else None
                selection[rule.label] = {
                    **selection_check(rule, shown),
                    "picked_env_wording": other and other["picked_when_in_force"],
                    "function": "generated" if shown == generated else "reference",
                }
                write_json_atomic(selection_path, selection)
                echo(f"selection {rule.label}: {selection[rule.label]}")
            specs = policy_specs(
                rule, generated if generated.is_file() else None, reference,
                config.policies, config.model,
            )  # fmt: skip
            spec = rule_sweep(rule, specs, config)
            echo(f"playing {rule.label}: {', '.join(p.label for p in specs)}")
            run_sweep(spec, out / "sweeps" / rule.label, options)
    # the report covers the whole folder: ``only`` limits what runs, not what is shown
    path = out / "suite.md"
    write_text_atomic(path, format_suite(suite_rules(), writing, out, selection))
    return path


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of ``k`` samples passes, estimated without bias from
    ``n`` samples of which ``c`` passed: ``1 - C(n - c, k) / C(n, k)`` (Chen et al., 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise InvalidArgument(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n} c={c} k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def format_suite(
    rules: Sequence[SuiteRule],
    writing: dict[str, Any],
    out: Path,
    selection: dict[str, Any] | None = None,
) -> str:
    """The suite's report: the writing table, then one row per rule and policy."""
    lines = [
        "# Emergency suite: new rules at test time",
        "",
        "## The small model writes the function",
        "",
        "| rule | held out as | samples | passed | pass@1 | pass@4 | pass@16 | sets with a pass "
        "| first pass per set |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rule in rules:
        w = writing.get(rule.label)
        if w is None:
            continue
        sets = w["sets"]
        tried = w["samples_per_set"] * len(sets)
        passed = sum(s["passed"] for s in sets)
        hit = sum(s["first_pass"] is not None for s in sets)
        firsts = ", ".join(str(s["first_pass"] or "-") for s in sets)
        at = [f"{pass_at_k(tried, passed, k):.2f}" if k <= tried else "-" for k in (4, 16)]
        lines.append(
            f"| {rule.label} | {rule.split} | {tried} | {passed} | {passed / tried:.2f} | "
            f"{at[0]} | {at[1]} | {hit}/{len(sets)} | {firsts} |"
        )
    lines += [
        "",
        "## The LD student selects it (shipped adapter, no retraining)",
        "",
        "| rule | function listed | states | picked when in force | not picked when absent "
        "| picked, state in the env's wording |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in rules:
        sel = (selection or {}).get(rule.label)
        if sel is not None:
            env = sel.get("picked_env_wording")
            lines.append(
                f"| {rule.label} | {sel.get('function', 'generated')} | {sel['states']} | "
                f"{sel['picked_when_in_force']} | {sel['not_picked_when_absent']} | "
                f"{'(the same)' if env is None else env} |"
            )
    lines += [
        "",
        "'function listed': the model's own function where it wrote one that passed, else the "
        "reference function's manual entry (the same 'when this rule is in force: ...' line), "
        "so that selection is measured on every rule.",
        "",
        "'picked when in force': the state line reads the rule as the user gave it (the text "
        "the writer read and the manual line quotes), as in play. The last column is a harder "
        "check: the state line reads the rule kind's own wording, which the manual line does "
        "not quote, so the student must match two wordings by meaning. The restricted area's "
        "state always reads the env's zone line, so its first column is already that check.",
    ]
    lines += [
        "",
        "## Play (success / failure without violation / failure with violation, steps)",
        "",
        "| rule | policy | n | success | fail w/o viol. | fail w/ viol. | steps |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rule in rules:
        recs, _ = load_records(out / "sweeps" / rule.label / "episodes.jsonl")
        if not recs:
            found = writing.get(rule.label, {}).get("function") is not None
            note = "" if found else "; no function found, so no ld_generated row"
            lines.append(f"| {rule.label} | - | 0 | not played yet{note} | | | |")
            continue
        for policy in POLICIES:
            mine = [r for r in recs if r["policy"] == policy]
            if not mine:
                if policy == "ld_generated" and writing.get(rule.label, {}).get("function") is None:
                    lines.append(f"| {rule.label} | {policy} | - | no function found | | | |")
                continue
            row = pursuit_row(policy, mine)
            steps = row.steps_success.value
            lines.append(
                f"| {rule.label} | {policy} | {row.n} | {row.success.value * 100:.0f}% | "
                f"{row.failure_without_violation.value * 100:.0f}% | "
                f"{row.failure_with_violation.value * 100:.0f}% | "
                f"{'-' if math.isnan(steps) else f'{steps:.1f}'} |"
            )
    lines += ["", "What each policy is told about the new rule:", ""]
    lines += [f"- `{k}`: {v}" for k, v in TOLD.items()]
    return "\n".join(lines) + "\n"
