"""LoRA-train the LD student on a function base's manual: config, data, training, shipping.

Reads top to bottom: :class:`LDTrainConfig` (the recipe, one help text per field, validated
in ``__post_init__``), :func:`build_rows` (the data), :func:`train_ld` (one LoRA run through
:func:`ld_agents.lora.train_lora`; the run record comes back), and :func:`ship_checkpoint`
(ship a checkpoint of a run stopped early). ``ld-gym train-ld`` is the command line.

Data: states from the ``train`` split (:func:`~ld_agents.ld.games.sample_states`), each
labelled stage by stage with the ground truth on the chain's real stage inputs
(:func:`~ld_agents.ld.training_data.training_examples`), turned into the policy's own
prompts (:func:`~ld_agents.ld.training_data.selection_rows`: game line, stage, the stage's
candidates as labelled one-line manual entries in the base's order, state -> the right
label), plus for pursuit manual-derived rule-matching rows for the emergency stage
(candidates in shuffled orders, so the student learns to match an extra rule in force to
the function that handles it rather than a letter). The ``test`` split stays for
``benchmarks/studies/ld_selection.py``. The base is the game's shipped base WITHOUT
emergency functions: the restricted-area function is never seen in training.

>>> from ld_agents.ld.train import LDTrainConfig, train_ld          # doctest: +SKIP
>>> record = train_ld(LDTrainConfig("pursuit", states=40, steps=260), "runs/ld-pursuit")
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ld_envs.errors import InvalidArgument

if TYPE_CHECKING:
    from ld_agents.ld.base import FunctionBase
    from ld_agents.ld.training_data import SelectionExample

logger = logging.getLogger(__name__)

GAMES = ("pursuit", "twentyone")
DTYPES = ("float32", "bfloat16")

#: (field, flag) of the knobs the run record's ``command`` line repeats, in its order
_COMMAND_FLAGS = (
    ("game", "--game"),
    ("states", "--states"),
    ("rule_rows", "--rule-rows"),
    ("synthetic_rule_rows", "--synthetic-rule-rows"),
    ("near_miss_rows", "--near-miss-rows"),
    ("ruled_rows", "--ruled-rows"),
    ("rule_listings", "--rule-listings"),
    ("cue_listings", "--cue-listings"),
    ("focus", "--focus"),
    ("pool", "--pool"),
    ("mistake_rows", "--mistake-rows"),
    ("contrast_rows", "--contrast-rows"),
    ("shuffled_copies", "--shuffled-copies"),
    ("steps", "--steps"),
    ("batch_size", "--batch-size"),
    ("learning_rate", "--lr"),
    ("r", "--r"),
    ("target_modules", "--targets"),
    ("dtype", "--dtype"),
    ("seed", "--seed"),
    ("init_adapter", "--init-adapter"),
    ("cue_stages", "--cue-stages"),
    ("max_length", "--max-length"),
)

#: (field, value) pairs the recorded command leaves out (defaults older records lack)
_UNREPEATED = (
    ("seed", 0),
    ("near_miss_rows", 0),
    ("ruled_rows", 0),
    ("rule_listings", 1),
    ("cue_listings", 1),
    ("mistake_rows", 0),
    ("contrast_rows", 0),
    ("max_length", 1024),
)


def _help(text: str, default: Any = None) -> Any:
    """A dataclass field carrying its help text in ``metadata["help"]``."""
    return field(default=default, metadata={"help": text})


@dataclass
class LDTrainConfig:
    """The LD student's training recipe (recorded in the run record)."""

    game: str = field(metadata={"help": "The game: 'pursuit' or 'twentyone'."})
    states: int = _help("Training states (train split), every stage of each labelled; >= 0.", 3)
    rule_rows: int = _help(
        "Pursuit only: rule-matching rows for the emergency stage (an extra rule in force -> "
        "the function whose manual handles it); >= 0.",
        12,
    )
    synthetic_rule_rows: int = _help(
        "Pursuit only: rule-matching rows with invented rules and functions (teach matching "
        "a rule in force to a function never seen before); >= 0.",
        0,
    )
    near_miss_rows: int = _help(
        "Pursuit only: rule-matching rows whose distractors are near misses (invented rules "
        "that differ only in a number or a piece, or share a decoy's topic), so the student "
        "matches the rule's own text rather than its topic; >= 0.",
        0,
    )
    ruled_rows: int = _help(
        "Pursuit only: whole-state rows (every stage) with an invented rule in force in the "
        "state line, its function listed and answered at the rule stage and every other "
        "stage answered as without it, so that a rule's text sways only the rule stage; "
        ">= 0.",
        0,
    )
    rule_listings: int = _help(
        "Pursuit, rule stage listed in its cue: listings per synthetic rule row (each a "
        "branch with other distractors and order for the same rule in force); >= 1.",
        1,
    )
    cue_listings: int = _help(
        "Listings per cue-listed stage in each state's row: the stage's branch repeated with "
        "its candidates in N orders (so the student reads the listing after the state "
        "instead of learning a letter); >= 1.",
        1,
    )
    focus: int = _help(
        "Rows per answer of each stage whose right function depends on the state; >= 0.", 12
    )
    pool: int = _help(
        "Further training states the focus rows are drawn from (raise it when a rare answer "
        "has fewer than focus examples there); >= 0.",
        400,
    )
    mistake_rows: int = _help(
        "Rows of pool states the init adapter's student answers wrongly at some stage "
        "(found by scoring the pool with it, as the policy plays, before training), added "
        "on top of the focus rows; needs init_adapter and a pool; >= 0.",
        0,
    )
    contrast_rows: int = _help(
        "Rows of pool states whose right answer at a stage is a function the init adapter's "
        "student picked wrongly there (the other side of each mistake, one per mistake in "
        "turn), so that mistake rows teach a boundary instead of shifting it; needs "
        "mistake_rows; >= 0.",
        0,
    )
    shuffled_copies: int = _help(
        "Extra copies of every row with the candidates in a random order (so the student "
        "learns the functions, not their letters); >= 0.",
        1,
    )
    steps: int = _help("Optimizer steps; >= 1.", 12)
    batch_size: int = _help("Rows per optimizer step; >= 1.", 4)
    learning_rate: float = _help("Peak learning rate, in (0, 1).", 1.5e-3)
    r: int = _help("LoRA rank, >= 1 (alpha is 2r).", 8)
    target_modules: tuple[str, ...] = _help(
        "Module names LoRA adapts (add gate_proj, up_proj, down_proj for the MLPs).",
        ("q_proj", "k_proj", "v_proj", "o_proj"),
    )
    dtype: str = _help("Training weights dtype: 'float32' or 'bfloat16'.", "bfloat16")
    threads: int = _help("torch.set_num_threads for training; >= 1.", 2)
    seed: int = _help("Seed of the sampled states, the row order and the LoRA run; >= 0.", 0)
    max_length: int = _help(
        "Longest row (prompt and its stages' cues and answers) in tokens; >= 8.", 1024
    )
    init_adapter: str | None = _help(
        "Continue training this adapter folder (a run that needs more steps) instead of "
        "starting a fresh one; same r and modules.",
        None,
    )
    cue_stages: tuple[str, ...] | None = _help(
        "Stages whose candidates are listed in their cue, after the state, instead of in "
        "the pinned listing (the policy reads this from the run record). None: the game's "
        "rule stage where it has one (pursuit: constraints, where new rules' functions "
        "join at test time), else none.",
        None,
    )
    save_steps: int = _help("Checkpoint every this many steps; >= 1.", 8)
    logging_steps: int = _help("Record the loss every this many steps; >= 1.", 2)

    def __post_init__(self) -> None:
        if self.game not in GAMES:
            raise InvalidArgument(
                f"LDTrainConfig.game must be one of {', '.join(GAMES)}, got {self.game!r}"
            )
        lows = {
            "states": 0,
            "rule_rows": 0,
            "synthetic_rule_rows": 0,
            "near_miss_rows": 0,
            "ruled_rows": 0,
            "rule_listings": 1,
            "cue_listings": 1,
            "focus": 0,
            "pool": 0,
            "mistake_rows": 0,
            "contrast_rows": 0,
            "shuffled_copies": 0,
            "steps": 1,
            "batch_size": 1,
            "r": 1,
            "threads": 1,
            "seed": 0,
            "max_length": 8,
            "save_steps": 1,
            "logging_steps": 1,
        }
        for name, low in lows.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidArgument(
                    f"LDTrainConfig.{name} must be an int >= {low}, got {value!r}"
                )
        if not 0.0 < self.learning_rate < 1.0:
            raise InvalidArgument(
                f"LDTrainConfig.learning_rate must be in (0, 1), got {self.learning_rate!r}"
            )
        if self.dtype not in DTYPES:
            raise InvalidArgument(
                f"LDTrainConfig.dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}"
            )
        if self.mistake_rows and (not self.init_adapter or not self.pool):
            raise InvalidArgument(
                "LDTrainConfig.mistake_rows needs init_adapter (the student whose mistakes "
                f"are found) and pool >= 1; got init_adapter={self.init_adapter!r}, "
                f"pool={self.pool}"
            )
        if self.contrast_rows and not self.mistake_rows:
            raise InvalidArgument(
                "LDTrainConfig.contrast_rows needs mistake_rows >= 1 (the mistakes whose "
                f"other side it adds), got mistake_rows={self.mistake_rows}"
            )
        if self.cue_stages is not None:
            self.cue_stages = tuple(self.cue_stages)
            if not all(isinstance(st, str) and st for st in self.cue_stages):
                raise InvalidArgument(
                    f"LDTrainConfig.cue_stages must be stage names, got {self.cue_stages!r}"
                )
        self.target_modules = tuple(
            m.strip() if isinstance(m, str) else m for m in self.target_modules
        )
        if not self.target_modules or not all(
            isinstance(m, str) and m for m in self.target_modules
        ):
            raise InvalidArgument(
                f"LDTrainConfig.target_modules must be a non-empty list of module names, got "
                f"{self.target_modules!r}"
            )

    @property
    def effective_cue_stages(self) -> tuple[str, ...]:
        """``cue_stages``, or the game's default (pursuit: the rule stage)."""
        if self.cue_stages is not None:
            return tuple(self.cue_stages)
        from ld_agents.ld.training_data import RULE_STAGE

        return (RULE_STAGE,) if self.game == "pursuit" else ()

    @property
    def effective_rule_rows(self) -> int:
        """``rule_rows`` for pursuit; 0 for a game without an emergency stage."""
        return self.rule_rows if self.game == "pursuit" else 0

    @property
    def effective_synthetic_rule_rows(self) -> int:
        """``synthetic_rule_rows`` for pursuit; 0 for a game without an emergency stage."""
        return self.synthetic_rule_rows if self.game == "pursuit" else 0

    @property
    def effective_near_miss_rows(self) -> int:
        """``near_miss_rows`` for pursuit; 0 for a game without an emergency stage."""
        return self.near_miss_rows if self.game == "pursuit" else 0

    @property
    def effective_ruled_rows(self) -> int:
        """``ruled_rows`` for pursuit; 0 for a game without an emergency stage."""
        return self.ruled_rows if self.game == "pursuit" else 0

    def command(self) -> str:
        """The ``ld-gym train-ld`` line of this recipe (recorded with the run)."""
        parts = ["ld-gym train-ld"]
        for name, flag in _COMMAND_FLAGS:
            value = getattr(self, name)
            if name in ("target_modules", "cue_stages") and value is not None:
                value = ",".join(value) or "none"
            if value is None or (name, value) in _UNREPEATED:
                continue  # the defaults a recipe need not repeat
            parts.append(f"{flag} {value}")
        return " ".join(parts)


def build_rows(config: LDTrainConfig) -> list[dict[str, Any]]:
    """The training rows (shuffled, deterministic for a seed), one per state with all its
    labelled stages as branches: ``config.states`` states; ``focus`` states per answer of
    each stage whose right function varies with the state (pursuit ``select``, 21 points
    ``decide``), drawn from a ``pool`` of further training states so that rare answers are
    not swamped; ``shuffled_copies``
    more copies of each of these with the candidates in a random order (in base order the
    right letter of a stage whose answer never changes is constant, which a model can learn
    without reading the manual); rule-matching rows."""
    from ld_agents.ld.base import shipped_base
    from ld_agents.ld.games import sample_states
    from ld_agents.ld.sandbox import SandboxWorker
    from ld_agents.ld.training_data import (
        RULE_STAGE,
        near_miss_rule_rows,
        rule_matching_rows,
        ruled_selection_rows,
        selection_rows,
        synthetic_rule_rows,
        training_examples,
    )

    game, seed, focus = config.game, config.seed, config.focus
    base = shipped_base(game)
    cue = config.effective_cue_stages
    unknown = [st for st in cue if st not in base.stage_names]
    if unknown:
        raise InvalidArgument(
            f"cue_stages {unknown} are not stages of {game} (its stages: "
            f"{', '.join(base.stage_names)})"
        )
    with SandboxWorker() as worker:
        drawn = sample_states(game, config.states + config.pool, "train", seed)
        examples = training_examples(base, worker, drawn[: config.states])
        pooled = focus or config.mistake_rows
        extra = training_examples(base, worker, drawn[config.states :]) if pooled else []
        n_ruled = config.effective_ruled_rows
        # their own validation states (seed + 3), labelled at every stage
        ruled = training_examples(
            base, worker, sample_states(game, n_ruled * 2, "validation", seed + 3)
        ) if n_ruled else []  # fmt: skip
    # focus: pool states picked per answer of each stage whose answer varies, every stage
    # of each kept (one row per state holds all its stages) but the rule-matching stage,
    # whose "no extra rule" answers would otherwise swamp the rule-matching rows
    by_stage: dict[str, dict[str, list[int]]] = {}
    for ex in extra:
        by_stage.setdefault(ex.stage, {}).setdefault(ex.answer, []).append(id(ex.state))
    chosen: set[int] = set()
    for answers in by_stage.values():
        if len(answers) > 1:  # the answer depends on the state
            for ids in answers.values():
                chosen.update(ids[:focus])
    n_synthetic, n_near = config.effective_synthetic_rule_rows, config.effective_near_miss_rows
    rule_stage = RULE_STAGE if config.effective_rule_rows or n_synthetic or n_near else None
    examples += [ex for ex in extra if id(ex.state) in chosen and ex.stage != rule_stage]
    if config.mistake_rows:
        picked = student_picks(base, extra, config.init_adapter, config.dtype)
        wrong = wrong_states(extra, picked)[: config.mistake_rows]
        other = contrast_states(extra, picked, wrong, chosen)[: config.contrast_rows]
        added = set(wrong) | set(other)
        examples += [ex for ex in extra if id(ex.state) in added and ex.stage != rule_stage]
    # the policy's own prompts (base order); the rule-matching rows shuffle their candidates
    n_list = config.cue_listings
    rows = selection_rows(base, examples, shuffle_seed=None, cue_stages=cue, listings=n_list)
    for copy in range(config.shuffled_copies):
        rows += selection_rows(base, examples, seed * 1000 + copy + 1, cue, n_list)
    n_rule = config.effective_rule_rows
    if n_rule:
        extra_states = sample_states(game, n_rule * 2, "validation", seed)
        rows += rule_matching_rows(base, extra_states, seed=seed, cue_stages=cue)[:n_rule]
    # invented rules (each builder on its own validation states: seed + 1, seed + 2)
    invented = ((synthetic_rule_rows, n_synthetic), (near_miss_rule_rows, n_near))
    for offset, (build, n) in enumerate(invented, start=1):
        if n:
            extra_states = sample_states(game, n * 2, "validation", seed + offset)
            rows += build(
                base, extra_states, seed=seed, cue_stages=cue, listings=config.rule_listings
            )[:n]
    if n_ruled:
        rows += ruled_selection_rows(base, ruled, seed=seed, cue_stages=cue)[:n_ruled]
    random.Random(seed).shuffle(rows)
    return rows


def wrong_states(examples: Sequence[SelectionExample], picked: Sequence[str]) -> list[int]:
    """The ids of the states (first seen first) where ``picked[i]`` is not the answer of
    ``examples[i]`` at some stage."""
    if len(picked) != len(examples):
        raise InvalidArgument(f"{len(picked)} picks for {len(examples)} examples")
    out: dict[int, None] = {}
    for ex, pick in zip(examples, picked, strict=True):
        if pick != ex.answer:
            out.setdefault(id(ex.state), None)
    return list(out)


def contrast_states(
    examples: Sequence[SelectionExample],
    picked: Sequence[str],
    wrong: Sequence[int],
    taken: Collection[int] = (),
) -> list[int]:
    """The ids of states whose right answer at a stage is what the student wrongly picked
    there, one per mistake (stage, wrong pick) of the states ``wrong`` in turn, none of
    them in ``wrong`` or ``taken`` and none twice: the other side of each mistake."""
    if len(picked) != len(examples):
        raise InvalidArgument(f"{len(picked)} picks for {len(examples)} examples")
    skip = set(wrong) | set(taken)
    by_answer: dict[tuple[str, str], list[int]] = {}
    for ex in examples:
        if id(ex.state) not in skip:
            by_answer.setdefault((ex.stage, ex.answer), []).append(id(ex.state))
    bad = set(wrong)
    out: dict[int, None] = {}
    for ex, pick in zip(examples, picked, strict=True):
        if id(ex.state) not in bad or pick == ex.answer:
            continue
        for sid in by_answer.get((ex.stage, pick), []):
            if sid not in out:
                out[sid] = None
                break
    return list(out)


def student_picks(
    base: FunctionBase, examples: Sequence[SelectionExample], adapter: str, dtype: str
) -> list[str]:
    """The function the student with ``adapter`` picks for each example (candidates in
    base order, label scoring, as the ``ld`` policy plays), in one batched pass."""
    from ld_agents.ld.policy import LDPolicy
    from ld_agents.llm.base import make_backend

    policy = LDPolicy(base, make_backend(f"hf:embedded?adapter={adapter}&dtype={dtype}"))
    try:
        shown, scores = policy.score_batch([(ex.stage, ex.state) for ex in examples])
    finally:
        policy.close()
    best = [max(range(len(sc)), key=sc.__getitem__) for sc in scores]
    return [c[i].name for c, i in zip(shown, best, strict=True)]


def train_ld(config: LDTrainConfig, out: str | Path) -> dict[str, Any]:
    """Build the rows, LoRA-train the embedded model on them in ``out`` (checkpoints, the
    adapter in ``out/adapter``, the run record; a rerun resumes), return the run record.

    Ship the result with ``ld_agents.lora.ship_adapter(out / "adapter", record, PATH)``.
    """
    import torch

    from ld_agents.llm.embedded import embedded_model_dir
    from ld_agents.lora import LoraTrainConfig, check_target_modules, train_lora

    # checked before the rows are built (those may load the student) or anything is written
    check_target_modules(embedded_model_dir(), config.target_modules)
    torch.set_num_threads(config.threads)
    rows = build_rows(config)
    answers: dict[str, int] = {}
    for row in rows:
        for _, answer in row["branches"]:
            answers[answer] = answers.get(answer, 0) + 1
    logger.info("%d training rows; labels %s", len(rows), answers)
    lora = LoraTrainConfig(
        output_dir=str(out),
        r=config.r,
        alpha=2 * config.r,
        target_modules=config.target_modules,
        learning_rate=config.learning_rate,
        max_steps=config.steps,
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        save_steps=config.save_steps,
        logging_steps=config.logging_steps,
        dtype=config.dtype,
        init_adapter=config.init_adapter,
        extra={
            "what": f"LD student for {config.game}: prompt -> label of the right function",
            "layout": "one_state",
            "cue_stages": list(config.effective_cue_stages),
            "states": config.states,
            "split": "train (sample_states); test split held out",
            "rule_rows": config.effective_rule_rows,
            "shuffled_copies": config.shuffled_copies,
            "synthetic_rule_rows": config.effective_synthetic_rule_rows,
            "near_miss_rows": config.effective_near_miss_rows,
            "ruled_rows": config.effective_ruled_rows,
            "rule_listings": config.rule_listings,
            "cue_listings": config.cue_listings,
            "focus": config.focus,
            "pool": config.pool,
            "mistake_rows": config.mistake_rows,
            "contrast_rows": config.contrast_rows,
            "rows": len(rows),
            "label_counts": answers,
            "command": config.command(),
        },
    )
    return train_lora(embedded_model_dir(), rows, lora)


def ship_checkpoint(run_dir: str | Path, step: int, ship: str | Path) -> dict[str, Any]:
    """Ship ``checkpoint-STEP`` of a run that was stopped early to ``ship``, recording that
    it was (status, steps, wall clock to the checkpoint, loss curve); return the record."""
    from ld_agents.lora import RUN_FILE, ship_adapter

    run_dir = Path(run_dir)
    ckpt = run_dir / f"checkpoint-{step}"
    if not (ckpt / "adapter_config.json").is_file():
        raise InvalidArgument(f"no adapter checkpoint at {ckpt}")
    record = json.loads((run_dir / RUN_FILE).read_text())
    state = json.loads((ckpt / "trainer_state.json").read_text())
    log = state.get("log_history", [])
    planned = record["train_config"]["max_steps"]
    # wall clock from the run record's start to the checkpoint (model loading included)
    wall = (ckpt / "trainer_state.json").stat().st_mtime - (run_dir / RUN_FILE).stat().st_mtime
    record.update(
        wall_seconds_to_checkpoint=wall,
        steps_per_second=step / wall if wall > 0 else None,
        status=f"stopped early: checkpoint {step} of {planned} planned steps shipped",
        global_step=state.get("global_step", step),
        loss_curve=[{"step": h["step"], "loss": h["loss"]} for h in log if "loss" in h],
    )
    ship_adapter(ckpt, record, ship)
    return record
