"""Function bases and their user manuals (the paper's D_f, sections 3.1-3.4, Figure 4).

:class:`FunctionBase` holds a game's stages in order and their functions (the records and
the file format are :mod:`ld_agents.ld.schema`). One decision runs the stages in order, one
function per stage, each on the state and the previous stage's output; the last output is
the decision, which :meth:`FunctionBase.decision_to_action` turns into an env action.

``role`` and ``right_when`` are the answer key for evaluation and training labels: a
prompt that asks a student to choose must show the manual text
(:meth:`~ld_agents.ld.schema.FunctionEntry.manual_text`), never those two fields.

APIs for the LD student: :meth:`FunctionBase.stage_candidates`, the ground-truth labeller
:meth:`FunctionBase.right_function`, :meth:`FunctionBase.add_function` (emergency
functions, validated first with :func:`ld_agents.ld.validation.validate_function`),
:meth:`FunctionBase.run_chain` (execution in a :class:`~ld_agents.ld.sandbox.SandboxWorker`).
Loading: :func:`load_function_base`, :func:`shipped_base` (the files in :data:`SHIPPED`),
:func:`load_source_entry` (one bare ``.py`` function). Student training data is
:mod:`ld_agents.ld.training_data`; the sandbox contract tests are
:mod:`ld_agents.ld.validation`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.ld.games import GameSpec, game_spec
from ld_agents.ld.sandbox import CallResult, SandboxWorker
from ld_agents.ld.schema import (
    SCHEMA_ID,
    SCHEMA_VERSION,
    FunctionEntry,
    Param,
    Provenance,
    Reader,
    SchemaError,
    StageSpec,
    check_unique,
    read_function,
    read_header,
    read_properties,
    read_provenance,
    read_stage,
    short_json,
)
from ld_envs.errors import InvalidArgument, LdGymError

logger = logging.getLogger(__name__)


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
        r = Reader(data, "")
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
        read_header(r, "base")
        spec = game_spec(r.get("game", str))
        stages_raw = r.get("stages", list, empty=False)
        stages = [read_stage(s, f"stages[{i}]", spec) for i, s in enumerate(stages_raw)]
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
            read_function(f, f"functions[{i}]", spec, by_name, require_examples)
            for i, f in enumerate(r.get("functions", list, empty=False))
        ]
        check_unique([f.name for f in functions], "functions")
        base = cls(
            spec.name,
            stages,
            functions,
            read_provenance(r.get("provenance", dict), "provenance"),
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
        r = Reader(data, "")
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
        read_header(r, "extension")
        game = r.get("game", str)
        if game != self.game:
            raise SchemaError(f"game is {game!r} but the base is for {self.game!r}")
        prov = read_provenance(r.get("provenance", dict), "provenance")
        by_name = {s.name: s for s in self.stages}
        entries = [
            read_function(f, f"functions[{i}]", self.spec, by_name)
            for i, f in enumerate(r.get("functions", list, empty=False))
        ]
        check_unique([f.name for f in entries], "functions")
        clash = [e.name for e in entries if e.name in self._functions]
        if clash:  # checked before any is added: a refused extension leaves the base as it was
            raise SchemaError(f"function(s) {clash} are already in the base; nothing was added")
        added = []
        for e in entries:
            if e.provenance is None:
                e = dataclasses.replace(e, provenance=prov)
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
            "provenance": self.provenance.to_dict(),
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
            entry = read_function(entry, "function", self.spec, stages, require_examples)
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
                f"that no function handles yet? add an emergency function): {short_json(state)}"
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


def read_base_file(path: str | Path) -> Any:
    """The JSON data of a function-base or extension file (clear errors)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"no function-base file at {path}")
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise SchemaError(f"{path} is JSON nested too deeply to read") from None


def _read_text(path: Path) -> str:
    """A file's text as UTF-8 (function bases and sources are UTF-8), or a SchemaError."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None


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
    source = _read_text(path)
    header: dict[str, str] = {}
    for line in source.splitlines():
        text = line.strip()
        for key in ("stage", "properties", "right_when"):
            if text.startswith(f"# {key}:") and key not in header:
                header[key] = text.split(":", 1)[1].strip()
    try:
        defs = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        defs = [path.stem]  # the static check reports what is wrong with it
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
        properties=read_properties(base.spec, list(properties or []), f"{path}: properties"),
    )


#: names that lived here before the split, served lazily from their new modules
_MOVED = {
    **dict.fromkeys(
        [
            "Failure",
            "FunctionReport",
            "ValidationReport",
            "labeller_notes",
            "same_value",
            "sample_inputs",
            "validate_base",
            "validate_function",
        ],
        "ld_agents.ld.validation",
    ),
    **dict.fromkeys(["SelectionExample", "training_examples"], "ld_agents.ld.training_data"),
}


def __getattr__(name: str) -> Any:
    """``from ld_agents.ld.base import validate_base`` (and the other moved names) still
    works; the validation and training-data modules import this one, hence lazily."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
