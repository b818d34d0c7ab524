"""Emergencies: a new rule given as text becomes a new function, written by the small model.

The paper's Eq. 6: the student's own model writes the function for the rule's stage; it
is validated in the sandbox, and it joins the base with a manual entry ("when to call":
when that rule is in force), so the LD student can select it with no retraining.

1. :func:`relate_rule` places the rule at a stage of the base, or fails listing what the
   pipeline handles (pursuit: rules that forbid target cells, the ``constraints`` stage).
   It compares the text with the wordings of every known rule kind by the retrieval
   encoder's embeddings; a rule spec in the schema (``ld_envs.pursuit_rules``) or a
   registered kind places it directly.
2. :func:`write_rule_function` asks the writer (the embedded model with the writer adapter,
   or any backend spec) for ``samples`` completions of the writer's prompt
   (:func:`~ld_agents.ld.rule_writer.writer_prompt`), each sampled at ``temperature`` from
   its own seed. The model writes the whole body; nothing here writes code.
3. Each sample is validated (:func:`~ld_agents.ld.rule_writer.check_rule_function`):
   against the rule's semantics when a spec or kind is known, else only the checks that
   need none, and the report says which ran. A sample that fails is never added.
4. :meth:`EmergencyResult.extension` is the extension file of the first sample that
   passed: load it with ``ld_agents.make("ld", env_id, extensions=[path], rules=[...])``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ld_agents.files import assets_dir, write_json_atomic, write_text_atomic
from ld_agents.ld import rule_writer as rw
from ld_agents.ld.schema import FUNCTION_NAME_RULE, is_function_name
from ld_envs import pursuit as pu
from ld_envs import pursuit_rules
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: the writer adapter shipped in assets/ (LoRA on the writer's training rows)
WRITER_ADAPTER = ("adapters", "ld-pursuit-writer", "adapter")
#: what the embedded writer runs as by default
DEFAULT_MODEL = "hf:embedded"
#: where a completion ends: the next top-level statement
CODE_STOPS = ("\ndef ", "\nclass ", "\n#", "\nif __name__", "\nprint(", "\n```", "\n\n\n")
#: below this cosine similarity to every known rule wording, a text is not a pursuit rule
RELATED_MIN = 0.4


def default_writer_adapter() -> Path:
    """The shipped writer adapter (``assets/adapters/ld-pursuit-writer/adapter``)."""
    return assets_dir().joinpath(*WRITER_ADAPTER)


class UnrelatedRule(InvalidArgument):
    """A rule text the pipeline cannot relate to any stage of the base."""


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class RuleTarget:
    """Where a rule goes and what it means: the stage, the kind, the semantics if known."""

    stage: str
    kind: str | None
    #: the rule in the schema (None: text only, or the restricted area read from the state)
    rule: pursuit_rules.Rule | None
    #: the semantics are known (a spec, or the registered restricted-area kind)
    semantics: bool
    #: how the rule was placed ("spec", "kind", "text ~ <kind> (similarity 0.62)")
    how: str


def _reference_texts() -> list[tuple[str, str]]:
    """(kind, text) for every known kind's wordings, with example parameters."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = [(rw.AREA_KIND, rw.wording(None, s, rw.AREA_KIND)) for s in range(4)]
    for kind in pursuit_rules.KINDS:
        for s in range(4):
            out.append((kind, rw.wording(rw.random_rule(kind, rng), s)))
    return out


@cache
def _encoder() -> Any:
    from ld_agents.ld.retriever import load_encoder

    return load_encoder()


def rule_similarity(text: str) -> tuple[str, float]:
    """The known kind whose wordings are closest to ``text``, and the cosine similarity."""
    refs = _reference_texts()
    enc = _encoder()
    vecs = enc.encode([text] + [t for _, t in refs], normalize_embeddings=True)
    sims = vecs[1:] @ vecs[0]
    best = int(sims.argmax())
    return refs[best][0], float(sims[best])


def relate_rule(text: str, rule: Any = None, size: int = pu.DEFAULT_SIZE) -> RuleTarget:
    """Place a new rule at a stage (pursuit's ``constraints``), with its semantics if known.

    ``rule``: a spec in the schema of :mod:`ld_envs.pursuit_rules` (a mapping or JSON), the
    name ``"restricted_area"`` (the drawn 5x5 area read from ``state["restricted"]``), or
    ``None`` (text only: the text must resemble a rule the pipeline handles).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"the rule text must be a non-empty string, got {text!r}")
    if rule == rw.AREA_KIND:
        return RuleTarget(rw.STAGE, rw.AREA_KIND, None, True, "kind")
    if rule is not None:
        specs = pursuit_rules.parse_rules(rule)
        if len(specs) != 1:
            raise InvalidArgument(f"--rule: give one rule spec, got {len(specs)}")
        made = pursuit_rules.make_rule(specs[0], size)
        return RuleTarget(rw.STAGE, made.kind, made, True, "spec")
    kind, sim = rule_similarity(text)
    if sim < RELATED_MIN:
        kinds = "; ".join(f"{k}: {v.summary}" for k, v in pursuit_rules.KINDS.items())
        raise UnrelatedRule(
            f"cannot relate the rule {text!r} to any stage of the pursuit base (closest known "
            f"rule: {kind}, similarity {sim:.2f} < {RELATED_MIN}). This pipeline handles rules "
            f"that forbid cells to pieces (stage 'constraints'): the restricted area, and the "
            f"kinds {kinds}. Give the semantics with --rule JSON to be sure it is read right."
        )
    return RuleTarget(rw.STAGE, None, None, False, f"text ~ {kind} (similarity {sim:.2f})")


# --------------------------------------------------------------------------- sampling


def function_name(text: str) -> str:
    """A function name for a rule: ``drop_cells_<short hash of the text>``."""
    import hashlib

    return "drop_cells_" + hashlib.sha256(text.encode()).hexdigest()[:8]


def cut_completion(completion: str) -> str:
    """The body the model wrote: up to the first line that leaves the function."""
    lines = []
    for line in completion.split("\n"):
        if line.strip() and not line.startswith((" ", "\t")):
            break
        lines.append(line)
    return "\n".join(lines).rstrip() + "\n"


@dataclass
class SampleResult:
    """One written sample and its verdict."""

    index: int
    seed: int
    source: str
    ok: bool
    failure: str | None
    checks: list[str]


@dataclass
class EmergencyResult:
    """The outcome of one emergency: every sample, the first that passed, the figures."""

    text: str
    stage: str
    kind: str | None
    how: str
    semantics: bool
    name: str
    model: str
    temperature: float
    seed: int
    samples: list[SampleResult] = field(default_factory=list)
    seconds: float = 0.0
    rule: dict[str, Any] | None = None
    #: usage examples of the first function that passed: its own outputs in the sandbox
    examples: list[dict[str, Any]] = field(default_factory=list)
    #: content fingerprint of the writer's LoRA adapter (None: no adapter in the spec)
    adapter_sha256: str | None = None

    @property
    def passed(self) -> int:
        return sum(s.ok for s in self.samples)

    @property
    def first_pass(self) -> int | None:
        """1-based index of the first sample that passed (samples needed), or None."""
        return next((s.index + 1 for s in self.samples if s.ok), None)

    @property
    def checks(self) -> list[str]:
        """The checks that ran on the samples (all when the semantics are known)."""
        return max((s.checks for s in self.samples), key=len, default=[])

    def function(self) -> SampleResult | None:
        return next((s for s in self.samples if s.ok), None)

    def extension(self) -> dict[str, Any]:
        """The extension file holding the first function that passed (refuses without)."""
        sample = self.function()
        if sample is None:
            raise InvalidArgument(
                f"no sample passed validation for the rule {self.text!r}: nothing to add "
                f"(a function that fails is never added to a base)"
            )
        area = self.kind == rw.AREA_KIND
        prov = {
            "author": self.model,
            "stand_in": False,
            "note": f"written by {self.model} (sample {sample.index + 1} of "
            f"{len(self.samples)}, temperature {self.temperature}, seed {sample.seed}); "
            f"validated: {', '.join(sample.checks)}",
            "created": _dt.date.today().isoformat(),
            "model": self.model,
            "adapter_sha256": self.adapter_sha256,
        }
        entry = {
            "name": self.name,
            "stage": self.stage,
            "role": "emergency",
            "signature": f"{self.name}(state, prev) -> cell_lists",
            "rule": self.text,
            "when_to_call": f"when this rule is in force: {self.text}",
            "right_when": "restricted_area_in_force" if area else "new_rule_in_force",
            "handles_rule": self.kind or "text",
            "inputs": [
                {"name": "state", "type": "pursuit state", "description": STATE_DOC},
                {"name": "prev", "type": "cell_lists", "description": PREV_DOC},
            ],
            "output": {
                "name": "result",
                "type": "cell_lists",
                "description": "the lists without the cells the rule forbids",
            },
            "properties": [],
            "source": sample.source,
            "examples": self.examples,
            "situations": [],
            "provenance": prov,
        }
        return {
            "schema": "ld-gym/function-base",
            "schema_version": 1,
            "game": "pursuit",
            "kind": "extension",
            "provenance": prov,
            "rules": self.text,
            "functions": [entry],
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(passed=self.passed, first_pass=self.first_pass, checks=self.checks)
        return out

    def format_markdown(self) -> str:
        lines = [
            f"# Emergency: {self.text}",
            "",
            f"- stage `{self.stage}`; placed by {self.how}; semantics known: {self.semantics}",
            f"- writer `{self.model}`, {len(self.samples)} samples at temperature "
            f"{self.temperature}, seeds from {self.seed}",
            f"- passed {self.passed} of {len(self.samples)}; first pass at sample "
            f"{self.first_pass or '-'}",
            f"- checks run: {', '.join(self.checks) or 'none'}",
            f"- {self.seconds:.1f} s",
            "",
            "| sample | seed | verdict |",
            "| --- | --- | --- |",
        ]
        for s in self.samples:
            lines.append(f"| {s.index + 1} | {s.seed} | {'pass' if s.ok else s.failure} |")
        best = self.function()
        if best is not None:
            lines += ["", "First function that passed:", "", "```python", best.source, "```"]
        return "\n".join(lines) + "\n"


STATE_DOC = (
    "{'size': int, 'pursuers': [[x, y]] * 3 (A, B, C), 'evader': [x, y], 'restricted': "
    "[x0, y0, x1, y1] or null, 'rule': the new rule's text or null}"
)
PREV_DOC = "per pursuer A, B, C, a list of [x, y] candidate cells"


def check_function_name(name: str) -> str:
    """``name`` when it can name the written function (the function-base schema's rule)."""
    if not is_function_name(name):
        raise InvalidArgument(
            f"function name must be {FUNCTION_NAME_RULE}, such as 'drop_band_cells', got {name!r}"
        )
    return name


def writer_backend_spec(model: str = DEFAULT_MODEL, adapter: str | Path | None = "default") -> str:
    """The backend spec of the writer: ``model`` with the writer adapter (``None``: none)."""
    if adapter is None or not model.startswith("hf:"):
        return model
    path = default_writer_adapter() if adapter == "default" else Path(adapter)
    if not path.is_dir():
        raise InvalidArgument(
            f"no writer adapter at {path}; train one with `ld-gym train-writer --ship DIR` or "
            f"pass --adapter none to use the base model"
        )
    sep = "&" if "?" in model else "?"
    # float32 unless the spec asks for another dtype (the writer was validated in float32)
    dtype = "" if "dtype=" in model.partition("?")[2] else "&dtype=float32"
    return f"{model}{sep}adapter={path}{dtype}"


def _spec_adapter_sha256(spec: str) -> str | None:
    """The fingerprint of the adapter a backend spec names (``...?adapter=DIR``), if any."""
    from ld_agents.llm.base import parse_spec
    from ld_agents.lora import adapter_sha256

    found = parse_spec(spec)[2].get("adapter")
    return adapter_sha256(found) if found and Path(found).is_dir() else None


def write_rule_function(
    text: str,
    rule: Any = None,
    backend: Any = None,
    model: str = DEFAULT_MODEL,
    adapter: str | Path | None = "default",
    samples: int = 8,
    temperature: float = 0.8,
    seed: int = 0,
    name: str | None = None,
    boards: int = 60,
    max_new_tokens: int = 160,
    worker: Any = None,
) -> EmergencyResult:
    """Have the writer write ``samples`` functions for a new rule and validate each.

    ``backend``: an ``ld_agents.llm`` backend (default: built from ``model`` and the writer
    ``adapter``). Samples use seeds ``seed``, ``seed + 1``, ...
    """
    from ld_agents.base import check_count, check_seed
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_agents.llm.base import GenerationRequest, check_spec, get_backend

    check_count("samples", samples)
    check_count("boards", boards)
    check_count("max_new_tokens", max_new_tokens)
    if not isinstance(temperature, (int, float)) or not 0 <= temperature < float("inf"):
        raise InvalidArgument(f"temperature must be a number >= 0, got {temperature!r}")
    check_seed(seed)
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"the rule text must be a non-empty string, got {text!r}")
    name = name or function_name(text)
    check_function_name(name)
    spec = writer_backend_spec(model, adapter) if backend is None else getattr(backend, "spec", "")
    if backend is None:
        check_spec(spec)
    target = relate_rule(text, rule)  # may load the retrieval encoder: after the cheap checks
    result = EmergencyResult(
        text=" ".join(text.split()),
        stage=target.stage,
        kind=target.kind,
        how=target.how,
        semantics=target.semantics,
        name=name,
        model=str(spec or model),
        temperature=temperature,
        seed=seed,
        rule=None if target.rule is None else target.rule.to_dict(),
        adapter_sha256=_spec_adapter_sha256(str(spec or model)),
    )
    t0 = time.perf_counter()
    llm = get_backend(backend if backend is not None else spec)
    prompt = rw.writer_prompt(text, name)
    requests = [
        GenerationRequest(prompt, CODE_STOPS, max_new_tokens, temperature, seed + i)
        for i in range(samples)
    ]
    completions = llm.generate_until(requests)
    own = worker is None
    worker = worker or SandboxWorker().start()
    try:
        for i, completion in enumerate(completions):
            source = f"def {name}(state, prev):\n" + cut_completion(completion)
            check = rw.check_rule_function(
                source,
                name,
                worker,
                rule=target.rule,
                semantics=target.semantics,
                n_boards=boards,
                seed=seed,
                area=target.kind == rw.AREA_KIND,
            )
            result.samples.append(
                SampleResult(i, seed + i, source, check.ok, check.failure, check.checks)
            )
        best = result.function()
        if best is not None:
            result.examples = usage_examples(best.source, name, worker, target, seed)
    finally:
        if own:
            worker.close()
    result.seconds = time.perf_counter() - t0
    logger.info(
        "emergency %r: %d of %d samples passed (%s)", text, result.passed, samples, target.how
    )
    return result


def usage_examples(
    source: str, name: str, worker: Any, target: RuleTarget, seed: int, n: int = 2
) -> list[dict[str, Any]]:
    """The manual's usage examples: the function's own outputs in the sandbox on boards
    where it removes cells (the rule in force) and where it returns its input."""
    key = f"writer/{name}/examples"
    if not worker.load(key, source, name).ok:  # pragma: no cover - validated just before
        return []
    hot, cold = [], []
    try:
        for state, prev in rw.sample_boards(40, seed + 1, area=target.kind == rw.AREA_KIND):
            res = worker.call(key, [state, prev])
            if not res.ok:
                continue
            changed = res.value != prev
            pile = hot if changed else cold
            if len(pile) < n:
                note = "the rule removes cells" if changed else "nothing to remove"
                pile.append({"state": state, "prev": prev, "expected": res.value, "note": note})
            if len(hot) >= n and len(cold) >= 1:
                break
    finally:
        worker.unload(key)
    return hot + cold[:1]


def save_result(
    result: EmergencyResult,
    out: str | Path,
    report_dir: str | Path,
    stem: str,
    overwrite: bool = False,
) -> tuple[Path | None, Path, Path]:
    """Write the extension (when a sample passed) and the report (JSON + Markdown).

    Refuses to replace existing files unless ``overwrite``."""
    out, report = Path(out), Path(report_dir)
    paths = [report / f"{stem}.json", report / f"{stem}.md"]
    if result.function() is not None:
        paths.insert(0, out)
    if not overwrite:
        taken = [str(p) for p in paths if p.exists()]
        if taken:
            raise InvalidArgument(
                f"{', '.join(taken)} exist(s); pass --overwrite to replace, or choose --out / "
                f"--report-dir / --name"
            )
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    extension = None
    if result.function() is not None:
        write_json_atomic(out, result.extension())
        extension = out
    write_json_atomic(paths[-2], result.to_dict())
    write_text_atomic(paths[-1], result.format_markdown())
    return extension, paths[-2], paths[-1]


def read_rule_arg(value: str | None) -> Any:
    """``--rule``: a JSON spec, the name of a kind, or a path to a JSON file."""
    if value is None:
        return None
    if value == rw.AREA_KIND:
        return value
    path = Path(value)
    if value.endswith(".json"):
        if not path.is_file():
            raise InvalidArgument(f"--rule: no JSON file at {value}")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidArgument(f"--rule: {value} is not a JSON rule spec: {exc}") from None
    return pursuit_rules.parse_rules(value)[0] if value.strip().startswith("{") else value


__all__: Sequence[str] = (
    "EmergencyResult",
    "RuleTarget",
    "SampleResult",
    "UnrelatedRule",
    "cut_completion",
    "default_writer_adapter",
    "relate_rule",
    "rule_similarity",
    "save_result",
    "write_rule_function",
    "writer_backend_spec",
)
