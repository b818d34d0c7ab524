"""Function bases and their user manuals (the paper's D_f, sections 3.1-3.4, Figure 4).

A function base is a JSON file a teacher LLM can write: the game, its stages in order,
and small pure Python functions, each with a user-manual entry. One decision runs the
stages in order, one function per stage, each on the state and the previous stage's
output: ``o_j = f_j(state, o_{j-1})``, ``o_0 = None``; the last output is the decision
(pursuit: three target cells; 21 points: ``"hit"``/``"stand"``), which
:meth:`FunctionBase.decision_to_action` turns into an env action.

The schema (version 1; the full reference with an example is ``docs/function_bases.md``)::

    {
      "schema": "ld-gym/function-base", "schema_version": 1,
      "game": "pursuit" | "twentyone",
      "kind": "base" | "extension",        # an extension adds functions to a base's stages
      "provenance": {"author": str, "stand_in": bool, "note": str, "created": "YYYY-MM-DD",
                     "model": str | null},
      "rules": str,                        # the rules the teacher read (base only)
      "stages": [                          # in order (base only)
        {"name": str, "description": str, "consumes": TYPE, "produces": TYPE,
         "properties": [PROPERTY, ...]}    # claims every function of the stage must keep
      ],
      "functions": [
        {"name": identifier, "stage": str, "source": "def name(state, prev): ...",
         "signature": str, "inputs": [{"name", "type", "description"}], "output": {...},
         "rule": str,                      # the game rule it implements
         "when_to_call": str,              # the manual's advice, in words
         "right_when": PREDICATE,          # the same advice as a predicate name (labeller)
         "role": "core" | "alternative" | "distractor" | "emergency",
         "handles_rule": str | null,       # emergency functions: the rule they add
         "properties": [PROPERTY, ...],    # claims about this function's output
         "examples": [{"state", "prev", "expected", "note"}],   # usage examples, >= 1
         "situations": [{"state", "prev", "note"}]}             # where it is the right one
      ]
    }

``TYPE``, ``PREDICATE`` and ``PROPERTY`` come from the game's vocabulary in
:mod:`ld_agents.ld.games` (a property is ``"name"`` or ``{"name": ..., param: v}``).
``role`` and ``right_when`` are the answer key for evaluation and training labels: a
prompt that asks a student to choose must show the manual text
(:meth:`FunctionEntry.manual_text`), never those two fields.

APIs for the LD student: :meth:`FunctionBase.stage_candidates`, the ground-truth labeller
:meth:`FunctionBase.right_function`, :meth:`FunctionBase.add_function` (emergency
functions, validated first with :func:`validate_function`), :meth:`FunctionBase.run_chain`
(execution in a :class:`~ld_agents.ld.sandbox.SandboxWorker`), :func:`training_examples`
(student training data on held-out states) and :func:`validate_base` (the sandbox
contract tests behind ``ld-gym validate``).
"""

from __future__ import annotations

import copy
import json
import keyword
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ld_agents.ld.games import GameSpec, game_spec, split_property
from ld_agents.ld.sandbox import CallResult, Limits, SandboxWorker, check_source
from ld_envs.errors import InvalidArgument, LdGymError

logger = logging.getLogger(__name__)

SCHEMA_ID = "ld-gym/function-base"
SCHEMA_VERSION = 1
KINDS = ("base", "extension")
ROLES = ("core", "alternative", "distractor", "emergency")


class SchemaError(InvalidArgument):
    """A function-base file breaks the schema; the message names the field."""


class NoRightFunction(LdGymError, LookupError):
    """No function of a stage is the right one for this state (the manual has a gap,
    e.g. a rule in force that no function handles yet: an emergency)."""


def bases_dir() -> Path:
    """``assets/function_bases/`` (``LD_GYM_ASSETS`` moves ``assets/``)."""
    from ld_agents.files import assets_dir

    return assets_dir() / "function_bases"


#: shipped files per game: the base and its emergency extensions
SHIPPED: dict[str, dict[str, str]] = {
    "pursuit": {"base": "pursuit.json", "restricted_area": "pursuit_restricted_emergency.json"},
    "twentyone": {"base": "twentyone.json"},
}


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Param:
    """A documented input or output of a function."""

    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Example:
    """A usage example: on ``(state, prev)`` the function returns ``expected``."""

    state: dict[str, Any]
    prev: Any
    expected: Any
    note: str = ""


@dataclass(frozen=True)
class Situation:
    """A state (and stage input) where the function is the right choice."""

    state: dict[str, Any]
    prev: Any
    note: str = ""


@dataclass(frozen=True)
class Provenance:
    """Who wrote a base (or one function) and how."""

    author: str
    stand_in: bool
    note: str = ""
    created: str = ""
    model: str | None = None


@dataclass(frozen=True)
class StageSpec:
    """One stage of a decision: what it consumes and produces, and what it must keep."""

    name: str
    description: str
    consumes: str
    produces: str
    properties: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FunctionEntry:
    """One function and its user-manual entry."""

    name: str
    stage: str
    source: str
    signature: str
    inputs: tuple[Param, ...]
    output: Param
    rule: str
    when_to_call: str
    right_when: str
    role: str
    examples: tuple[Example, ...]
    situations: tuple[Situation, ...] = ()
    properties: tuple[Any, ...] = ()
    handles_rule: str | None = None
    provenance: Provenance | None = None

    def manual_text(self, examples: int = 1) -> str:
        """The manual entry as a student sees it: no ``role``, no ``right_when``."""
        lines = [
            f"{self.name} (stage: {self.stage})",
            f"signature: {self.signature}",
            f"rule: {self.rule}",
            f"when to call: {self.when_to_call}",
            "inputs: " + "; ".join(f"{p.name} ({p.type}): {p.description}" for p in self.inputs),
            f"output ({self.output.type}): {self.output.description}",
        ]
        for ex in self.examples[:examples]:
            lines.append(
                f"example: {self.name}({_short(ex.state)}, {_short(ex.prev)}) -> "
                f"{_short(ex.expected)}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "stage": self.stage,
            "role": self.role,
            "signature": self.signature,
            "rule": self.rule,
            "when_to_call": self.when_to_call,
            "right_when": self.right_when,
            "handles_rule": self.handles_rule,
            "inputs": [vars(p) for p in self.inputs],
            "output": vars(self.output),
            "properties": list(self.properties),
            "source": self.source,
            "examples": [vars(e) for e in self.examples],
            "situations": [vars(s) for s in self.situations],
        }
        if self.provenance is not None:
            out["provenance"] = vars(self.provenance)
        return out


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Reader:
    """Reads one JSON object with errors that name the field's path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SchemaError(f"{path} must be a JSON object, got {type(data).__name__}")
        self.data, self.path = data, path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = ..., empty: bool = True
    ) -> Any:
        if key not in self.data:
            if default is ...:
                raise SchemaError(f"{self.at(key)} is missing (required)")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            names = " or ".join(t.__name__ for t in _tuple(kind))
            raise SchemaError(f"{self.at(key)} must be {names}, got {type(value).__name__}")
        if not empty and isinstance(value, (str, list)) and not value:
            raise SchemaError(f"{self.at(key)} must not be empty")
        return value

    def no_unknown(self, known: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            raise SchemaError(
                f"{self.path or 'the file'} has unknown field(s) {unknown}; known: "
                f"{', '.join(sorted(known))}"
            )


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _identifier(value: str, where: str) -> str:
    if not value.isidentifier() or keyword.iskeyword(value) or value.startswith("_"):
        raise SchemaError(
            f"{where} must be a Python identifier not starting with '_', got {value!r}"
        )
    return value


def _properties(spec: GameSpec, values: list[Any], where: str) -> tuple[Any, ...]:
    for i, p in enumerate(values):
        problem = spec.property_problem(p)
        if problem:
            raise SchemaError(f"{where}[{i}]: {problem}")
    return tuple(values)


def _provenance(data: Any, where: str) -> Provenance:
    r = _Reader(data, where)
    r.no_unknown(["author", "stand_in", "note", "created", "model"])
    return Provenance(
        author=r.get("author", str, empty=False),
        stand_in=r.get("stand_in", bool),
        note=r.get("note", str, ""),
        created=r.get("created", str, ""),
        model=r.get("model", (str, type(None)), None),
    )


def _param(data: Any, where: str) -> Param:
    r = _Reader(data, where)
    r.no_unknown(["name", "type", "description"])
    return Param(
        r.get("name", str, empty=False),
        r.get("type", str, empty=False),
        r.get("description", str, ""),
    )


_FUNCTION_FIELDS = [
    "name",
    "stage",
    "source",
    "signature",
    "inputs",
    "output",
    "rule",
    "when_to_call",
    "right_when",
    "role",
    "handles_rule",
    "properties",
    "examples",
    "situations",
    "provenance",
]


def _function(
    data: Any,
    where: str,
    spec: GameSpec,
    stages: Mapping[str, StageSpec],
    require_examples: bool = True,
) -> FunctionEntry:
    r = _Reader(data, where)
    r.no_unknown(_FUNCTION_FIELDS)
    name = _identifier(r.get("name", str, empty=False), r.at("name"))
    stage = r.get("stage", str, empty=False)
    if stage not in stages:
        raise SchemaError(
            f"{r.at('stage')} is {stage!r}, not a stage of the base; stages: {', '.join(stages)}"
        )
    st = stages[stage]
    role = r.get("role", str)
    if role not in ROLES:
        raise SchemaError(f"{r.at('role')} must be one of {', '.join(ROLES)}, got {role!r}")
    right_when = r.get("right_when", str, empty=False)
    if right_when not in spec.predicates:
        raise SchemaError(
            f"{r.at('right_when')} is {right_when!r}, not a predicate of {spec.name}; known: "
            f"{', '.join(sorted(spec.predicates))}"
        )
    inputs = r.get("inputs", list, empty=False)
    examples_raw = r.get("examples", list, empty=not require_examples)
    examples = []
    for i, e in enumerate(examples_raw):
        er = _Reader(e, f"{r.at('examples')}[{i}]")
        er.no_unknown(["state", "prev", "expected", "note"])
        ex = Example(
            er.get("state", dict),
            er.get("prev", object),
            er.get("expected", object),
            er.get("note", str, ""),
        )
        _check_io(spec, st, ex.state, ex.prev, er.at(""))
        problem = spec.types[st.produces].check(ex.expected, ex.state)
        if problem:
            raise SchemaError(f"{er.at('expected')} is not a {st.produces} value: {problem}")
        examples.append(ex)
    situations = []
    for i, s in enumerate(r.get("situations", list, [])):
        sr = _Reader(s, f"{r.at('situations')}[{i}]")
        sr.no_unknown(["state", "prev", "note"])
        sit = Situation(
            sr.get("state", dict), sr.get("prev", object, None), sr.get("note", str, "")
        )
        _check_io(spec, st, sit.state, sit.prev, sr.at(""))
        situations.append(sit)
    prov = r.data.get("provenance")
    return FunctionEntry(
        name=name,
        stage=stage,
        source=r.get("source", str, empty=False),
        signature=r.get("signature", str, empty=False),
        inputs=tuple(_param(p, f"{r.at('inputs')}[{i}]") for i, p in enumerate(inputs)),
        output=_param(r.get("output", dict), r.at("output")),
        rule=r.get("rule", str, empty=False),
        when_to_call=r.get("when_to_call", str, empty=False),
        right_when=right_when,
        role=role,
        examples=tuple(examples),
        situations=tuple(situations),
        properties=_properties(spec, r.get("properties", list, []), r.at("properties")),
        handles_rule=r.get("handles_rule", (str, type(None)), None),
        provenance=None if prov is None else _provenance(prov, r.at("provenance")),
    )


def _check_io(spec: GameSpec, stage: StageSpec, state: Any, prev: Any, where: str) -> None:
    where = where.rstrip(".")
    problem = spec.check_state(state)
    if problem:
        raise SchemaError(f"{where}.state is not a {spec.name} state: {problem}")
    problem = spec.types[stage.consumes].check(prev, state)
    if problem:
        raise SchemaError(
            f"{where}.prev is not a {stage.consumes} value (stage {stage.name} "
            f"consumes it): {problem}"
        )


def _stage(data: Any, where: str, spec: GameSpec) -> StageSpec:
    r = _Reader(data, where)
    r.no_unknown(["name", "description", "consumes", "produces", "properties"])
    name = _identifier(r.get("name", str, empty=False), r.at("name"))
    types = {}
    for key in ("consumes", "produces"):
        t = r.get(key, str, empty=False)
        if t not in spec.types:
            raise SchemaError(
                f"{r.at(key)} is {t!r}, not a {spec.name} value type; known: "
                f"{', '.join(spec.types)}"
            )
        types[key] = t
    return StageSpec(
        name=name,
        description=r.get("description", str, empty=False),
        consumes=types["consumes"],
        produces=types["produces"],
        properties=_properties(spec, r.get("properties", list, []), r.at("properties")),
    )


# --------------------------------------------------------------------------- the base


@dataclass
class StageStep:
    """One stage of one decision: the candidates, the chosen function, its result."""

    stage: str
    candidates: list[str]
    chosen: str
    result: CallResult


@dataclass
class ChainTrace:
    """A decision's run through the stages; ``decision`` is ``None`` when a stage failed."""

    steps: list[StageStep] = field(default_factory=list)
    decision: Any = None
    failed_stage: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_stage is None


#: ``choose(stage, candidates, state, prev) -> function name``
Chooser = Callable[[StageSpec, list[FunctionEntry], dict[str, Any], Any], str]


class FunctionBase:
    """A validated-schema function base: stages in order and their functions.

    Build it with :func:`load_function_base` / :meth:`from_dict`; mutate it only with
    :meth:`add_function` / :meth:`extend`.
    """

    def __init__(
        self,
        game: str,
        stages: Sequence[StageSpec],
        functions: Iterable[FunctionEntry],
        provenance: Provenance,
        rules: str = "",
        origin: str = "",
    ) -> None:
        self.spec: GameSpec = game_spec(game)
        self.game = game
        self.stages: tuple[StageSpec, ...] = tuple(stages)
        self.provenance = provenance
        self.rules = rules
        #: where the base came from (file paths, extensions applied)
        self.origin = origin
        self._functions: dict[str, FunctionEntry] = {}
        for f in functions:
            self.add_function(f)

    # ----------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, data: Any, origin: str = "", require_examples: bool = True) -> FunctionBase:
        """Parse and schema-check a base dict; :class:`SchemaError` names the bad field.

        ``require_examples=False`` accepts entries without usage examples (a base being
        built; the validator then has only sampled inputs to test them on)."""
        r = _Reader(data, "")
        r.no_unknown(
            [
                "schema",
                "schema_version",
                "game",
                "kind",
                "provenance",
                "rules",
                "stages",
                "functions",
                "state",
                "description",
            ]
        )
        _header(r, "base")
        spec = game_spec(r.get("game", str))
        stages_raw = r.get("stages", list, empty=False)
        stages = [_stage(s, f"stages[{i}]", spec) for i, s in enumerate(stages_raw)]
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise SchemaError(f"stages: names must be unique, got {names}")
        if stages[0].consumes != "none":
            raise SchemaError(
                f"stages[0].consumes must be 'none' (the first stage has no input), "
                f"got {stages[0].consumes!r}"
            )
        for i in range(1, len(stages)):
            if stages[i].consumes != stages[i - 1].produces:
                raise SchemaError(
                    f"stages[{i}].consumes is {stages[i].consumes!r} but stages[{i - 1}] "
                    f"({stages[i - 1].name}) produces {stages[i - 1].produces!r}"
                )
        if stages[-1].produces != spec.decision_type:
            raise SchemaError(
                f"stages[{len(stages) - 1}].produces must be the decision type "
                f"{spec.decision_type!r}, got {stages[-1].produces!r}"
            )
        by_name = {s.name: s for s in stages}
        functions = [
            _function(f, f"functions[{i}]", spec, by_name, require_examples)
            for i, f in enumerate(r.get("functions", list, empty=False))
        ]
        _unique([f.name for f in functions], "functions")
        base = cls(
            spec.name,
            stages,
            functions,
            _provenance(r.get("provenance", dict), "provenance"),
            rules=r.get("rules", str, ""),
            origin=origin,
        )
        for s in stages:
            if not base.stage_candidates(s.name):
                raise SchemaError(f"stage {s.name!r} has no function (functions[*].stage)")
        return base

    def extend(self, data: Any, origin: str = "") -> list[FunctionEntry]:
        """Add the functions of an extension dict (``"kind": "extension"``) to this base.

        Their provenance defaults to the extension file's. Returns the added entries.
        """
        r = _Reader(data, "")
        r.no_unknown(
            [
                "schema",
                "schema_version",
                "game",
                "kind",
                "provenance",
                "functions",
                "rules",
                "description",
            ]
        )
        _header(r, "extension")
        game = r.get("game", str)
        if game != self.game:
            raise SchemaError(f"game is {game!r} but the base is for {self.game!r}")
        prov = _provenance(r.get("provenance", dict), "provenance")
        by_name = {s.name: s for s in self.stages}
        entries = [
            _function(f, f"functions[{i}]", self.spec, by_name)
            for i, f in enumerate(r.get("functions", list, empty=False))
        ]
        _unique([f.name for f in entries], "functions")
        added = []
        for e in entries:
            if e.provenance is None:
                e = _replace(e, provenance=prov)
            added.append(self.add_function(e))
        if origin:
            self.origin = f"{self.origin} + {origin}" if self.origin else origin
        return added

    def to_dict(self) -> dict[str, Any]:
        """The base as schema JSON data (``from_dict(to_dict())`` round-trips)."""
        return {
            "schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "game": self.game,
            "kind": "base",
            "provenance": vars(self.provenance),
            "rules": self.rules,
            "stages": [{**vars(s), "properties": list(s.properties)} for s in self.stages],
            "functions": [f.to_dict() for f in self._functions.values()],
        }

    def save(self, path: str | Path) -> Path:
        """Write the base as JSON (indented, stable key order)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    # ----------------------------------------------------------------- queries

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise InvalidArgument(f"unknown stage {name!r}; stages: {', '.join(self.stage_names)}")

    @property
    def functions(self) -> list[FunctionEntry]:
        """Every function, in the order added."""
        return list(self._functions.values())

    def function(self, name: str) -> FunctionEntry:
        try:
            return self._functions[name]
        except KeyError:
            raise InvalidArgument(
                f"no function {name!r} in the {self.game} base; known: {', '.join(self._functions)}"
            ) from None

    def stage_candidates(self, stage: str) -> list[FunctionEntry]:
        """The functions of a stage, in base order (emergency functions last)."""
        self.stage(stage)
        return [f for f in self._functions.values() if f.stage == stage]

    def add_function(
        self, entry: FunctionEntry | Mapping[str, Any], require_examples: bool = True
    ) -> FunctionEntry:
        """Add one function (an entry, or its schema dict) at its stage.

        For emergency functions: validate it first (:func:`validate_function`), then add
        it; the labeller and :meth:`stage_candidates` see it at once, no retraining.
        ``require_examples=False`` accepts a dict without usage examples (generated code).
        """
        if not isinstance(entry, FunctionEntry):
            stages = {s.name: s for s in self.stages}
            entry = _function(entry, "function", self.spec, stages, require_examples)
        if entry.stage not in self.stage_names:
            raise SchemaError(
                f"function {entry.name!r}: stage {entry.stage!r} is not a stage "
                f"of the base ({', '.join(self.stage_names)})"
            )
        if entry.name in self._functions:
            raise SchemaError(f"a function named {entry.name!r} is already in the base")
        self._functions[entry.name] = entry
        return entry

    def remove_function(self, name: str) -> FunctionEntry:
        """Remove a function (e.g. one the validator rejected)."""
        entry = self.function(name)
        del self._functions[name]
        return entry

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as its schema data (the game vocabulary is looked up again)."""
        return (_rebuild, (self.to_dict(), self.origin))

    def copy(self) -> FunctionBase:
        """An independent copy (entries are immutable and shared)."""
        return FunctionBase(
            self.game, self.stages, self.functions, self.provenance, self.rules, self.origin
        )

    # ----------------------------------------------------------------- ground truth

    def right_functions(self, stage: str, state: Mapping[str, Any], prev: Any = None) -> list[str]:
        """Every function of ``stage`` whose ``right_when`` holds on ``(state, prev)``."""
        preds = self.spec.predicates
        return [
            f.name
            for f in self.stage_candidates(stage)
            if preds[f.right_when].test(dict(state), prev)
        ]

    def right_function(self, stage: str, state: Mapping[str, Any], prev: Any = None) -> str:
        """The ground-truth choice at ``stage``: the one function whose manual condition
        (``right_when``) holds. Raises :class:`NoRightFunction` when none or several do."""
        names = self.right_functions(stage, state, prev)
        if len(names) == 1:
            return names[0]
        if not names:
            raise NoRightFunction(
                f"no function of stage {stage!r} is right for this state (a rule in force "
                f"that no function handles yet? add an emergency function): {_short(state)}"
            )
        raise NoRightFunction(f"several functions of stage {stage!r} claim this state: {names}")

    def ground_truth_chooser(self) -> Chooser:
        """A chooser that always picks :meth:`right_function` (an oracle student)."""

        def choose(
            stage: StageSpec, cands: list[FunctionEntry], state: dict[str, Any], prev: Any
        ) -> str:
            return self.right_function(stage.name, state, prev)

        return choose

    # ----------------------------------------------------------------- execution

    def load_into(
        self, worker: SandboxWorker, names: Iterable[str] | None = None
    ) -> dict[str, CallResult]:
        """Load functions (all by default) into a worker under their names."""
        out = {}
        for name in self._functions if names is None else names:
            f = self.function(name)
            out[name] = worker.load(name, f.source)
            if not out[name].ok:
                logger.warning("function %s did not load: %s", name, out[name])
        return out

    def run_stage(
        self, worker: SandboxWorker, name: str, state: Mapping[str, Any], prev: Any
    ) -> CallResult:
        """Run one function on ``(state, prev)``; a wrong output type is an error result."""
        f = self.function(name)
        if name not in worker.loaded():
            loaded = worker.load(name, f.source)
            if not loaded.ok:
                return loaded
        res = worker.call(name, [dict(state), prev])
        if res.ok:
            stage = self.stage(f.stage)
            problem = self.spec.types[stage.produces].check(res.value, dict(state))
            if problem:
                return CallResult(
                    False,
                    kind="output",
                    seconds=res.seconds,
                    message=f"{name} returned a wrong {stage.produces}: {problem}",
                )
        return res

    def run_chain(
        self, worker: SandboxWorker, state: Mapping[str, Any], choose: Chooser | None = None
    ) -> ChainTrace:
        """Run one decision: at each stage ``choose`` picks a function (the ground truth
        by default), the worker runs it on the state and the previous output. A failing
        stage stops the chain (``trace.failed_stage``); the caller then plays the game's
        illegal choice (pursuit: ``NO_CHOICE``) or :attr:`GameSpec.fallback_action`."""
        choose = choose or self.ground_truth_chooser()
        state = dict(state)
        trace = ChainTrace()
        prev: Any = None
        for stage in self.stages:
            cands = self.stage_candidates(stage.name)
            name = choose(stage, cands, state, prev)
            if name not in self._functions or self._functions[name].stage != stage.name:
                res = CallResult(
                    False,
                    kind="not_loaded",
                    message=f"{name!r} is not a function of stage {stage.name!r}",
                )
            else:
                res = self.run_stage(worker, name, state, prev)
            trace.steps.append(StageStep(stage.name, [c.name for c in cands], name, res))
            if not res.ok:
                trace.failed_stage = stage.name
                return trace
            prev = res.value
        trace.decision = prev
        return trace

    def decision_to_action(self, decision: Any, state: Mapping[str, Any]) -> Any:
        """The env action of a decision (``None`` decision: the game's illegal choice)."""
        if decision is None:
            return self.spec.fallback_action(dict(state))
        return self.spec.decision_to_action(decision, dict(state))

    def retriever_entries(self, stage: str | None = None) -> list[Any]:
        """Manual entries for :class:`ld_agents.ld.retriever.Retriever` (name + manual text)."""
        from ld_agents.ld.retriever import Entry

        funcs = self.functions if stage is None else self.stage_candidates(stage)
        return [Entry(f.name, f.manual_text()) for f in funcs]

    def __repr__(self) -> str:
        per_stage = ", ".join(
            f"{s.name}: {len(self.stage_candidates(s.name))}" for s in self.stages
        )
        return f"FunctionBase(game={self.game!r}, {per_stage})"


def _rebuild(data: dict[str, Any], origin: str) -> FunctionBase:
    return FunctionBase.from_dict(data, origin=origin, require_examples=False)


def _header(r: _Reader, kind: str) -> None:
    schema = r.get("schema", str)
    if schema != SCHEMA_ID:
        raise SchemaError(f"schema must be {SCHEMA_ID!r}, got {schema!r}")
    version = r.get("schema_version", int)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema_version {version} is not supported (this ld-gym reads {SCHEMA_VERSION})"
        )
    got = r.get("kind", str, "base")
    if got != kind:
        raise SchemaError(f"kind must be {kind!r} here, got {got!r}")


def _unique(names: list[str], where: str) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SchemaError(f"{where}: duplicate function name(s) {dup}")


def _replace(entry: FunctionEntry, **changes: Any) -> FunctionEntry:
    from dataclasses import replace

    return replace(entry, **changes)


def read_base_file(path: str | Path) -> Any:
    """The JSON data of a function-base or extension file (clear errors)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"no function-base file at {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path} is not valid JSON: {exc}") from exc


def load_function_base(path: str | Path, extensions: Sequence[str | Path] = ()) -> FunctionBase:
    """Load and schema-check a base file, then apply extension files (emergencies)."""
    base = FunctionBase.from_dict(read_base_file(path), origin=str(path))
    for ext in extensions:
        base.extend(read_base_file(ext), origin=str(ext))
    return base


def shipped_base(game: str, emergencies: Sequence[str] = ()) -> FunctionBase:
    """The project's stand-in base for ``game`` with the named emergency extensions
    (pursuit: ``"restricted_area"``)."""
    files = SHIPPED.get(game)
    if files is None:
        raise InvalidArgument(
            f"no shipped function base for game {game!r}; known: {', '.join(SHIPPED)}"
        )
    for e in emergencies:
        if e not in files or e == "base":
            known = [k for k in files if k != "base"]
            raise InvalidArgument(f"no shipped {game} emergency {e!r}; known: {known}")
    d = bases_dir()
    return load_function_base(d / files["base"], [d / files[e] for e in emergencies])


def load_source_entry(
    path: str | Path,
    base: FunctionBase,
    stage: str | None = None,
    properties: Sequence[Any] | None = None,
) -> FunctionEntry:
    """A bare ``.py`` file holding one function, as a manual-less entry of ``base``.

    The function is the file's last top-level ``def`` (the file's stem when it does not
    parse: the static check then reports the syntax error). Header comments give what a
    manual would: ``# stage: NAME`` (or ``stage``), ``# properties: JSON list`` (or
    ``properties``; e.g. ``[{"name": "removes_exactly", "cells": "restricted_area"}]``)
    and ``# right_when: PREDICATE``. Without properties its contract is its stage's.
    """
    import ast

    path = Path(path)
    source = path.read_text()
    header: dict[str, str] = {}
    for line in source.splitlines():
        text = line.strip()
        for key in ("stage", "properties", "right_when"):
            if text.startswith(f"# {key}:") and key not in header:
                header[key] = text.split(":", 1)[1].strip()
    try:
        defs = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        defs = [path.stem]
    if not defs:
        raise SchemaError(f"{path} defines no top-level function")
    stage = stage or header.get("stage")
    if stage is None:
        raise SchemaError(
            f"{path}: give the stage (--stage NAME or a '# stage: NAME' comment); "
            f"stages: {', '.join(base.stage_names)}"
        )
    st = base.stage(stage)
    if properties is None and "properties" in header:
        try:
            properties = json.loads(header["properties"])
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: '# properties:' is not a JSON list: {exc}") from exc
    if not isinstance(properties or [], list):
        raise SchemaError(f"{path}: properties must be a JSON list, got {properties!r}")
    right_when = header.get("right_when", "never")
    if right_when not in base.spec.predicates:
        raise SchemaError(
            f"{path}: '# right_when: {right_when}' is not a predicate; known: "
            f"{', '.join(sorted(base.spec.predicates))}"
        )
    name = defs[-1]
    return FunctionEntry(
        name=name,
        stage=st.name,
        source=source,
        signature=f"{name}(state, prev)",
        inputs=(Param("state", "state", ""), Param("prev", st.consumes, "")),
        output=Param("out", st.produces, ""),
        rule="(from a source file)",
        when_to_call="(none)",
        right_when=right_when,
        role="alternative",
        examples=(),
        properties=_properties(base.spec, list(properties or []), f"{path}: properties"),
    )


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Failure:
    """One failed check: which function, which check, on what input, expected vs got."""

    function: str
    check: str
    message: str
    input: Any = None
    expected: Any = None
    got: Any = None

    def format(self) -> str:
        parts = [f"[{self.check}] {self.message}"]
        if self.input is not None:
            parts.append(f"input: {_short(self.input, 300)}")
        if self.expected is not None:
            parts.append(f"expected: {_short(self.expected, 200)}")
        if self.got is not None:
            parts.append(f"got: {_short(self.got, 200)}")
        return "\n      ".join(parts)


@dataclass
class FunctionReport:
    """The validator's verdict on one function."""

    name: str
    stage: str
    role: str
    failures: list[Failure] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def checks_failed(self) -> list[str]:
        return sorted({f.check for f in self.failures})


@dataclass
class ValidationReport:
    """What :func:`validate_base` kept and rejected, and why."""

    game: str
    origin: str
    functions: list[FunctionReport] = field(default_factory=list)
    #: base-level findings (labeller gaps or overlaps on sampled states)
    notes: list[str] = field(default_factory=list)
    enforcement: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(f.passed for f in self.functions)

    @property
    def kept(self) -> list[str]:
        return [f.name for f in self.functions if f.passed]

    @property
    def rejected(self) -> list[str]:
        return [f.name for f in self.functions if not f.passed]

    def report(self, name: str) -> FunctionReport:
        for f in self.functions:
            if f.name == name:
                return f
        raise InvalidArgument(f"no report for {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data."""
        return {
            "game": self.game,
            "origin": self.origin,
            "ok": self.ok,
            "kept": self.kept,
            "rejected": {
                f.name: [vars(x) for x in f.failures] for f in self.functions if not f.passed
            },
            "functions": [
                {
                    "name": f.name,
                    "stage": f.stage,
                    "role": f.role,
                    "passed": f.passed,
                    "calls": f.calls,
                    "seconds": f.seconds,
                }
                for f in self.functions
            ],
            "notes": self.notes,
            "enforcement": self.enforcement,
        }

    def format(self) -> str:
        """A human-readable report: kept, rejected with each failure, notes."""
        lines = [
            f"{self.origin or self.game}: {len(self.kept)} kept, {len(self.rejected)} rejected"
        ]
        for f in self.functions:
            mark = "kept    " if f.passed else "REJECTED"
            lines.append(
                f"  {mark} {f.stage}/{f.name} ({f.role}; {f.calls} calls, {f.seconds * 1e3:.0f} ms)"
            )
            for fail in f.failures:
                lines.append("      " + fail.format())
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)


def same_value(a: Any, b: Any, tol: float = 1e-9) -> bool:
    """JSON-value equality with a float tolerance (ints and floats compare by value)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], tol) for k in a)
    return a == b


def sample_inputs(
    base: FunctionBase, stage: str, n: int, seed: int = 0
) -> list[tuple[dict[str, Any], Any]]:
    """``n`` seeded ``(state, prev)`` inputs for a stage, built by trusted project code."""
    rng = np.random.default_rng(seed)
    st = base.stage(stage)
    out = []
    for _ in range(n):
        state = base.spec.sample_state(rng)
        out.append((state, base.spec.types[st.consumes].sample(state, rng)))
    return out


#: call errors after which a function is not called again (each costs a worker restart)
_FATAL = ("timeout", "cpu", "memory", "crash")


def validate_function(
    base: FunctionBase,
    entry: FunctionEntry,
    worker: SandboxWorker,
    inputs: Sequence[tuple[dict[str, Any], Any]] | None = None,
    n_states: int = 60,
    seed: int = 0,
    max_failures: int = 3,
) -> FunctionReport:
    """Check one function against its manual's contract, in the sandbox.

    Checks, in order (a failure of ``static`` or ``load`` stops the rest): ``static``
    (the AST whitelist), ``load``, ``example`` (each usage example gives its expected
    output), ``run`` (no error on sampled inputs), ``type`` (the stage's output type),
    ``property`` (the stage's and the function's claimed properties), ``deterministic``
    (same input, same output), ``situation`` (the labeller agrees it is right there).
    ``entry`` need not be in ``base`` yet (an emergency candidate).
    """
    t0 = time.perf_counter()
    rep = FunctionReport(entry.name, entry.stage, entry.role)
    spec = base.spec
    stage = base.stage(entry.stage)
    key = f"validate/{entry.name}"

    def fail(check: str, message: str, **kw: Any) -> None:
        rep.failures.append(Failure(entry.name, check, message, **kw))

    violations = check_source(entry.source, required=[entry.name])
    if violations:
        for v in violations:
            fail("static", str(v))
        return rep
    loaded = worker.load(key, entry.source, name=entry.name)
    if not loaded.ok:
        fail("load", str(loaded))
        return rep

    def call(state: dict[str, Any], prev: Any) -> CallResult:
        rep.calls += 1
        return worker.call(key, [copy.deepcopy(state), copy.deepcopy(prev)])

    try:
        for i, ex in enumerate(entry.examples):
            res = call(ex.state, ex.prev)
            inp = {"state": ex.state, "prev": ex.prev}
            if not res.ok:
                fail("example", f"usage example {i} raised {res}", input=inp, expected=ex.expected)
                if res.kind in _FATAL:
                    return rep
            elif not same_value(res.value, ex.expected):
                fail(
                    "example",
                    f"usage example {i} gives another output",
                    input=inp,
                    expected=ex.expected,
                    got=res.value,
                )
        props = [*stage.properties, *entry.properties]
        inputs = inputs if inputs is not None else sample_inputs(base, entry.stage, n_states, seed)
        counts: dict[str, int] = {}
        for state, prev in inputs:
            inp = {"state": state, "prev": prev}
            res = call(state, prev)
            if not res.ok:
                if res.kind in _FATAL:
                    fail("run", f"{res}; stopped testing it (a hang or crash is fatal)", input=inp)
                    break
                if counts.get("run", 0) < max_failures:
                    fail("run", f"raised {res}", input=inp)
                counts["run"] = counts.get("run", 0) + 1
                continue
            problem = spec.types[stage.produces].check(res.value, state)
            if problem:
                if counts.get("type", 0) < max_failures:
                    fail(
                        "type",
                        f"output is not a {stage.produces} value: {problem}",
                        input=inp,
                        got=res.value,
                    )
                counts["type"] = counts.get("type", 0) + 1
                continue
            for p in props:
                pname, params = split_property(p)
                try:
                    problem = spec.properties[pname].check(state, prev, res.value, **params)
                except (KeyError, IndexError, TypeError, ValueError) as exc:
                    problem = f"the output could not be checked ({type(exc).__name__}: {exc})"
                if problem:
                    label = f"property:{pname}"
                    if counts.get(label, 0) < max_failures:
                        fail(
                            "property",
                            f"{pname}{params or ''}: {problem}",
                            input=inp,
                            got=res.value,
                        )
                    counts[label] = counts.get(label, 0) + 1
        if inputs and not any(f.check == "run" for f in rep.failures):
            state, prev = inputs[0]
            a, b = call(state, prev), call(state, prev)
            if a.ok and b.ok and not same_value(a.value, b.value):
                fail(
                    "deterministic",
                    "two calls on the same input disagree",
                    input={"state": state, "prev": prev},
                    expected=a.value,
                    got=b.value,
                )
        trial = base.copy()
        if entry.name not in base._functions:
            trial.add_function(entry)
        for i, sit in enumerate(entry.situations):
            right = trial.right_functions(entry.stage, sit.state, sit.prev)
            if right != [entry.name]:
                fail(
                    "situation",
                    f"situation {i}: the manual's conditions pick {right}, not {entry.name}",
                    input={"state": sit.state, "prev": sit.prev},
                )
        for check, n in counts.items():
            if n > max_failures:
                fail(
                    check.split(":")[0],
                    f"... {n - max_failures} more {check} failures "
                    f"(of {len(inputs)} sampled inputs)",
                )
    finally:
        worker.unload(key)
        rep.seconds = time.perf_counter() - t0
    return rep


def labeller_notes(base: FunctionBase, n_states: int = 100, seed: int = 0) -> list[str]:
    """Stages where the manual's conditions pick no function or several, on samples."""
    rng = np.random.default_rng(seed)
    notes = []
    states = [base.spec.sample_state(rng) for _ in range(n_states)]
    for st in base.stages:
        none = [s for s in states if not base.right_functions(st.name, s)]
        many = [s for s in states if len(base.right_functions(st.name, s)) > 1]
        if none:
            notes.append(
                f"stage {st.name}: no function is right for {len(none)} of {n_states} sampled "
                f"states (a rule the base does not cover yet), e.g. {_short(none[0], 200)}"
            )
        if many:
            notes.append(
                f"stage {st.name}: several functions claim {len(many)} of {n_states} sampled "
                f"states, e.g. {base.right_functions(st.name, many[0])} on {_short(many[0], 200)}"
            )
    return notes


def validate_base(
    base: FunctionBase,
    worker: SandboxWorker | None = None,
    n_states: int = 60,
    seed: int = 0,
    names: Iterable[str] | None = None,
) -> ValidationReport:
    """Validate every function (or ``names``) of a base in the sandbox.

    Each stage's sampled inputs are shared by its functions. A worker is started (and
    stopped) when none is given.
    """
    own = worker is None
    worker = worker or SandboxWorker(Limits())
    report = ValidationReport(base.game, base.origin)
    try:
        worker.start()
        report.enforcement = dict(worker.enforcement)
        inputs = {s.name: sample_inputs(base, s.name, n_states, seed) for s in base.stages}
        chosen = list(names) if names is not None else [f.name for f in base.functions]
        for name in chosen:
            entry = base.function(name)
            report.functions.append(
                validate_function(base, entry, worker, inputs[entry.stage], seed=seed)
            )
        report.notes = labeller_notes(base, max(n_states, 50), seed)
    finally:
        if own:
            worker.close()
    return report


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True)
class SelectionExample:
    """One student training/evaluation item: at ``stage`` on ``state`` (with the stage
    input ``prev`` from the ground-truth chain), ``answer`` is the right function."""

    state: dict[str, Any]
    stage: str
    prev: Any
    candidates: tuple[str, ...]
    answer: str


def training_examples(
    base: FunctionBase,
    worker: SandboxWorker,
    states: Iterable[Mapping[str, Any]],
    stages: Iterable[str] | None = None,
) -> list[SelectionExample]:
    """Label every stage of each state with the ground truth, running the right chain
    so each stage sees the input it would really get. States where a stage has no right
    function are skipped from that stage on (logged)."""
    wanted = set(stages) if stages is not None else set(base.stage_names)
    out = []
    skipped = 0
    for state in states:
        state = dict(state)
        prev: Any = None
        for st in base.stages:
            try:
                answer = base.right_function(st.name, state, prev)
            except NoRightFunction:
                skipped += 1
                break
            if st.name in wanted:
                cands = tuple(f.name for f in base.stage_candidates(st.name))
                out.append(SelectionExample(state, st.name, prev, cands, answer))
            res = base.run_stage(worker, answer, state, prev)
            if not res.ok:
                logger.warning("ground-truth function %s failed: %s", answer, res)
                break
            prev = res.value
    if skipped:
        logger.info("%d states had a stage with no right function; labelled up to it", skipped)
    return out
