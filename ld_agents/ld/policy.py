"""The LD student (``ld``): select one function per stage by scoring, run it, go on.

At every stage of a decision the policy shows the small model a short prompt (the game in
one line, the stage, its candidates as labelled choices with their manual's "when to call"
line, then the state) and reads the next-token log-probabilities of the labels ``" A"``,
``" B"``, ... in ONE forward pass (``Backend.choice_logprobs``: exact ranking, never free
generation). The best label's function runs in the sandbox worker on the state and the
previous stage's output; the last stage's output is the action. A function that raises,
hangs or returns a wrong type makes that stage's choice illegal: pursuit plays
``NO_CHOICE`` (the env counts the violations), 21 points stands; it is counted and the
episode goes on.

Prompt layout (the part above ``State:`` is static per stage, so its key-value states are
pinned once with ``Backend.cache_prefix`` and each decision runs only the state's tokens)::

    Pursuit game: three pursuers A, B, C chase one evader on a 21x21 board. ...
    Stage 4 of 4, select: choose one target cell per pursuer from its remaining cells.
    Functions:
    A: approach_evader - when the evader is still far: some pursuer is more than 6 ...
    B: encircle_evader - when the evader is near: every pursuer is within 6 cells ...
    ...
    State: pursuers A (3, 8), B (14, 19), C (17, 2); evader (20, 18); distance to the
    evader A 27, B 5, C 19; extra rule in force: none.
    Answer:

The state line is built by trusted project code and includes the Manhattan distances
(pursuit) and the opponent's visible total (21 points): facts of the state, not the answer.

With more candidates than ``retrieval_threshold`` at a stage, the MiniLM retriever's
top-``top_k`` (query: stage + state text) are shown instead of the whole stage.

``make("ld", env_id)`` uses the shipped adapter ``assets/adapters/ld-<game>/`` when it is
there (``adapter=None`` or ``adapter="none"``: the base model);
``PursuitRestricted-v0`` loads the pursuit base with the emergency extension for the
restricted area (the shipped stand-in unless ``emergency=PATH`` names a generated one), with
no retraining.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.base import game_of, register
from ld_agents.files import assets_dir
from ld_agents.ld.base import (
    FunctionBase,
    FunctionEntry,
    SelectionExample,
    read_base_file,
    shipped_base,
)
from ld_agents.ld.chain import FunctionChainPolicy
from ld_agents.ld.sandbox import SandboxWorker
from ld_agents.llm.base import Backend, get_backend
from ld_envs import pursuit as pu
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

LABELS = "ABCDEFGHIJKLMNOP"
ANSWER_CUE = "Answer:"

HEADERS = {
    "pursuit": "Pursuit on a {size}x{size} board: pursuers A, B, C chase the evader.",
    "twentyone": "21 points: beat the opponent's total without going over 21.",
}


# --------------------------------------------------------------------------- prompts


def _cell(c: Sequence[int]) -> str:
    return f"({c[0]}, {c[1]})"


def extra_rule_text(state: dict[str, Any]) -> str:
    """The extra rule in force on a pursuit board, in words (``none`` without one)."""
    area = state.get("restricted")
    if area is None:
        return "none"
    x0, y0, x1, y1 = area
    return f"no piece may enter the restricted area x {x0}..{x1}, y {y0}..{y1}"


def state_text(game: str, state: dict[str, Any], extra_rule: str | None = None) -> str:
    """One line describing a function-base state (what the student reads)."""
    if game == "pursuit":
        ev = state["evader"]
        names = "ABC"
        ps = ", ".join(f"{n} {_cell(p)}" for n, p in zip(names, state["pursuers"], strict=True))
        dist = ", ".join(
            f"{n} {abs(p[0] - ev[0]) + abs(p[1] - ev[1])}"
            for n, p in zip(names, state["pursuers"], strict=True)
        )
        far = max(abs(p[0] - ev[0]) + abs(p[1] - ev[1]) for p in state["pursuers"])
        rule = extra_rule if extra_rule is not None else extra_rule_text(state)
        return (
            f"pursuers {ps}; evader {_cell(ev)}; distance to the evader {dist}; "
            f"farthest pursuer {far} cells away; extra rule in force: {rule}."
        )
    from ld_agents.ld.games import best_total

    mine = ", ".join(state["my_cards"]) or "none"
    opp = ", ".join(state["opponent_cards"]) or "none"
    stood = "yes" if state["opponent_stood"] else "no"
    shown = best_total(state["opponent_cards"])
    return (
        f"my cards {mine}; opponent shows {opp} (visible total {shown}), "
        f"{state['opponent_hidden']} face down; opponent has stood: {stood}."
    )


def candidate_line(label: str, entry: FunctionEntry) -> str:
    return f"{label}: {entry.name} - {entry.when_to_call}"


def static_prompt(
    base: FunctionBase, stage: str, candidates: Sequence[FunctionEntry], size: int = pu.DEFAULT_SIZE
) -> str:
    """The state-independent start of a stage's prompt (ends with a newline)."""
    if len(candidates) > len(LABELS):
        raise InvalidArgument(f"at most {len(LABELS)} candidates per stage, got {len(candidates)}")
    names = base.stage_names
    spec = base.stage(stage)
    lines = [
        HEADERS.get(base.game, "Pick the function for this stage.").format(size=size),
        f"Stage {names.index(stage) + 1} of {len(names)}, {stage}: {spec.description}.",
        "Functions:",
        *(candidate_line(LABELS[i], c) for i, c in enumerate(candidates)),
    ]
    return "\n".join(lines) + "\n"


def dynamic_prompt(game: str, state: dict[str, Any], extra_rule: str | None = None) -> str:
    """The state part of a stage's prompt; the answer (a label) follows ``Answer:``."""
    return f"State: {state_text(game, state, extra_rule)}\n{ANSWER_CUE}"


def label_choices(n: int) -> list[str]:
    """The scored continuations: ``" A"``, ``" B"``, ... (one token each)."""
    return [" " + LABELS[i] for i in range(n)]


# --------------------------------------------------------------------------- training data


def selection_rows(
    base: FunctionBase,
    examples: Sequence[SelectionExample],
    shuffle_seed: int | None = 0,
    size_of: Any = None,
) -> list[dict[str, str]]:
    """(prompt, answer) rows for LoRA from labelled stages.

    ``shuffle_seed``: present the candidates in a random order per row (so the student
    reads the descriptions instead of learning a letter per stage); ``None`` keeps the
    base order (the order the policy uses).
    """
    rng = random.Random(shuffle_seed)
    rows = []
    for ex in examples:
        cands = [base.function(n) for n in ex.candidates]
        if shuffle_seed is not None:
            rng.shuffle(cands)
        size = int(ex.state.get("size", pu.DEFAULT_SIZE)) if base.game == "pursuit" else 21
        prompt = static_prompt(base, ex.stage, cands, size) + dynamic_prompt(base.game, ex.state)
        label = LABELS[[c.name for c in cands].index(ex.answer)]
        rows.append({"prompt": prompt, "answer": " " + label})
    return rows


def rule_matching_rows(
    base: FunctionBase,
    states: Sequence[dict[str, Any]],
    stage: str = "constraints",
    seed: int = 0,
) -> list[dict[str, str]]:
    """Manual-derived rows for the emergency stage: with an extra rule in force (the text of
    a function's ``rule``), the function whose manual handles it is the answer; with none,
    the function for "no extra rule". Teaches "match the rule in force to the manual", so a
    function added later for a new rule (the restricted area) is picked with no retraining.
    Only pursuit has such a stage in the shipped base."""
    if base.game != "pursuit" or stage not in base.stage_names:
        return []
    rng = random.Random(seed)
    funcs = base.stage_candidates(stage)
    others = [f for f in funcs if f.right_when not in ("always", "no_extra_rule")]
    rows = []
    for state in states:
        if state.get("restricted") is not None or not others:
            continue
        target = rng.choice(others)
        cands = list(funcs)
        rng.shuffle(cands)
        rows.append(_rule_row(base, stage, cands, state, target.rule, target))
    return rows


def _rule_row(
    base: FunctionBase,
    stage: str,
    cands: Sequence[Any],
    state: dict[str, Any],
    rule: str,
    target: Any,
) -> dict[str, str]:
    """One rule-matching row: the stage's prompt with ``rule`` in force -> ``target``'s label."""
    size = int(state.get("size", pu.DEFAULT_SIZE))
    prompt = static_prompt(base, stage, cands, size) + dynamic_prompt(
        base.game, state, extra_rule=rule
    )
    return {"prompt": prompt, "answer": " " + LABELS[list(cands).index(target)]}


@dataclass(frozen=True)
class _SyntheticEntry:
    """A manual line of an invented constraints function (training rows only)."""

    name: str
    when_to_call: str
    rule: str


def _synthetic_rules(rng: random.Random, size: int) -> list[_SyntheticEntry]:
    """Invented extra rules of several families, each with the function that would handle
    it. None mentions a restricted area, so the emergency function stays unseen."""
    r, c, k = rng.randrange(size), rng.randrange(size), rng.randint(2, 5)
    half = size // 2
    return [
        _SyntheticEntry(f"avoid_row_{r}", f"when a rule forbids the cells of row y = {r}",
                        f"no piece may stand on row y = {r}"),
        _SyntheticEntry(f"avoid_column_{c}", f"when a rule forbids the cells of column x = {c}",
                        f"no piece may stand on column x = {c}"),
        _SyntheticEntry("drop_even_cells", "when cells with both coordinates even are banned",
                        "no piece may stand on a cell whose x and y are both even"),
        _SyntheticEntry("drop_corner_cells", "when the four corner cells are banned",
                        "the corner cells of the board are closed"),
        _SyntheticEntry("keep_left_half", f"when pieces must stay where x <= {half}",
                        f"every piece must stay in the left half of the board (x <= {half})"),
        _SyntheticEntry("keep_lower_half", f"when pieces must stay where y <= {half}",
                        f"every piece must stay in the lower half of the board (y <= {half})"),
        _SyntheticEntry(f"limit_steps_to_{k - 1}", f"when a move may cover at most {k - 1} cells",
                        f"pursuers may move at most {k - 1} cells per step"),
        _SyntheticEntry("drop_diagonal_cells", "when cells on the main diagonal (x = y) are banned",
                        "no piece may stand on a cell with x = y"),
    ]  # fmt: skip


def synthetic_rule_rows(
    base: FunctionBase,
    states: Sequence[dict[str, Any]],
    stage: str = "constraints",
    seed: int = 0,
) -> list[dict[str, str]]:
    """Rule-matching rows with invented rules: the stage's functions plus one or two
    invented functions (shuffled); the rule in force is an invented one (answer: its
    function), a base distractor's (answer: that function) or none (answer: the function
    for no extra rule, though an invented one is listed). Teaches matching a rule in force
    to the manual line that names it, for functions the student has never seen."""
    if base.game != "pursuit" or stage not in base.stage_names:
        return []
    rng = random.Random(seed)
    funcs = list(base.stage_candidates(stage))
    none_fn = [f for f in funcs if f.right_when == "no_extra_rule"]
    others = [f for f in funcs if f.right_when not in ("always", "no_extra_rule")]
    rows = []
    for i, state in enumerate(states):
        if state.get("restricted") is not None:
            continue
        size = int(state.get("size", pu.DEFAULT_SIZE))
        invented = rng.sample(_synthetic_rules(rng, size), 2)
        shown: list[Any] = funcs + invented[: 1 + (i % 2)]
        kind = i % 4
        if kind in (0, 1):
            target, rule = invented[0], invented[0].rule
        elif kind == 2 and others:
            target = rng.choice(others)
            rule = target.rule
        elif none_fn:
            target, rule = none_fn[0], "none"
        else:
            continue
        rng.shuffle(shown)
        rows.append(_rule_row(base, stage, shown, state, rule, target))
    return rows


# --------------------------------------------------------------------------- policy


@dataclass
class StageDecision:
    """One stage of one decision: what was shown, the scores, the choice, the outcome."""

    stage: str
    candidates: list[str]
    scores: list[float]
    chosen: str
    ok: bool
    error: str | None = None

    def probs(self) -> list[float]:
        m = max(self.scores)
        e = [math.exp(s - m) for s in self.scores]
        z = sum(e)
        return [v / z for v in e]

    def entropy(self) -> float:
        return -sum(p * math.log(p) for p in self.probs() if p > 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "candidates": self.candidates,
            "scores": [round(s, 4) for s in self.scores],
            "chosen": self.chosen,
            "ok": self.ok,
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class LDConfig:
    """Options of the LD student policy."""

    model: str = "embedded"
    """Model target for the ``hf`` backend (``embedded`` or a folder)."""
    adapter: str | None = "default"
    """LoRA adapter folder; ``"default"``: the shipped one for the game; ``None``: none."""
    dtype: str = "bfloat16"
    """Scoring dtype (bfloat16 about 3x faster on this CPU; same top choice in our checks)."""
    retrieval_threshold: int = 8
    """Stages with more candidates than this show the retriever's top_k."""
    top_k: int = 5
    """Candidates shown when retrieving."""
    adapter_sha256: str | None = None
    """Pin: refuse an adapter whose content fingerprint (``lora.adapter_sha256``) differs."""
    keep_log: int = 2000
    """Stage decisions kept in ``decision_log`` (the oldest are dropped)."""
    extra: dict[str, Any] = field(default_factory=dict)


def default_adapter(game: str) -> Path:
    """The shipped LD adapter of ``game`` (``assets/adapters/ld-<game>/adapter``)."""
    return assets_dir() / "adapters" / f"ld-{game}" / "adapter"


def ld_backend_spec(game: str, config: LDConfig) -> str:
    """The ``hf`` model spec of the student (base model + adapter when one is used)."""
    adapter = config.adapter
    if adapter == "default":
        path = default_adapter(game)
        if (path / "adapter_config.json").is_file():
            adapter = str(path)
        else:
            logger.warning("no shipped LD adapter at %s: the base model selects", path)
            adapter = None
    if adapter in (None, "", "none"):
        if config.adapter_sha256 is not None:
            raise InvalidArgument(
                f"adapter_sha256={config.adapter_sha256} pins an adapter, but none is loaded"
            )
        return f"hf:{config.model}?dtype={config.dtype}"
    from ld_agents.llm.hf import _resolve_target
    from ld_agents.lora import check_adapter, check_adapter_pin

    check_adapter(adapter, _resolve_target(config.model))
    check_adapter_pin(adapter, config.adapter_sha256)
    return f"hf:{config.model}?adapter={adapter}&dtype={config.dtype}"


class LDPolicy(FunctionChainPolicy):
    """The LD student: per stage, score the candidates' labels, run the best function."""

    def __init__(
        self,
        base: FunctionBase,
        backend: str | Backend,
        config: LDConfig | None = None,
        worker: SandboxWorker | None = None,
        size: int = pu.DEFAULT_SIZE,
        seed: int | None = None,
    ) -> None:
        super().__init__(base, chooser=self._choose_one, worker=worker, size=size, seed=seed)
        self.config = config or LDConfig()
        self.backend = get_backend(backend)
        self.retriever: Any = None
        if any(
            len(base.stage_candidates(s)) > self.config.retrieval_threshold
            for s in base.stage_names
        ):
            from ld_agents.ld.retriever import Retriever

            self.retriever = Retriever(
                base.retriever_entries(), threshold=self.config.retrieval_threshold
            )
        self._static: dict[str, str] = {}
        for stage in base.stage_names:
            cands = base.stage_candidates(stage)
            if len(cands) <= self.config.retrieval_threshold:
                self._static[stage] = static_prompt(base, stage, cands, size)
                self.backend.cache_prefix(self._static[stage])
        #: per stage decision records (bounded by config.keep_log)
        self.decision_log: list[StageDecision] = []
        self.last_decisions: list[list[StageDecision]] = []
        self._counts: Counter[str] = Counter()
        self._stats: Counter[str] = Counter()
        self.decisions = 0
        self.seconds = 0.0

    # ------------------------------------------------------------- selection
    def stage_candidates(self, stage: str, state: dict[str, Any]) -> list[FunctionEntry]:
        """The candidates shown at ``stage``: all, or the retriever's top-K."""
        cands = self.base.stage_candidates(stage)
        if self.retriever is None or len(cands) <= self.config.retrieval_threshold:
            return cands
        query = (
            f"{stage}: {self.base.stage(stage).description}. {state_text(self.base.game, state)}"
        )
        names = self.retriever.candidates(query, [c.name for c in cands], self.config.top_k)
        return [self.base.function(n) for n in names]

    def prompt(self, stage: str, cands: Sequence[FunctionEntry], state: dict[str, Any]) -> str:
        static = self._static.get(stage)
        if static is None or len(cands) != len(self.base.stage_candidates(stage)):
            static = static_prompt(self.base, stage, cands, self.size)
        return static + dynamic_prompt(self.base.game, state)

    def score(self, stage: str, state: dict[str, Any]) -> tuple[list[FunctionEntry], list[float]]:
        """Candidates and their label log-probabilities (one forward of the prompt)."""
        cands = self.stage_candidates(stage, state)
        ctx = self.prompt(stage, cands, state)
        return cands, self.backend.choice_logprobs(ctx, label_choices(len(cands)))

    def _score_batch(
        self, stage: str, states: Sequence[dict[str, Any]]
    ) -> tuple[list[list[FunctionEntry]], list[list[float]]]:
        """:meth:`score` for many episodes' states at one stage, batched in the backend
        (contexts with the same number of candidates go together)."""
        shown = [self.stage_candidates(stage, st) for st in states]
        scored: list[list[float]] = [[] for _ in states]
        by_k: dict[int, list[int]] = {}
        for j, cands in enumerate(shown):
            by_k.setdefault(len(cands), []).append(j)
        for k, members in by_k.items():
            ctxs = [self.prompt(stage, shown[j], states[j]) for j in members]
            batch = self.backend.choice_logprobs_batch(ctxs, label_choices(k))
            for j, sc in zip(members, batch, strict=True):
                scored[j] = sc
        return shown, scored

    def _choose_one(self, stage: Any, cands: Any, state: dict[str, Any], prev: Any) -> str:
        shown, scores = self.score(stage.name, state)
        return shown[max(range(len(scores)), key=scores.__getitem__)].name

    # ------------------------------------------------------------- acting
    def act(self, obs: Any) -> Any:
        return self.act_batch([obs])[0]

    def act_batch(self, observations: Sequence[Any]) -> list[Any]:
        """Decide for several episodes' observations, stage by stage."""
        t0 = time.perf_counter()
        states = [self.state(o) for o in observations]
        prevs: list[Any] = [None] * len(states)
        alive = [True] * len(states)
        logs: list[list[StageDecision]] = [[] for _ in states]
        for stage in self.base.stage_names:
            live = [i for i in range(len(states)) if alive[i]]
            shown, scored = self._score_batch(stage, [states[i] for i in live])
            for i, cands, scores in zip(live, shown, scored, strict=True):
                state = states[i]
                best = max(range(len(scores)), key=scores.__getitem__)
                name = cands[best].name
                res = self.base.run_stage(self.worker, name, state, prevs[i])
                rec = StageDecision(
                    stage,
                    [c.name for c in cands],
                    list(scores),
                    name,
                    res.ok,
                    None if res.ok else f"{res.kind}: {res.message}"[:300],
                )
                logs[i].append(rec)
                self._record(rec)
                if res.ok:
                    prevs[i] = res.value
                else:
                    alive[i] = False
                    self._stats["illegal_stages"] += 1
                    logger.info("stage %s: %s failed (%s); illegal choice", stage, name, res.kind)
        actions = []
        for i, state in enumerate(states):
            decision = prevs[i] if alive[i] else None
            if not alive[i]:
                self.failures += 1
            action = self.base.decision_to_action(decision, state)
            if action is None:
                action = self.base.spec.fallback_action(state)
            actions.append(action)
        self.decisions += len(states)
        self.last_decisions = logs
        self.seconds += time.perf_counter() - t0
        return actions

    def _record(self, rec: StageDecision) -> None:
        self.decision_log.append(rec)
        if len(self.decision_log) > self.config.keep_log:
            del self.decision_log[: len(self.decision_log) - self.config.keep_log]
        self._counts[f"{rec.stage}/{rec.chosen}"] += 1
        self._stats["stage_decisions"] += 1
        self._stats["sum_selection_entropy"] += rec.entropy()  # type: ignore[assignment]
        self._stats["sum_top_prob"] += max(rec.probs())  # type: ignore[assignment]

    # ------------------------------------------------------------- reporting
    def episode_summary(self) -> dict[str, float]:
        """Cumulative counters (the sweep records each episode's change): decisions, stage
        decisions, illegal stages, summed selection entropy and top probability, and
        ``chosen/<stage>/<function>`` counts."""
        out: dict[str, float] = {
            "decisions": float(self.decisions),
            "stage_decisions": float(self._stats["stage_decisions"]),
            "illegal_stages": float(self._stats["illegal_stages"]),
            "sum_selection_entropy": float(self._stats["sum_selection_entropy"]),
            "sum_top_prob": float(self._stats["sum_top_prob"]),
        }
        for k, v in sorted(self._counts.items()):
            out[f"chosen/{k}"] = float(v)
        return out

    def cost_counters(self) -> dict[str, float]:
        return {
            "decisions": self.decisions,
            "policy_seconds": self.seconds,
            **self.backend.stats.snapshot(),
        }


# --------------------------------------------------------------------------- factory


def ld_base(env_id: str, emergency: bool | str | Path = True) -> FunctionBase:
    """The base the student plays ``env_id`` with: the game's shipped base, plus for
    ``PursuitRestricted-v0`` the restricted-area emergency function (the shipped stand-in
    when ``emergency`` is true, the extension file when it is a path)."""
    game = game_of(env_id)
    if env_id != "PursuitRestricted-v0" or emergency is False:
        return shipped_base(game)
    if emergency is True:
        return shipped_base(game, ["restricted_area"])
    base = shipped_base(game)
    base.extend(read_base_file(emergency), origin=str(emergency))
    return base


def _make_ld(
    env_id: str,
    adapter: str | None = "default",
    model: str | Backend = "embedded",
    dtype: str = "bfloat16",
    emergency: bool | str | Path = True,
    base: FunctionBase | None = None,
    size: int = pu.DEFAULT_SIZE,
    seed: int | None = None,
    retrieval_threshold: int = 8,
    top_k: int = 5,
    side: str = "pursuers",
    adapter_sha256: str | None = None,
    **_: Any,
) -> LDPolicy:
    if side != "pursuers":
        raise InvalidArgument("the LD student plays the pursuers; use 'raw' for an LLM evader")
    game = game_of(env_id)
    fb = base if base is not None else ld_base(env_id, emergency)
    if isinstance(model, Backend):
        config = LDConfig(
            adapter=adapter,
            dtype=dtype,
            retrieval_threshold=retrieval_threshold,
            top_k=top_k,
            adapter_sha256=adapter_sha256,
        )
        backend: str | Backend = model
    else:
        target = str(model).removeprefix("hf:")
        config = LDConfig(
            model=target,
            adapter=adapter,
            dtype=dtype,
            retrieval_threshold=retrieval_threshold,
            top_k=top_k,
            adapter_sha256=adapter_sha256,
        )
        backend = ld_backend_spec(game, config)
    return LDPolicy(fb, backend, config, size=size, seed=seed)


register("ld", "pursuit")(_make_ld)
register("ld", "twentyone")(_make_ld)

__all__ = [
    "LDConfig",
    "LDPolicy",
    "StageDecision",
    "dynamic_prompt",
    "label_choices",
    "ld_backend_spec",
    "ld_base",
    "rule_matching_rows",
    "selection_rows",
    "state_text",
    "static_prompt",
]
