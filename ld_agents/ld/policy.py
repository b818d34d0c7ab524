"""The LD student (``ld``): select one function per stage by scoring, run it, go on.

At every stage of a decision the policy reads the next-token log-probabilities of the
labels ``" A"``, ``" B"``, ... after that stage's cue (exact ranking, never free
generation). The prompt (:mod:`ld_agents.ld.prompts`) lists every stage's candidates with
their manual's "when to call" line once, then the state, then the stage's few-token cue:
the listing is pinned once with ``Backend.cache_prefix``, and a step reads the state once
(``Backend.choice_logprobs_batch`` with a token-tree backend runs the state and the four
cues of every episode of a batch in one forward). The best label's function runs in the
sandbox worker on the state and the previous stage's output; the last stage's output is
the action. A function that raises, hangs or returns a wrong type makes that stage's
choice illegal: pursuit plays ``NO_CHOICE`` (the env counts the violations), 21 points
stands; it is counted and the episode goes on.

With more candidates than ``retrieval_threshold`` at a stage, the MiniLM retriever's
top-``top_k`` (query: stage + state text) are listed in its cue instead of the whole stage.

``make("ld", env_id)`` uses the shipped adapter ``assets/adapters/ld-<game>/`` when it is
there (``adapter=None`` or ``adapter="none"``: the base model);
``PursuitRestricted-v0`` loads the pursuit base with the emergency extension for the
restricted area (the shipped stand-in unless ``emergency=PATH`` names a generated one), with
no retraining.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.base import check_count, game_of, register
from ld_agents.baselines.pursuit import check_board_size
from ld_agents.files import assets_dir
from ld_agents.ld.base import FunctionBase, read_base_file, shipped_base
from ld_agents.ld.chain import FunctionChainPolicy, rule_text_of

# the prompt builders are importable from here too (ld_agents.ld.policy.static_prompt ...)
from ld_agents.ld.prompts import (
    ANSWER_CUE,
    HEADERS,
    LABELS,
    candidate_line,
    dynamic_prompt,
    extra_rule_text,
    label_choices,
    per_stage_context,
    stage_cue,
    state_text,
    static_parts,
    static_prompt,
)
from ld_agents.ld.sandbox import SandboxWorker
from ld_agents.ld.schema import FunctionEntry
from ld_agents.llm.base import Backend, get_backend
from ld_envs import pursuit as pu
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)


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
    layout: str | None = None
    """Prompt layout (``prompts.LAYOUTS``); ``None``: the one the adapter was trained on
    (its run record), ``one_state`` without an adapter."""
    cue_stages: tuple[str, ...] | None = None
    """``one_state`` stages listed in their cue after the state; ``None``: the adapter's
    (its run record's ``cue_stages``; none without one)."""
    score_cache: int = 65536
    """Distinct prompts whose label scores are kept: a prompt met again (the same stage,
    state line and candidates) is answered from here, as label scoring is deterministic;
    0 keeps none."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.score_cache < 0:
            raise InvalidArgument(
                f"score_cache must be >= 0 (prompts kept), got {self.score_cache}"
            )


def _adapter_extra(adapter: str | Path | None) -> dict[str, Any] | None:
    """The ``train_config.extra`` of an adapter's run record (None: no adapter or record)."""
    if adapter is None:
        return None
    import json

    from ld_agents.lora import RUN_FILE

    record = Path(adapter) / RUN_FILE
    if not record.is_file():
        return None
    return dict(json.loads(record.read_text()).get("train_config", {}).get("extra", {}))


def adapter_prompt(adapter: str | Path | None) -> tuple[str, tuple[str, ...]]:
    """The prompt layout an adapter was trained on and the stages it reads listed in their
    cue, from one read of its run record (``train_config.extra.layout``, records from
    before the field: ``per_stage``; ``train_config.extra.cue_stages``, ``one_state``
    only); no adapter: ``one_state`` with none."""
    extra = _adapter_extra(adapter)
    if extra is None:
        return "one_state", ()
    layout = str(extra.get("layout", "per_stage"))
    return layout, tuple(extra.get("cue_stages", ())) if layout == "one_state" else ()


def adapter_layout(adapter: str | Path | None) -> str:
    """The prompt layout an adapter was trained on (:func:`adapter_prompt`)."""
    return adapter_prompt(adapter)[0]


def adapter_cue_stages(adapter: str | Path | None) -> tuple[str, ...]:
    """The stages an adapter was trained to read listed in their cue (:func:`adapter_prompt`)."""
    return adapter_prompt(adapter)[1]


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
        rule_text: str | None = None,
    ) -> None:
        super().__init__(
            base,
            chooser=self._choose_one,
            worker=worker,
            size=size,
            seed=seed,
            rule_text=rule_text,
        )
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
        trained_layout, trained_cue = adapter_prompt(getattr(self.backend, "adapter", None))
        #: the prompt layout (the adapter's own unless the config names one)
        self.layout = self.config.layout or trained_layout
        cue = trained_cue if self.config.cue_stages is None else self.config.cue_stages
        #: stages listed in their cue: the one_state stages the adapter (or the config)
        #: names, and the stages whose candidates the retriever narrows per state
        self.cue_stages = set(cue) & set(base.stage_names) if self.layout == "one_state" else set()
        self.cue_stages |= {
            st
            for st in base.stage_names
            if self.retriever is not None
            and len(base.stage_candidates(st)) > self.config.retrieval_threshold
        }
        parts = static_parts(self.layout, base, size, self.cue_stages)
        for part in parts:
            self.backend.cache_prefix(part)
        #: the one_state layout's listing of every stage (what its contexts start with)
        self._static = parts[0]
        #: per stage decision records (bounded by config.keep_log)
        self.decision_log: list[StageDecision] = []
        self.last_decisions: list[list[StageDecision]] = []
        self._counts: Counter[str] = Counter()
        self._stats: Counter[str] = Counter()
        self.decisions = 0
        self.seconds = 0.0
        #: label scores by prompt, least recently used first (``config.score_cache``)
        self._scores: OrderedDict[str, list[float]] = OrderedDict()

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
        """The context scored at ``stage``: the pinned static part (every stage's
        candidates), the state, the stage's cue (listing ``cands`` on a cue-listed stage)."""
        if self.layout == "per_stage":
            return per_stage_context(self.base, stage, state, self.size, cands)
        shown = cands if stage in self.cue_stages else None
        return (
            self._static
            + dynamic_prompt(self.base.game, state)
            + stage_cue(self.base, stage, shown)
        )

    def score(self, stage: str, state: dict[str, Any]) -> tuple[list[FunctionEntry], list[float]]:
        """Candidates and their label log-probabilities at one stage."""
        (shown,), (scores,) = self.score_batch([(stage, state)])
        return shown, scores

    def score_batch(
        self, items: Sequence[tuple[str, dict[str, Any]]]
    ) -> tuple[list[list[FunctionEntry]], list[list[float]]]:
        """:meth:`score` for many (stage, state) pairs in one backend call: the contexts
        share the pinned static part, and one state's stages share the state, which a
        token-tree backend runs once."""
        shown = [self.stage_candidates(stage, st) for stage, st in items]
        ctxs = [self.prompt(stage, c, st) for (stage, st), c in zip(items, shown, strict=True)]
        k = max(map(len, shown))
        known = self._scores
        todo = list(dict.fromkeys(c for c in ctxs if c not in known))  # each prompt once
        if todo:
            batch = self.backend.choice_logprobs_batch(todo, label_choices(k))
            known.update(zip(todo, batch, strict=True))
        scores = [known[c] for c in ctxs]
        for c in ctxs:
            known.move_to_end(c)
        self._stats["prompts_reused"] += len(ctxs) - len(todo)
        while len(known) > self.config.score_cache:
            known.popitem(last=False)
        return shown, [sc[: len(c)] for sc, c in zip(scores, shown, strict=True)]

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
        # every stage of every state scored at once (selection reads only the state)
        stages = self.base.stage_names
        pairs = [(stage, st) for st in states for stage in stages]
        all_shown, all_scored = self.score_batch(pairs)
        for j, stage in enumerate(stages):
            live = [i for i in range(len(states)) if alive[i]]
            shown = [all_shown[i * len(stages) + j] for i in live]
            scored = [all_scored[i * len(stages) + j] for i in live]
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
            "prompts_reused": self._stats["prompts_reused"],
            **self.backend.stats.snapshot(),
        }


# --------------------------------------------------------------------------- factory


def ld_base(
    env_id: str, emergency: bool | str | Path = True, extensions: Sequence[str | Path] = ()
) -> FunctionBase:
    """The base the student plays ``env_id`` with: the game's shipped base, plus for
    ``PursuitRestricted-v0`` the restricted-area emergency function (the shipped stand-in
    when ``emergency`` is true, the extension file when it is a path), plus the functions
    of each extension file in ``extensions`` (e.g. written by ``ld-gym emergency`` for a
    new rule)."""
    game = game_of(env_id)
    if env_id != "PursuitRestricted-v0" or emergency is False:
        base = shipped_base(game)
    elif emergency is True:
        base = shipped_base(game, ["restricted_area"])
    else:
        base = shipped_base(game)
        base.extend(read_base_file(emergency), origin=str(emergency))
    for path in extensions:
        base.extend(read_base_file(path), origin=str(path))
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
    rules: Any = None,
    extensions: Sequence[str | Path] = (),
) -> LDPolicy:
    if side != "pursuers":
        raise InvalidArgument("the LD student plays the pursuers; use 'raw' for an LLM evader")
    game = game_of(env_id)
    check_count("top_k", top_k)
    if not isinstance(retrieval_threshold, int) or retrieval_threshold < 0:
        raise InvalidArgument(
            f"retrieval_threshold must be an int >= 0, got {retrieval_threshold!r}"
        )
    if game == "pursuit":
        check_board_size(size)
    else:
        given = {
            "size": size != pu.DEFAULT_SIZE,
            "rules": rules is not None,
            "emergency": emergency is not True,
        }
        if any(given.values()):
            raise InvalidArgument(
                f"{', '.join(k for k, v in given.items() if v)}: pursuit only; "
                f"{env_id} takes none of them"
            )
    fb = base if base is not None else ld_base(env_id, emergency, extensions)
    rule_text = rule_text_of(rules, size)
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
    return LDPolicy(fb, backend, config, size=size, seed=seed, rule_text=rule_text)


register("ld", "pursuit")(_make_ld)
register("ld", "twentyone")(_make_ld)

__all__ = [
    "ANSWER_CUE",
    "HEADERS",
    "LABELS",
    "LDConfig",
    "LDPolicy",
    "StageDecision",
    "candidate_line",
    "default_adapter",
    "dynamic_prompt",
    "extra_rule_text",
    "label_choices",
    "ld_backend_spec",
    "ld_base",
    "stage_cue",
    "state_text",
    "static_prompt",
]
