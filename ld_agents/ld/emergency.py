"""Emergency handling (paper section 3.4): a new rule given as text becomes a new function.

The pipeline, :func:`handle_emergency`:

1. **Recognise the rule.** The rule text is matched against :data:`RULE_KINDS` (today the
   restricted area: "no piece may enter the 5x5 block (x0, y0, x1, y1)"). A rule kind
   fixes the stage the function plugs into (pursuit: ``constraints``, a coordinate filter
   applied to the occupancy filter's output before ``select``), the properties derived from
   the rule (``removes_exactly(restricted_area)`` on top of the stage's ``subset_of_input``:
   the area's cells go, every other cell stays), the manual entry and the fallback stand-in.
2. **Write candidates.** A code-completion prompt is built from the rule text, the manual
   context (the stage's description, its input/output types, the state format, one
   neighbouring function of the base as an example) and a signature with a docstring; the
   backend completes the body. The embedded model decodes greedily, so the samples come
   from :data:`PROMPT_VARIANTS` (function name, docstring wording, neighbour shown, and how
   much of the body is scaffolded). A teacher endpoint (``openai:...``) gets the same
   prompts.
3. **Check each sample**: extract one function from the answer (fences, a full ``def`` or
   a bare body), the sandbox's static check, then :func:`validate_function` on seeded
   inputs: mostly states where the rule is in force, some where it is not (the function
   must then pass the lists through).
4. **Add the first that passes** to the base at its stage and write it as an extension file
   (``kind: extension``) with concrete usage examples made in the sandbox and provenance
   (the model spec, the rule text, the samples tried). When none passes, the run says so
   and falls back to the shipped stand-in, with provenance ``"stand-in, generation
   failed"``.

:func:`run_emergency` runs it to files (the extension and a JSON + Markdown report); ``ld-gym
emergency`` (:mod:`benchmarks.cli.emergency`) is its command line.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import json
import logging
import re
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.ld.base import FunctionBase, bases_dir, read_base_file
from ld_agents.ld.sandbox import SandboxWorker
from ld_agents.ld.schema import FunctionEntry
from ld_agents.ld.validation import FunctionReport, sample_inputs, validate_function
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: provenance note of the fallback (results tables look for it)
FALLBACK_NOTE = "stand-in, generation failed"

#: stop strings of a code completion: the next top-level statement ends the function
CODE_STOPS = ("\ndef ", "\nclass ", "\n# ", "\nif __name__", "\nprint(", "\n```", "\nassert ")


# --------------------------------------------------------------------------- rule kinds


@dataclass(frozen=True)
class RuleKind:
    """What a recognised rule becomes: the stage, the contract, the manual entry."""

    name: str
    game: str
    #: regular expressions (case-insensitive); any match recognises the rule
    patterns: tuple[str, ...]
    stage: str
    right_when: str
    properties: tuple[Any, ...]
    #: the manual's one-line rule and when-to-call, and the output description
    rule: str
    when_to_call: str
    output: str
    #: the shipped stand-in extension (file name under ``assets/function_bases``)
    stand_in: str
    #: the predicate that says the rule is in force on a state (for the sampled inputs)
    in_force: str
    #: the neighbouring functions of the base a prompt may show, in order of preference
    neighbours: tuple[str, ...]


RULE_KINDS: dict[str, RuleKind] = {
    "restricted_area": RuleKind(
        name="restricted_area",
        game="pursuit",
        patterns=(
            r"restricted",
            r"(may|can|must) not enter",
            r"no piece may enter",
            r"forbidden (area|block|zone|region)",
            r"\bblock\b.*\(\s*\w+\s*,\s*\w+\s*,\s*\w+\s*,\s*\w+\s*\)",
        ),
        stage="constraints",
        right_when="restricted_area_in_force",
        properties=({"name": "removes_exactly", "cells": "restricted_area"},),
        rule="no piece may enter the restricted area (state['restricted'], inclusive corners)",
        when_to_call="whenever a restricted area is in force (state['restricted'] is not null)",
        output="the lists without the cells inside the restricted area",
        stand_in="pursuit_restricted_emergency.json",
        in_force="restricted_area_in_force",
        neighbours=(
            "drop_evader_cell",
            "drop_cells_still_occupied",
            "no_extra_rule",
            "drop_edge_cells",
        ),
    ),
}


def recognise_rule(text: str, game: str = "pursuit") -> RuleKind:
    """The rule kind a rule text describes (:data:`RULE_KINDS`), or a clear error."""
    for kind in RULE_KINDS.values():
        if kind.game == game and any(re.search(p, text, re.I) for p in kind.patterns):
            return kind
    known = [k.name for k in RULE_KINDS.values() if k.game == game]
    raise InvalidArgument(
        f"the rule {text!r} is not one this pipeline can derive a contract for (game "
        f"{game!r}; known rule kinds: {', '.join(known) or 'none'}); a new kind is one "
        f"entry in ld_agents.ld.emergency.RULE_KINDS"
    )


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PromptVariant:
    """One way of asking for the function (greedy decoding: variety comes from here)."""

    key: str
    name: str
    docstring: str
    neighbour: int
    #: lines of the body given in the prompt (indented), the model writes the rest
    scaffold: str = ""


_DOC_FULL = (
    "New rule: {rule}\n"
    'The block is state["restricted"] = [x0, y0, x1, y1] (inclusive corners).\n'
    "Remove from every pursuer's list the cells c with x0 <= c[0] <= x1 and\n"
    'y0 <= c[1] <= y1; keep every other cell, in order. When state["restricted"]\n'
    "is None, return the lists unchanged."
)
_DOC_SHORT = "{rule}. Drop the cells inside state['restricted'] from each list (None: no area)."
_DOC_TERSE = "Filter out restricted cells."

_SCAFFOLD_NONE = '    area = state["restricted"]\n    if area is None:\n        return prev\n'
_SCAFFOLD_UNPACK = _SCAFFOLD_NONE + "    x0, y0, x1, y1 = area\n"
_SCAFFOLD_LOOP = _SCAFFOLD_UNPACK + "    result = []\n    for cells in prev:\n"
_SCAFFOLD_COND = _SCAFFOLD_UNPACK + "    return [[c for c in cells if not ("

#: the prompt variants, in the order samples are drawn
PROMPT_VARIANTS: tuple[PromptVariant, ...] = (
    PromptVariant("full", "drop_restricted_cells", _DOC_FULL, 0),
    PromptVariant("full-none", "drop_restricted_cells", _DOC_FULL, 0, _SCAFFOLD_NONE),
    PromptVariant("full-unpack", "drop_restricted_cells", _DOC_FULL, 0, _SCAFFOLD_UNPACK),
    PromptVariant("full-loop", "drop_restricted_cells", _DOC_FULL, 0, _SCAFFOLD_LOOP),
    PromptVariant("short", "filter_restricted_area", _DOC_SHORT, 1),
    PromptVariant("short-unpack", "filter_restricted_area", _DOC_SHORT, 1, _SCAFFOLD_UNPACK),
    PromptVariant("terse", "remove_blocked_cells", _DOC_TERSE, 0),
    PromptVariant("terse-loop", "remove_blocked_cells", _DOC_TERSE, 2, _SCAFFOLD_LOOP),
    PromptVariant("full-n1", "drop_cells_in_block", _DOC_FULL, 1),
    PromptVariant("full-n1-unpack", "drop_cells_in_block", _DOC_FULL, 1, _SCAFFOLD_UNPACK),
    PromptVariant("full-n2-loop", "avoid_restricted_area", _DOC_FULL, 2, _SCAFFOLD_LOOP),
    PromptVariant("short-none", "keep_outside_block", _DOC_SHORT, 2, _SCAFFOLD_NONE),
    PromptVariant("full-n2", "exclude_restricted", _DOC_FULL, 2),
    PromptVariant("short-loop", "drop_area_cells", _DOC_SHORT, 0, _SCAFFOLD_LOOP),
    PromptVariant("terse-unpack", "skip_restricted_cells", _DOC_TERSE, 1, _SCAFFOLD_UNPACK),
    PromptVariant("terse-none", "clear_restricted", _DOC_TERSE, 2, _SCAFFOLD_NONE),
    # the neighbour shown is another coordinate filter of the same stage (drop_edge_cells)
    PromptVariant("edge-full", "drop_restricted_cells", _DOC_FULL, 3),
    PromptVariant("edge-short", "filter_restricted_area", _DOC_SHORT, 3),
    PromptVariant("edge-terse", "drop_block_cells", _DOC_TERSE, 3),
    PromptVariant("edge-none", "keep_outside_block", _DOC_FULL, 3, _SCAFFOLD_NONE),
    PromptVariant("edge-unpack", "drop_area_cells", _DOC_SHORT, 3, _SCAFFOLD_UNPACK),
    PromptVariant("edge-loop", "avoid_block", _DOC_TERSE, 3, _SCAFFOLD_LOOP),
    # the most help: the model writes only the membership condition and the list's end
    PromptVariant("edge-cond", "drop_restricted_cells", _DOC_FULL, 3, _SCAFFOLD_COND),
    PromptVariant("full-cond", "drop_restricted_cells", _DOC_FULL, 0, _SCAFFOLD_COND),
)


def _comment(text: str) -> str:
    return "\n".join("# " + line if line else "#" for line in text.splitlines())


def build_prompt(
    base: FunctionBase, kind: RuleKind, rule_text: str, variant: PromptVariant
) -> tuple[str, str]:
    """The completion prompt for one variant, and the header (signature + docstring +
    scaffold) that a bare-body answer continues."""
    stage = base.stage(kind.stage)
    neighbours = [n for n in kind.neighbours if n in base._functions] or [
        f.name for f in base.stage_candidates(kind.stage)
    ]
    neighbour = base.function(neighbours[variant.neighbour % len(neighbours)])
    state_doc = base.spec.state_description
    state_param = next((p for p in neighbour.inputs if p.name == "state"), None)
    if state_param is not None:
        state_doc = state_param.description
    context = "\n".join(
        [
            f"{base.game} game: one function of the function base (Logic Distillation).",
            f"Stage {stage.name!r}: {stage.description}.",
            f"Every function of this stage is f(state, prev) -> {stage.produces}:",
            f"  state: {state_doc}",
            f"  prev ({stage.consumes}): the previous stage's output, per pursuer A, B, C "
            "a list of [x, y] cells it may move to",
            f"  returns ({stage.produces}): the same lists with some cells removed",
            f"New rule (emergency): {rule_text}",
            f"Neighbouring function of the base (stage {neighbour.stage!r}), for the style:",
        ]
    )
    doc = variant.docstring.format(rule=rule_text.rstrip("."))
    doc_lines = doc.splitlines()
    docstring = '    """' + doc_lines[0]
    for line in doc_lines[1:]:
        docstring += "\n    " + line
    docstring += '"""\n'
    header = f"def {variant.name}(state, prev):\n{docstring}{variant.scaffold}"
    prompt = f"{_comment(context)}\n\n{neighbour.source.rstrip()}\n\n\n{header}"
    return prompt, header


# --------------------------------------------------------------------------- extraction


def extract_function(answer: str, header: str, name: str) -> tuple[str, str]:
    """The source of one function from a model's answer, and the function's name.

    Accepts a fenced block, a complete ``def`` (any name taking ``(state, prev)``), or a
    bare body continuing ``header``. The longest prefix that parses is kept, and from it
    the function and the module-level imports before it. An answer that never parses
    comes back whole (the static check then reports the syntax error).
    """
    text = answer.replace("\r\n", "\n")
    fence = re.search(r"```[a-zA-Z]*\n(.*?)(```|$)", text, re.S)
    if fence:
        text = fence.group(1)
    m = re.search(rf"^def {re.escape(name)}\(", text, re.M) or re.search(
        r"^def (\w+)\(\s*state\s*,\s*prev\s*\)", text, re.M
    )
    if m:
        start = text.rfind("\n", 0, m.start())
        imports = [
            line
            for line in text[: max(start, 0)].splitlines()
            if line.startswith(("import ", "from "))
        ]
        candidate = "\n".join([*imports, text[m.start() :]])
    else:
        body = text
        if header.endswith("\n") and body.strip() and not body.startswith((" ", "\t", "\n")):
            body = textwrap.indent(body, "    ")
        candidate = header + body
    lines = candidate.rstrip().splitlines()
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end]) + "\n"
        try:
            tree = ast.parse(chunk)
        except SyntaxError:
            continue
        defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        if not defs:
            continue
        fn = next((d for d in defs if d.name == name), defs[0])
        keep = [
            ast.get_source_segment(chunk, n) or ""
            for n in tree.body
            if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno < fn.lineno
        ]
        keep.append(ast.get_source_segment(chunk, fn) or "")
        return "\n".join(keep).rstrip() + "\n", fn.name
    return candidate.rstrip() + "\n", name


# --------------------------------------------------------------------------- validation


def contract_inputs(
    base: FunctionBase, kind: RuleKind, n_in_force: int = 40, n_other: int = 10, seed: int = 0
) -> list[tuple[dict[str, Any], Any]]:
    """Seeded ``(state, prev)`` inputs of the rule's stage: ``n_in_force`` where the rule
    is in force, ``n_other`` where it is not (the function must pass the lists through)."""
    pred = base.spec.predicates[kind.in_force]
    hot: list[tuple[dict[str, Any], Any]] = []
    cold: list[tuple[dict[str, Any], Any]] = []
    batch, s = 4 * (n_in_force + n_other), seed
    while len(hot) < n_in_force or len(cold) < n_other:
        for state, prev in sample_inputs(base, kind.stage, batch, s):
            (hot if pred.test(state, prev) else cold).append((state, prev))
        s += 1_000_003
        if s > seed + 50 * 1_000_003:  # pragma: no cover - the sampler always mixes
            break
    return hot[:n_in_force] + cold[:n_other]


def entry_dict(
    kind: RuleKind,
    name: str,
    source: str,
    base: FunctionBase,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The schema dict of a generated emergency function (manual entry from the rule kind)."""
    stage = base.stage(kind.stage)
    neighbour = base.stage_candidates(kind.stage)[0]
    inputs = [
        {"name": p.name, "type": p.type, "description": p.description} for p in neighbour.inputs
    ]
    out: dict[str, Any] = {
        "name": name,
        "stage": kind.stage,
        "role": "emergency",
        "signature": f"{name}(state, prev) -> {stage.produces}",
        "rule": kind.rule,
        "when_to_call": kind.when_to_call,
        "right_when": kind.right_when,
        "handles_rule": kind.name,
        "inputs": inputs,
        "output": {"name": "result", "type": stage.produces, "description": kind.output},
        "properties": [copy.deepcopy(p) for p in kind.properties],
        "source": source,
        "examples": [],
        "situations": [],
    }
    if provenance is not None:
        out["provenance"] = provenance
    return out


@dataclass
class SampleResult:
    """One generated sample: the prompt variant, the raw answer, the verdict."""

    index: int
    variant: str
    name: str
    answer: str
    source: str
    passed: bool
    checks_failed: list[str]
    failures: list[str]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def check_candidate(
    base: FunctionBase,
    kind: RuleKind,
    name: str,
    source: str,
    worker: SandboxWorker,
    inputs: Sequence[tuple[dict[str, Any], Any]],
) -> FunctionReport:
    """Validate one candidate source as the rule's function (static, load, run, type,
    the stage's and the rule's properties, determinism), not yet added to the base."""
    if name in base._functions:
        name = f"{name}_generated"
        source = re.sub(r"^def \w+\(", f"def {name}(", source, count=1, flags=re.M)
    fe = _entry(base, kind, name, source)
    return validate_function(base, fe, worker, inputs=inputs)


def _entry(base: FunctionBase, kind: RuleKind, name: str, source: str) -> FunctionEntry:
    """An unvalidated entry (no usage examples) of the rule's stage, outside the base."""
    trial = FunctionBase(base.game, base.stages, [], base.provenance, base.rules)
    return trial.add_function(entry_dict(kind, name, source, base), require_examples=False)


# --------------------------------------------------------------------------- pipeline


@dataclass
class EmergencyResult:
    """What :func:`handle_emergency` did: samples, verdicts, the function kept."""

    rule_text: str
    rule_kind: str
    stage: str
    model: str | None
    samples: list[SampleResult] = field(default_factory=list)
    #: name of the function added to the base
    function: str = ""
    #: ``"generated"`` or ``"stand-in"`` (generation failed: the shipped function is used)
    source_kind: str = ""
    extension: dict[str, Any] = field(default_factory=dict)
    extension_path: str | None = None
    seconds: float = 0.0
    generation_seconds: float = 0.0

    @property
    def tried(self) -> int:
        return len(self.samples)

    @property
    def passed(self) -> int:
        return sum(s.passed for s in self.samples)

    @property
    def first_pass(self) -> int | None:
        """1-based number of samples needed (``None``: none passed)."""
        return next((s.index + 1 for s in self.samples if s.passed), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_text": self.rule_text,
            "rule_kind": self.rule_kind,
            "stage": self.stage,
            "model": self.model,
            "samples_tried": self.tried,
            "samples_passed": self.passed,
            "pass_rate": (self.passed / self.tried) if self.tried else None,
            "samples_needed": self.first_pass,
            "function": self.function,
            "source_kind": self.source_kind,
            "extension_path": self.extension_path,
            "seconds": self.seconds,
            "generation_seconds": self.generation_seconds,
            "samples": [s.to_dict() for s in self.samples],
        }

    def format_markdown(self) -> str:
        """The report as Markdown (what ``benchmarks/results/emergency/*.md`` holds)."""
        lines = [
            "# Emergency function: generation report",
            "",
            f"- rule: {self.rule_text!r} (kind `{self.rule_kind}`, stage `{self.stage}`)",
            f"- model: `{self.model}`",
            f"- samples tried: {self.tried}, passed: {self.passed}"
            + (f" ({100 * self.passed / self.tried:.0f}%)" if self.tried else ""),
            f"- samples needed for the first pass: {self.first_pass or 'none passed'}",
            f"- function added: `{self.function}` ({self.source_kind}"
            + (f"; provenance '{FALLBACK_NOTE}'" if self.source_kind == "stand-in" else "")
            + ")",
            f"- extension file: {self.extension_path or '(not written)'}",
            f"- time: {self.seconds:.0f} s (generation {self.generation_seconds:.0f} s)",
            "",
            "| # | prompt variant | passed | checks failed | first failure |",
            "|---|---|---|---|---|",
        ]
        for s in self.samples:
            first = s.failures[0].splitlines()[0] if s.failures else ""
            first = first.replace("|", "\\|")[:140]
            lines.append(
                f"| {s.index + 1} | {s.variant} | {'yes' if s.passed else 'no'} | "
                f"{', '.join(s.checks_failed)} | {first} |"
            )
        lines += ["", "## Samples", ""]
        for s in self.samples:
            lines += [
                f"### {s.index + 1}. {s.variant} ({'passed' if s.passed else 'rejected'})",
                "",
                "```python",
                s.source.rstrip(),
                "```",
                "",
            ]
            for f in s.failures[:3]:
                lines.append("    " + f.replace("\n", "\n    "))
            if s.failures:
                lines.append("")
        return "\n".join(lines) + "\n"


def make_examples(
    entry: dict[str, Any],
    base: FunctionBase,
    worker: SandboxWorker,
    inputs: Sequence[tuple[dict[str, Any], Any]],
    kind: RuleKind,
) -> None:
    """Fill ``entry``'s usage examples and situations from the validated function's own
    outputs in the sandbox: one input with the rule in force, one without."""
    pred = base.spec.predicates[kind.in_force]
    hot = [x for x in inputs if pred.test(*x)]
    # prefer an input where the rule changes something (a cell of the area is listed)
    hot.sort(key=lambda x: not any(c in cells for cells in x[1] for c in _area_cells(x[0])))
    cold = [x for x in inputs if not pred.test(*x)]
    key = f"emergency/{entry['name']}"
    loaded = worker.load(key, entry["source"], name=entry["name"])
    if not loaded.ok:  # pragma: no cover - validated just before
        raise InvalidArgument(f"validated function failed to load: {loaded}")
    try:
        examples = []
        for (state, prev), note in ((cold[0], "no extra rule"), (hot[0], "rule in force")):
            res = worker.call(key, [copy.deepcopy(state), copy.deepcopy(prev)])
            if res.ok:
                examples.append({"state": state, "prev": prev, "expected": res.value, "note": note})
        entry["examples"] = examples
        entry["situations"] = [{"state": s, "prev": p, "note": ""} for s, p in hot[1:4]]
    finally:
        worker.unload(key)


def _area_cells(state: dict[str, Any]) -> list[list[int]]:
    area = state.get("restricted")
    if not area:
        return []
    x0, y0, x1, y1 = area
    return [[x, y] for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def stand_in_extension(kind: RuleKind, reason: str) -> dict[str, Any]:
    """The shipped stand-in extension, relabelled: provenance ``stand-in, generation
    failed`` on the file and on its functions, with why."""
    data = read_base_file(bases_dir() / kind.stand_in)
    prov = dict(data["provenance"])
    prov.update(
        {
            "author": "ld-gym project (fallback)",
            "stand_in": True,
            "note": f"{FALLBACK_NOTE}: {reason}",
            "created": _dt.date.today().isoformat(),
        }
    )
    data["provenance"] = prov
    for f in data["functions"]:
        f["provenance"] = dict(prov)
    return data


def handle_emergency(
    rule_text: str,
    base: FunctionBase,
    backend: Any | None = None,
    samples: int = 8,
    stop_at_first: bool = False,
    batch: int = 4,
    max_new_tokens: int = 160,
    worker: SandboxWorker | None = None,
    seed: int = 0,
    candidates: Sequence[str] | None = None,
    add: bool = True,
    variants: Sequence[str] | None = None,
    progress: Callable[[EmergencyResult], None] | None = None,
) -> EmergencyResult:
    """Turn a rule text into a validated function of ``base`` (module docstring).

    ``backend``: an :class:`ld_agents.llm.base.Backend` (or a spec string) that writes the
    samples; ``candidates``: ready answers to check instead (hand-written code, tests).
    ``samples`` prompts are drawn from :data:`PROMPT_VARIANTS` (or the ``variants`` named
    by key) in order, cycling, sent in
    batches of ``batch``; ``stop_at_first`` stops after the batch where one passes. With
    ``add`` the function (or the stand-in) is added to ``base``. The result holds every
    sample's verdict and the extension data (``result.extension``) to write with
    :func:`write_extension`. ``progress(result)`` is called after each batch (partial
    reports).
    """
    from ld_agents.llm.base import GenerationRequest, get_backend

    t0 = time.perf_counter()
    kind = recognise_rule(rule_text, base.game)
    model = None
    if candidates is None:
        if backend is None:
            raise InvalidArgument("give a backend (model spec) or ready candidates")
        backend = get_backend(backend)
        model = getattr(backend, "spec", "") or type(backend).__name__
    else:
        model = "given candidates"
    result = EmergencyResult(rule_text, kind.name, kind.stage, model)
    own = worker is None
    worker = worker or SandboxWorker()
    try:
        worker.start()
        inputs = contract_inputs(base, kind, seed=seed)
        n = len(candidates) if candidates is not None else samples
        if n < 1:
            raise InvalidArgument(f"samples must be >= 1, got {n}")
        pool = list(PROMPT_VARIANTS)
        if variants is not None:
            by_key = {v.key: v for v in PROMPT_VARIANTS}
            unknown = [k for k in variants if k not in by_key]
            if unknown or not variants:
                raise InvalidArgument(
                    f"unknown prompt variant(s) {unknown}; known: {', '.join(by_key)}"
                )
            pool = [by_key[k] for k in variants]
        chosen = [pool[i % len(pool)] for i in range(n)]
        for b0 in range(0, n, max(1, batch)):
            chunk = list(range(b0, min(n, b0 + max(1, batch))))
            prompts = [build_prompt(base, kind, rule_text, chosen[i]) for i in chunk]
            if candidates is not None:
                answers = [candidates[i] for i in chunk]
            else:
                tg = time.perf_counter()
                answers = backend.generate_until(
                    [GenerationRequest(p, CODE_STOPS, max_new_tokens) for p, _ in prompts]
                )
                result.generation_seconds += time.perf_counter() - tg
            for i, (_, header), answer in zip(chunk, prompts, answers, strict=True):
                ts = time.perf_counter()
                source, name = extract_function(answer, header, chosen[i].name)
                rep = check_candidate(base, kind, name, source, worker, inputs)
                sample = SampleResult(
                    index=i,
                    variant=chosen[i].key if candidates is None else f"candidate {i}",
                    name=name,
                    answer=answer,
                    source=source,
                    passed=rep.passed,
                    checks_failed=rep.checks_failed(),
                    failures=[f.format() for f in rep.failures],
                    seconds=time.perf_counter() - ts,
                )
                result.samples.append(sample)
                logger.debug("sample %d source:\n%s", i + 1, source)
                logger.info(
                    "emergency sample %d (%s): %s %s",
                    i + 1,
                    sample.variant,
                    "passed" if sample.passed else "rejected",
                    sample.checks_failed,
                )
            if progress is not None:
                progress(result)
            if stop_at_first and any(s.passed for s in result.samples):
                break
        winner = next((s for s in result.samples if s.passed), None)
        if winner is not None:
            name = winner.name if winner.name not in base._functions else f"{winner.name}_generated"
            source = winner.source
            if name != winner.name:
                source = re.sub(r"^def \w+\(", f"def {name}(", source, count=1, flags=re.M)
            prov = {
                "author": f"generated by {model}",
                "stand_in": False,
                "note": (
                    f"emergency function written for the rule {rule_text!r}; sample "
                    f"{winner.index + 1} of {result.tried} tried ({result.passed} passed; "
                    f"prompt variant {winner.variant!r}); validated in the sandbox against "
                    f"{json.dumps(list(kind.properties))} on {len(inputs)} seeded inputs"
                ),
                "created": _dt.date.today().isoformat(),
                "model": model,
            }
            entry = entry_dict(kind, name, source, base)
            make_examples(entry, base, worker, inputs, kind)
            ext = {
                "schema": "ld-gym/function-base",
                "schema_version": 1,
                "game": base.game,
                "kind": "extension",
                "provenance": prov,
                "rules": f"New rule (emergency): {rule_text}",
                "functions": [entry],
            }
            result.function, result.source_kind = name, "generated"
        else:
            reason = (
                f"none of {result.tried} samples from {model} passed the sandbox checks "
                f"for the rule {rule_text!r}"
            )
            logger.warning("emergency: %s; falling back to the shipped stand-in", reason)
            ext = stand_in_extension(kind, reason)
            result.function, result.source_kind = ext["functions"][0]["name"], "stand-in"
        result.extension = ext
        if add:
            if result.function in base._functions:
                logger.info(
                    "emergency: %s is already in the base; not added again", result.function
                )
            else:
                base.extend(copy.deepcopy(ext), origin="emergency")
    finally:
        if own:
            worker.close()
    result.seconds = time.perf_counter() - t0
    return result


def write_extension(result: EmergencyResult, path: str | Path) -> Path:
    """Write the result's extension file (loadable by ``load_function_base(..., [path])``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.extension, indent=1) + "\n")
    result.extension_path = str(path)
    return path


def write_report(result: EmergencyResult, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``STEM.json`` and ``STEM.md`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / f"{stem}.json", out / f"{stem}.md"
    j.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    m.write_text(result.format_markdown())
    return j, m


# --------------------------------------------------------------------------- a run to files

#: where :func:`run_emergency` writes by default (relative to the current directory)
DEFAULT_OUT_DIR = Path("runs") / "emergency"


def model_stem(model: str) -> str:
    """A file-name-safe short form of a model spec (``hf:embedded`` -> ``hf_embedded``)."""
    keep = "".join(c if c.isalnum() else "_" for c in model)
    return "_".join(p for p in keep.split("_") if p)[:60] or "model"


@dataclass
class EmergencyRun:
    """What :func:`run_emergency` did and wrote."""

    result: EmergencyResult
    #: the extension file (the generated function, or the stand-in)
    extension: Path
    #: the report: ``STEM.json`` and ``STEM.md``
    report_json: Path
    report_md: Path


def run_emergency(
    rule_text: str,
    game: str = "pursuit",
    model: str = "hf:embedded",
    base: str | Path | None = None,
    samples: int = 8,
    batch: int = 4,
    max_new_tokens: int = 160,
    stop_at_first: bool = False,
    variants: Sequence[str] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    report_dir: str | Path | None = None,
    name: str | None = None,
) -> EmergencyRun:
    """:func:`handle_emergency` on the game's shipped base (or the base file ``base``) with
    the model spec ``model``, written to files: a partial report after each batch (a long
    run interrupted keeps what it judged), then the extension (``out``, default
    ``runs/emergency/STEM.json``) and the report (``report_dir``, default
    ``runs/emergency/reports``: ``STEM.json`` + ``STEM.md``). ``STEM`` is ``name`` or
    ``<game>_<rule kind>_<model>``."""
    from ld_agents.ld.base import load_function_base, shipped_base

    fb = load_function_base(base) if base else shipped_base(game)
    reports = Path(report_dir) if report_dir is not None else DEFAULT_OUT_DIR / "reports"

    def stem_of(res: EmergencyResult) -> str:
        return name or f"{game}_{res.rule_kind}_{model_stem(model)}"

    def partial(res: EmergencyResult) -> None:
        write_report(res, reports, f"{stem_of(res)}.partial")

    result = handle_emergency(
        rule_text,
        fb,
        backend=model,
        samples=samples,
        stop_at_first=stop_at_first,
        batch=batch,
        max_new_tokens=max_new_tokens,
        seed=seed,
        variants=variants,
        progress=partial,
    )
    stem = stem_of(result)
    for leftover in reports.glob(f"{stem}.partial.*"):
        leftover.unlink()
    path = write_extension(result, Path(out) if out else DEFAULT_OUT_DIR / f"{stem}.json")
    report_json, report_md = write_report(result, reports, stem)
    return EmergencyRun(result, path, report_json, report_md)


__all__ = [
    "DEFAULT_OUT_DIR",
    "FALLBACK_NOTE",
    "PROMPT_VARIANTS",
    "RULE_KINDS",
    "EmergencyResult",
    "EmergencyRun",
    "PromptVariant",
    "RuleKind",
    "SampleResult",
    "build_prompt",
    "check_candidate",
    "contract_inputs",
    "extract_function",
    "handle_emergency",
    "model_stem",
    "recognise_rule",
    "run_emergency",
    "stand_in_extension",
    "write_extension",
    "write_report",
]
