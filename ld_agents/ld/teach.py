"""``ld-gym teach``: ask a teacher model to write a function base and user manual.

::

    ld-gym teach --game pursuit|twentyone --model SPEC [--out FILE] [--report PATH]

The teacher (any model spec: ``openai:URL?model=NAME`` for an OpenAI-compatible endpoint,
``hf:...`` for a local model) reads one prompt (:func:`teacher_prompt`): the game's rules
(the rules text the project's shipped base was written from, plus the env's constants),
the stages to fill (name, description, input and output types), the vocabularies (value
types, ``right_when`` predicates, properties), the schema of one function entry and one
complete example entry from the shipped base. It answers with JSON: ``{"functions":
[...]}`` (or a bare list; fences and prose around it are tolerated: :func:`extract_json`).

Every function it wrote is then read into the schema (missing manual fields get defaults,
noted; malformed usage examples are dropped, noted) and validated in the sandbox exactly as
``ld-gym validate`` does (:func:`ld_agents.ld.validation.validate_function`). The kept
functions are written to ``--out`` as a base (``kind: base``, provenance: the teacher's
spec, ``stand_in: false``), or as an extension of the shipped base (``kind: extension``)
when some stage has no kept function; the report of what was kept and what was rejected and why goes
to ``--report`` (JSON, and Markdown beside it). Exit 0 when every stage has at least one
kept function, 1 otherwise (the report says what is missing).
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: the start of the answer given to local (completion) models
PRIMER = '```json\n{"functions": [\n  {"name": "'

#: fields a teacher must give; the rest get defaults (noted in the report)
_REQUIRED = ("name", "stage", "source")


# --------------------------------------------------------------------------- rules text


def rules_text(game: str) -> str:
    """The rules the teacher reads: the shipped base's rules text and the env's constants."""
    from ld_agents.ld.base import shipped_base

    base = shipped_base(game)
    if game == "pursuit":
        from ld_envs import pursuit as pu

        extra = (
            f"Constants: default board size {pu.DEFAULT_SIZE}; pursuer speed {pu.PURSUER_SPEED}"
            f" (Manhattan); evader speed {pu.EVADER_SPEED}; capture when every pursuer is at "
            f"distance < {pu.CAPTURE_DISTANCE}; more than {pu.MAX_VIOLATIONS} violations lose; "
            f"{pu.MAX_STEPS} steps at most. A variant adds a {pu.AREA_SIDE}x{pu.AREA_SIDE} "
            "restricted area that no piece may enter (an emergency rule, handled separately)."
        )
    else:
        from ld_envs import twenty_one as t21

        extra = f"Ranks: {', '.join(t21.RANKS)} (two suits: 26 cards)."
    return f"{base.rules.strip()}\n{extra}"


# --------------------------------------------------------------------------- the prompt


def _schema_text() -> str:
    return (
        "Each function entry is a JSON object with these fields:\n"
        '  "name": a Python identifier; "stage": one of the stages above;\n'
        '  "role": "core" | "alternative" | "distractor";\n'
        '  "signature": "name(state, prev) -> TYPE";\n'
        '  "rule": the game rule it implements; "when_to_call": when to use it;\n'
        '  "right_when": a predicate name from the list above (when it is the right choice);\n'
        '  "inputs": [{"name", "type", "description"}], "output": {"name", "type", '
        '"description"};\n'
        '  "properties": claims about its output (property names above, with parameters);\n'
        '  "source": the Python source of ONE pure function name(state, prev), standard\n'
        "    library math/itertools/heapq/bisect only, no I/O, no names starting with _;\n"
        '  "examples": [{"state", "prev", "expected", "note"}] usage examples.\n'
    )


def teacher_prompt(game: str) -> str:
    """The teacher's prompt: rules, stages, vocabularies, schema, one example entry."""
    from ld_agents.ld.base import shipped_base

    base = shipped_base(game)
    spec = base.spec
    stages = "\n".join(
        f"  {i + 1}. {s.name}: {s.description} (consumes {s.consumes}, produces {s.produces}"
        + (f"; must keep {list(s.properties)}" if s.properties else "")
        + ")"
        for i, s in enumerate(base.stages)
    )
    types = "\n".join(f"  {t.name}: {t.description}" for t in spec.types.values())
    preds = "\n".join(f"  {p.name}: {p.description}" for p in spec.predicates.values())
    props = "\n".join(
        f"  {p.name}{'(' + ', '.join(p.params) + ')' if p.params else ''}: {p.description}"
        for p in spec.properties.values()
    )
    example = base.stage_candidates(base.stage_names[0])[0].to_dict()
    example["examples"] = example["examples"][:1]
    example.pop("situations", None)
    example.pop("provenance", None)
    return (
        "You are writing a function base and its user manual for a game, so that a small\n"
        "model can play by choosing one function per stage. Each decision runs one function\n"
        "per stage: out = f(state, prev), where prev is the previous stage's output.\n\n"
        f"## Rules\n{rules_text(game)}\n\n"
        f"## State\n{spec.state_description}\n\n"
        f"## Stages (in order)\n{stages}\n\n"
        f"## Value types\n{types}\n\n## Predicates (for right_when)\n{preds}\n\n"
        f"## Properties\n{props}\n\n## Schema\n{_schema_text()}\n"
        "Write several functions per stage: the right one and a few alternatives and\n"
        "distractors, so that choosing matters.\n\n"
        f"## Example entry\n{json.dumps(example)}\n\n"
        'Answer with JSON only: {"functions": [ ... ]}\n'
    )


# --------------------------------------------------------------------------- parsing


def extract_json(text: str) -> Any:
    """The first JSON value in a teacher's answer, leniently: fenced blocks, prose around
    it, trailing commas, Python literals (``True``/``None``, single quotes).

    Returns ``None`` when nothing parses.
    """
    blocks = re.findall(r"```(?:json|JSON|python)?\s*\n(.*?)```", text, re.S)
    candidates = [*blocks, text]
    budget = 400  # parse attempts: a long prose answer must not cost quadratic time
    for chunk in candidates:
        pairs = sorted((("{", "}"), ("[", "]")), key=lambda p: _first(chunk, p[0]))
        for opener, closer in pairs:
            start = chunk.find(opener)
            while start != -1:
                end = chunk.rfind(closer)
                while end > start and budget > 0:
                    budget -= 1
                    piece = chunk[start : end + 1]
                    value = _loads(piece)
                    if value is not None:
                        return value
                    end = chunk.rfind(closer, start, end)
                start = chunk.find(opener, start + 1)
                if start > 2000:  # a prose answer: stop scanning
                    break
    return None


def _first(text: str, char: str) -> int:
    i = text.find(char)
    return len(text) if i == -1 else i


def _loads(piece: str) -> Any:
    try:
        return json.loads(piece)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[..." too deep
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", piece)
    try:
        return json.loads(fixed)
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        return ast.literal_eval(fixed)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def function_dicts(answer: Any) -> list[Any]:
    """The function entries of a parsed answer (``{"functions": [...]}``, a list, one entry)."""
    if isinstance(answer, dict):
        if isinstance(answer.get("functions"), list):
            return list(answer["functions"])
        if "source" in answer:
            return [answer]
    if isinstance(answer, list):
        return list(answer)
    return []


# --------------------------------------------------------------------------- report


@dataclass
class TeachReport:
    """What the teacher wrote and what was kept, rejected and why."""

    game: str
    model: str
    answer_chars: int = 0
    parsed: bool = False
    kept: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_stages: list[str] = field(default_factory=list)
    out: str | None = None
    seconds: float = 0.0
    generation_seconds: float = 0.0
    answer_head: str = ""

    @property
    def complete(self) -> bool:
        return bool(self.kept) and not self.missing_stages

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "complete": self.complete}

    def format(self) -> str:
        lines = [
            f"teach {self.game} with {self.model}: {len(self.kept)} kept, "
            f"{len(self.rejected)} rejected"
            + ("" if self.parsed else " (no JSON function list found in the answer)")
        ]
        for k in self.kept:
            lines.append(f"  kept     {k['stage']}/{k['name']}")
        for r in self.rejected:
            lines.append(f"  REJECTED {r.get('stage')}/{r.get('name')} [{r['check']}]")
            for reason in r["reasons"][:3]:
                lines.append("      " + reason.replace("\n", "\n      "))
        for s in self.missing_stages:
            lines.append(f"  missing: no kept function for stage {s!r}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        if self.out:
            lines.append(f"  written: {self.out}")
        return "\n".join(lines)

    def format_markdown(self) -> str:
        lines = [
            f"# Teacher function base: {self.game}, `{self.model}`",
            "",
            f"- answer: {self.answer_chars} characters; JSON function list found: {self.parsed}",
            f"- kept: {len(self.kept)}; rejected: {len(self.rejected)}; stages without a kept "
            f"function: {', '.join(self.missing_stages) or 'none'}",
            f"- written: {self.out or '(nothing)'}",
            f"- time: {self.seconds:.0f} s (generation {self.generation_seconds:.0f} s)",
            "",
            "| function | stage | verdict | why |",
            "|---|---|---|---|",
        ]
        for k in self.kept:
            lines.append(f"| {k['name']} | {k['stage']} | kept | |")
        for r in self.rejected:
            why = (r["reasons"][0].splitlines()[0] if r["reasons"] else "").replace("|", "\\|")
            lines.append(
                f"| {r.get('name')} | {r.get('stage')} | rejected ({r['check']}) | {why} |"
            )
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        lines += ["", "## Start of the answer", "", "```", self.answer_head, "```", ""]
        return "\n".join(lines)

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON at ``path`` and as Markdown beside it (``.md``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        path.with_suffix(".md").write_text(self.format_markdown())
        return path


# --------------------------------------------------------------------------- pipeline


def _fill_defaults(data: dict[str, Any], base: Any, notes: list[str]) -> dict[str, Any]:
    """A copy of a teacher's entry with the manual fields it left out filled in (noted)."""
    d = copy.deepcopy(data)
    stage = base.stage(d["stage"])
    name = d["name"]
    defaults: dict[str, Any] = {
        "role": "alternative",
        "signature": f"{name}(state, prev) -> {stage.produces}",
        "rule": "(not given by the teacher)",
        "when_to_call": "(not given by the teacher)",
        "right_when": "never",
        "inputs": [
            {"name": "state", "type": f"{base.game} state", "description": ""},
            {"name": "prev", "type": stage.consumes, "description": ""},
        ],
        "output": {"name": "result", "type": stage.produces, "description": ""},
    }
    filled = [k for k, v in defaults.items() if k not in d or d[k] in (None, "", [])]
    for k in filled:
        d[k] = defaults[k]
    if not isinstance(d.get("right_when"), str) or d["right_when"] not in base.spec.predicates:
        notes.append(f"{name}: right_when {d['right_when']!r} is not a predicate; set to 'never'")
        d["right_when"] = "never"
    if d.get("role") not in ("core", "alternative", "distractor", "emergency"):
        notes.append(f"{name}: role {d['role']!r} unknown; set to 'alternative'")
        d["role"] = "alternative"
    if filled:
        notes.append(f"{name}: fields not given, defaults used: {', '.join(filled)}")
    known = {
        "name", "stage", "role", "signature", "rule", "when_to_call", "right_when",
        "handles_rule", "inputs", "output", "properties", "source", "examples", "situations",
    }  # fmt: skip
    extra = sorted(set(d) - known)
    for k in extra:
        del d[k]
    if extra:
        notes.append(f"{name}: unknown fields dropped: {extra}")
    return d


def _own_examples(base: Any, entry: Any, worker: Any, seed: int, n: int = 2) -> list[Any]:
    """Usage examples from a validated function's own outputs on sampled stage inputs."""
    from ld_agents.ld.validation import sample_inputs

    key = f"teach/{entry.name}"
    if not worker.load(key, entry.source, name=entry.name).ok:  # pragma: no cover
        return []
    out = []
    try:
        for state, prev in sample_inputs(base, entry.stage, n, seed + 7):
            res = worker.call(key, [copy.deepcopy(state), copy.deepcopy(prev)])
            if res.ok:
                note = "made by ld-gym teach from the function's output"
                out.append({"state": state, "prev": prev, "expected": res.value, "note": note})
    finally:
        worker.unload(key)
    return out


def teach(
    game: str,
    model: Any,
    out: str | Path | None = None,
    max_new_tokens: int = 4096,
    n_states: int = 60,
    seed: int = 0,
    answer: str | None = None,
) -> TeachReport:
    """Ask ``model`` (spec or backend) for a base, validate it, write the kept functions.

    ``answer``: a ready teacher answer to process instead of asking (tests, replays).
    """
    from ld_agents.base import check_count, check_seed
    from ld_agents.ld.base import FunctionBase, shipped_base
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_agents.ld.schema import Provenance, SchemaError
    from ld_agents.ld.validation import validate_function
    from ld_agents.llm.base import GenerationRequest, check_spec, get_backend

    check_count("n_states", n_states)
    check_count("max_new_tokens", max_new_tokens)
    check_seed(seed)
    if answer is None and isinstance(model, str):
        check_spec(model)  # before asking (a replayed answer's teacher is only a label)
    t0 = time.perf_counter()
    shipped = shipped_base(game)
    spec_name = model if isinstance(model, str) else getattr(model, "spec", type(model).__name__)
    report = TeachReport(game, str(spec_name))
    if answer is None:
        backend = get_backend(model)
        # a base (completion) model continues a JSON start better than it follows orders
        primer = "" if str(spec_name).startswith("openai:") else PRIMER
        tg = time.perf_counter()
        answer = backend.generate_until(
            [GenerationRequest(teacher_prompt(game) + primer, (), max_new_tokens)]
        )[0]
        answer = primer + answer
        report.generation_seconds = time.perf_counter() - tg
    report.answer_chars = len(answer)
    report.answer_head = answer[:1500]
    parsed = extract_json(answer)
    items = function_dicts(parsed)
    report.parsed = bool(items)
    prov = Provenance(
        author=f"teacher {spec_name}",
        stand_in=False,
        note=f"written by the teacher {spec_name} through `ld-gym teach`; validated in the "
        "sandbox; rejected functions are listed in the teach report",
        created=_dt.date.today().isoformat(),
        model=str(spec_name),
    )
    kept_base = FunctionBase(game, shipped.stages, [], prov, rules_text(game))
    seen: set[str] = set()
    with SandboxWorker() as worker:
        for i, item in enumerate(items):
            label = {"name": None, "stage": None}
            if not isinstance(item, dict):
                report.rejected.append(
                    {**label, "check": "schema", "reasons": [f"item {i} is not an object"]}
                )
                continue
            label = {"name": item.get("name"), "stage": item.get("stage")}
            missing = [k for k in _REQUIRED if not item.get(k)]
            if missing:
                report.rejected.append(
                    {**label, "check": "schema", "reasons": [f"missing fields {missing}"]}
                )
                continue
            not_text = [k for k in _REQUIRED if not isinstance(item[k], str)]
            if not_text:
                report.rejected.append(
                    {**label, "check": "schema", "reasons": [f"fields {not_text} are not strings"]}
                )
                continue
            if item["stage"] not in shipped.stage_names:
                report.rejected.append(
                    {
                        **label,
                        "check": "schema",
                        "reasons": [f"stage {item['stage']!r} is not one of {shipped.stage_names}"],
                    }
                )
                continue
            if item["name"] in seen:
                report.rejected.append(
                    {**label, "check": "schema", "reasons": ["a function of that name came first"]}
                )
                continue
            notes: list[str] = []
            data = _fill_defaults(item, shipped, notes)
            trial = FunctionBase(game, shipped.stages, [], prov, "")
            try:
                entry = trial.add_function(data, require_examples=False)
            except SchemaError as exc:
                bad_examples = str(exc)
                data["examples"], data["situations"] = [], []
                try:
                    entry = trial.add_function(data, require_examples=False)
                    notes.append(f"{data['name']}: usage examples dropped ({bad_examples})")
                except SchemaError as exc2:
                    report.rejected.append({**label, "check": "schema", "reasons": [str(exc2)]})
                    continue
            rep = validate_function(shipped, entry, worker, n_states=n_states, seed=seed)
            if rep.passed:
                seen.add(entry.name)
                if not entry.examples:
                    data["examples"] = _own_examples(shipped, entry, worker, seed)
                    notes.append(
                        f"{entry.name}: no usage examples given; made "
                        f"{len(data['examples'])} from its own outputs in the sandbox"
                    )
                    entry = trial.remove_function(entry.name)
                    entry = trial.add_function(data, require_examples=False)
                kept_base.add_function(entry)
                report.kept.append({"name": entry.name, "stage": entry.stage, "calls": rep.calls})
                report.notes.extend(notes)
            else:
                report.rejected.append(
                    {
                        **label,
                        "check": ",".join(rep.checks_failed()),
                        "reasons": [f.format() for f in rep.failures],
                    }
                )
                report.notes.extend(notes)
    report.missing_stages = [s for s in kept_base.stage_names if not kept_base.stage_candidates(s)]
    if out is not None and report.kept:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = kept_base.to_dict()
        if report.missing_stages:
            # not a whole base: an extension of the shipped base (loads with
            # load_function_base(shipped, [out]) and checks with `ld-gym validate`)
            del data["stages"]
            data["kind"] = "extension"
            clash = [f["name"] for f in data["functions"] if f["name"] in shipped._functions]
            if clash:
                report.notes.append(
                    f"written as an extension of the shipped base, but {clash} clash with "
                    "its names: load it on another base or rename them"
                )
            report.notes.append(
                "not every stage has a kept function: written as an extension "
                "(kind: extension) of the shipped base, not as a whole base"
            )
        path.write_text(json.dumps(data, indent=1) + "\n")
        report.out = str(path)
    report.seconds = time.perf_counter() - t0
    return report


#: where :func:`run_teach` writes by default (relative to the current directory)
DEFAULT_OUT_DIR = Path("runs") / "teach"


def run_teach(
    game: str,
    model: Any,
    out: str | Path | None = None,
    report: str | Path | None = None,
    answer_file: str | Path | None = None,
    max_new_tokens: int = 4096,
    n_states: int = 60,
    seed: int = 0,
) -> tuple[TeachReport, Path]:
    """:func:`teach` written to files: the kept functions at ``out`` (default
    ``runs/teach/<game>.json``), the report at ``report`` (default: ``out`` with
    ``.report.json``) and its Markdown beside it. ``answer_file``: a saved teacher answer
    to process instead of asking. Returns the report and its path."""
    out = Path(out) if out is not None else DEFAULT_OUT_DIR / f"{game}.json"
    answer = None
    if answer_file:
        try:
            answer = Path(answer_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(
                f"answer file {answer_file} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    result = teach(
        game,
        model,
        out=out,
        max_new_tokens=max_new_tokens,
        n_states=n_states,
        seed=seed,
        answer=answer,
    )
    path = result.save(Path(report) if report else out.with_suffix(".report.json"))
    return result, path
