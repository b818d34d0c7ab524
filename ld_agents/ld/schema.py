"""The function-base file format: its records, and a reader whose errors name the field.

A function base is a JSON file a teacher LLM can write: the game, its stages in order,
and small pure Python functions, each with a user-manual entry. One decision runs the
stages in order, one function per stage, each on the state and the previous stage's
output: ``o_j = f_j(state, o_{j-1})``, ``o_0 = None``; the last output is the decision
(pursuit: three target cells; 21 points: ``"hit"``/``"stand"``).

The schema (version 1; the full reference with an example is ``docs/function_bases.md``)::

    {
      "schema": "ld-gym/function-base", "schema_version": 1,
      "game": "pursuit" | "twentyone",
      "kind": "base" | "extension",        # an extension adds functions to a base's stages
      "provenance": {"author": str, "stand_in": bool, "note": str, "created": "YYYY-MM-DD",
                     "model": str | null, "adapter_sha256": str | null},
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

This module holds the records (:class:`FunctionEntry` and its parts, :class:`StageSpec`,
:class:`Provenance`), :class:`SchemaError`, and the readers (``read_*``, :class:`Reader`)
that :class:`~ld_agents.ld.base.FunctionBase` parses a file with.
"""

from __future__ import annotations

import json
import keyword
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ld_agents.ld.games import GameSpec
from ld_envs.errors import InvalidArgument

SCHEMA_ID = "ld-gym/function-base"
SCHEMA_VERSION = 1
KINDS = ("base", "extension")
ROLES = ("core", "alternative", "distractor", "emergency")


class SchemaError(InvalidArgument):
    """A function-base file breaks the schema; the message names the field."""


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
    #: the content fingerprint of the LoRA adapter the model wrote with (writer-made files)
    adapter_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As schema JSON data (``adapter_sha256`` only where there is one)."""
        out = dict(vars(self))
        if out["adapter_sha256"] is None:
            del out["adapter_sha256"]
        return out


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
                f"example: {self.name}({short_json(ex.state)}, {short_json(ex.prev)}) -> "
                f"{short_json(ex.expected)}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The entry as schema JSON data."""
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
            out["provenance"] = self.provenance.to_dict()
        return out


def short_json(value: Any, limit: int = 160) -> str:
    """``value`` as compact JSON, cut to ``limit`` characters (for messages)."""
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Reader:
    """Reads one JSON object with errors that name the field's path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SchemaError(f"{path} must be a JSON object, got {type(data).__name__}")
        self.data, self.path = data, path

    def at(self, key: str) -> str:
        """The path of ``key`` inside this object (``functions[2].stage``)."""
        return f"{self.path}.{key}" if self.path else key

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = ..., empty: bool = True
    ) -> Any:
        """The value at ``key``, of type ``kind`` (required unless a default is given;
        ``empty=False`` refuses an empty string or list)."""
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
        """Refuse fields outside ``known`` (a typo names itself)."""
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            raise SchemaError(
                f"{self.path or 'the file'} has unknown field(s) {unknown}; known: "
                f"{', '.join(sorted(known))}"
            )


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


#: what :func:`is_function_name` asks for, in words (for error messages)
FUNCTION_NAME_RULE = "a Python identifier not starting with '_', in Unicode NFKC form"


def is_function_name(value: object) -> bool:
    """Whether ``value`` can name a generated function: an identifier, not a keyword, not
    starting with ``_`` (the sandbox refuses those), and NFKC-normal (Python normalises
    identifiers, so ``ｋｅｅｐ`` in a source defines ``keep`` and could never be found)."""
    return (
        isinstance(value, str)
        and value.isidentifier()
        and not keyword.iskeyword(value)
        and not value.startswith("_")
        and unicodedata.normalize("NFKC", value) == value
    )


def _identifier(value: str, where: str) -> str:
    if not is_function_name(value):
        raise SchemaError(f"{where} must be {FUNCTION_NAME_RULE}, got {value!r}")
    return value


def read_properties(spec: GameSpec, values: list[Any], where: str) -> tuple[Any, ...]:
    """A list of property references, each checked against the game's vocabulary."""
    for i, p in enumerate(values):
        problem = spec.property_problem(p)
        if problem:
            raise SchemaError(f"{where}[{i}]: {problem}")
    return tuple(values)


def read_provenance(data: Any, where: str) -> Provenance:
    """A ``provenance`` object."""
    r = Reader(data, where)
    r.no_unknown(["author", "stand_in", "note", "created", "model", "adapter_sha256"])
    return Provenance(
        author=r.get("author", str, empty=False),
        stand_in=r.get("stand_in", bool),
        note=r.get("note", str, ""),
        created=r.get("created", str, ""),
        model=r.get("model", (str, type(None)), None),
        adapter_sha256=r.get("adapter_sha256", (str, type(None)), None),
    )


def _param(data: Any, where: str) -> Param:
    r = Reader(data, where)
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


def read_function(
    data: Any,
    where: str,
    spec: GameSpec,
    stages: Mapping[str, StageSpec],
    require_examples: bool = True,
) -> FunctionEntry:
    """One ``functions[i]`` object: its stage must be in ``stages``, its examples and
    situations well-typed for that stage (``require_examples=False``: none needed)."""
    r = Reader(data, where)
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
        er = Reader(e, f"{r.at('examples')}[{i}]")
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
        sr = Reader(s, f"{r.at('situations')}[{i}]")
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
        properties=read_properties(spec, r.get("properties", list, []), r.at("properties")),
        handles_rule=r.get("handles_rule", (str, type(None)), None),
        provenance=None if prov is None else read_provenance(prov, r.at("provenance")),
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


def read_stage(data: Any, where: str, spec: GameSpec) -> StageSpec:
    """One ``stages[i]`` object (its types must be the game's)."""
    r = Reader(data, where)
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
        properties=read_properties(spec, r.get("properties", list, []), r.at("properties")),
    )


def read_header(r: Reader, kind: str) -> None:
    """Check a file's ``schema``, ``schema_version`` and ``kind`` (``"base"``/``"extension"``)."""
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


def check_unique(names: list[str], where: str) -> None:
    """Refuse a function name given twice."""
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SchemaError(f"{where}: duplicate function name(s) {dup}")
