"""The sandbox contract tests behind ``ld-gym validate`` (what a function's manual promises).

:func:`validate_function` checks one function in a :class:`~ld_agents.ld.sandbox.SandboxWorker`
against its usage examples, its stage's output type, the stage's and its own claimed
properties (on seeded :func:`sample_inputs`), determinism and its situations;
:func:`validate_base` does it for every function of a base and adds the labeller's gaps and
overlaps (:func:`labeller_notes`). The verdicts are :class:`FunctionReport` and
:class:`ValidationReport` (kept, rejected and why: function, check, input, expected, got).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ld_agents.ld.base import (
    FunctionBase,
    load_function_base,
    load_source_entry,
    read_base_file,
    shipped_base,
)
from ld_agents.ld.games import split_property
from ld_agents.ld.sandbox import CallResult, Limits, SandboxWorker, check_source
from ld_agents.ld.schema import FunctionEntry, SchemaError, short_json
from ld_envs.errors import InvalidArgument


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
            parts.append(f"input: {short_json(self.input, 300)}")
        if self.expected is not None:
            parts.append(f"expected: {short_json(self.expected, 200)}")
        if self.got is not None:
            parts.append(f"got: {short_json(self.got, 200)}")
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

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON (:meth:`to_dict`) at ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

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
                f"states (a rule the base does not cover yet), e.g. {short_json(none[0], 200)}"
            )
        if many:
            notes.append(
                f"stage {st.name}: several functions claim {len(many)} of {n_states} sampled "
                f"states, e.g. {base.right_functions(st.name, many[0])} on "
                f"{short_json(many[0], 200)}"
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


def validate_file(
    path: str | Path,
    game: str,
    base: str | Path | None = None,
    stage: str | None = None,
    properties: str | Sequence[Any] | None = None,
    n_states: int = 60,
    seed: int = 0,
) -> ValidationReport:
    """Validate what a file holds (what ``ld-gym validate FILE`` checks):

    - a function-base JSON file (``"kind": "base"``): every function;
    - an extension JSON file (``"kind": "extension"``): its functions, in the context of
      the game's shipped base (or the base file ``base``);
    - a Python source file holding one function (the last top-level ``def``): against its
      stage's contract (``stage`` or a ``# stage: NAME`` comment) and ``properties`` (a
      JSON list or its text; :func:`~ld_agents.ld.base.load_source_entry`).

    ``n_states`` sampled inputs per function, seeded by ``seed``.
    """
    if n_states < 1:
        raise InvalidArgument(f"the number of sampled inputs must be >= 1, got {n_states}")
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"no file at {path}")
    if path.suffix != ".py":
        given = [k for k, v in (("stage", stage), ("properties", properties)) if v is not None]
        if given:
            raise InvalidArgument(
                f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to one "
                f"function's .py source only; {path} is not a .py file (a base or extension "
                "JSON's functions carry their own stage and properties)"
            )

    def context() -> FunctionBase:
        return load_function_base(base) if base is not None else shipped_base(game)

    with SandboxWorker() as worker:
        if path.suffix == ".py":
            fb = context()
            if isinstance(properties, str):
                try:
                    properties = json.loads(properties)
                except json.JSONDecodeError as exc:
                    raise InvalidArgument(f"properties is not JSON: {exc}") from exc
            entry = load_source_entry(path, fb, stage, properties)
            report = ValidationReport(fb.game, str(path), enforcement=dict(worker.enforcement))
            report.functions.append(
                validate_function(fb, entry, worker, n_states=n_states, seed=seed)
            )
            return report
        data = read_base_file(path)
        got = data.get("game") if isinstance(data, dict) else None
        if got is None:
            raise SchemaError(
                f"{path} names no game: a function base or extension is a JSON object with "
                f'"game" ({game!r} here) and its functions'
            )
        if got != game:
            raise SchemaError(f"{path} is for game {got!r}, not {game!r}")
        if data.get("kind", "base") == "extension":
            fb = context()
            added = fb.extend(data, origin=str(path))
            return validate_base(fb, worker, n_states, seed, names=[e.name for e in added])
        fb = FunctionBase.from_dict(data, origin=str(path))
        return validate_base(fb, worker, n_states, seed)
