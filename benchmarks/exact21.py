"""Exact 21-points figures for Table 3's policies, and the record they are kept in.

:func:`run_exact21` walks the game tree (:func:`ld_agents.baselines.optimal.exact_eval.
exact_evaluate`) for the policies it can afford, estimates the size and time of the walk
for those it cannot (:func:`~ld_agents.baselines.optimal.exact_eval.estimate_queries`:
the LLM policies read every card in order), measures the LD student's first-decision
selection errors stage by stage (:mod:`ld_agents.ld.stage_value`), and counts what an
exact walk against the raw LLM as opponent would have to ask. :func:`save_exact21` writes
``exact21.json`` and ``exact21.md`` with the command, the commit, the CPU (model, flags,
load) and the wall times; :func:`load_exact21` reads them back for the tables
(:mod:`benchmarks.optimum`).

The committed record is ``benchmarks/results/exact21/``; ``docs/exact_21.md`` reads it.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.files import git_commit, write_json_atomic, write_text_atomic
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

ENV_ID = "TwentyOne-v0"
#: walked exactly by default: their answers read card values as multisets (seconds each;
#: ld: minutes, its student scoring each distinct state line of totals once)
EXACT_POLICIES = ("scripted", "dealer", "optimal", "rl", "ld_oracle", "ld")
#: estimated by default: they read every card in order (weeks of CPU for a full walk)
ESTIMATE_POLICIES = ("raw", "kd")
DEFAULT_OUT = Path("runs/exact21")
COMMITTED = Path(__file__).resolve().parent / "results" / "exact21"
JSON_NAME, MD_NAME = "exact21.json", "exact21.md"
#: the record so far, rewritten after each step: a rerun with the same opponent resumes
PARTIAL_NAME = "exact21.partial.json"
#: the LD student's first-decision choices (a rerun reads them instead of scoring again)
CHOICES_NAME = "ld_first_decision_choices.json"


@dataclass(frozen=True)
class Exact21Config:
    """What to compute (the options of ``python -m benchmarks.studies.exact21``)."""

    #: output folder (``exact21.json``, ``exact21.md``)
    out: Path = DEFAULT_OUT
    #: the opponent (``dealer`` or ``random``) and whether its first card is face up
    opponent: str = "dealer"
    open_cards: bool = False
    #: policies walked exactly (comma list; "" for none)
    policies: str = ",".join(EXACT_POLICIES)
    #: policies whose walk is estimated from a sample (comma list; "" for none)
    estimate: str = ",".join(ESTIMATE_POLICIES)
    #: nodes asked per round by an estimate
    sample: int = 24
    #: walk the estimated policies too, assuming this "detail,order" (e.g. "class,none":
    #: exact for the policy reading canonical observations; hours per LLM policy)
    assume: str | None = None
    #: the LD student's first-decision values per stage
    stages: bool = True
    #: count what a walk against the raw LLM as opponent would ask (first round)
    raw_opponent: bool = True
    #: where the policy's answers run: "serial" or "ray" (with ``workers`` actors)
    executor: str = "serial"
    workers: int = 1
    chunk_size: int = 64
    progress: bool = True
    #: the command line, recorded with the results
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ld_envs.twenty_one import OPPONENTS, check_flag

        check_flag("open_cards", self.open_cards)
        if self.opponent not in OPPONENTS:
            raise InvalidArgument(
                f"opponent must be one of {sorted(OPPONENTS)}, got {self.opponent!r}"
            )
        if self.sample < 1:
            raise InvalidArgument(f"sample must be >= 1, got {self.sample}")
        if self.workers < 1:
            raise InvalidArgument(f"workers must be >= 1, got {self.workers}")
        if self.chunk_size < 1:
            raise InvalidArgument(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.executor not in ("serial", "ray"):
            raise InvalidArgument(f"executor must be 'serial' or 'ray', got {self.executor!r}")
        if self.assume is not None:
            parse_assume(self.assume)


def parse_assume(text: str) -> tuple[str, str]:
    """``"class,none"`` -> ``("class", "none")``, checked."""
    from ld_agents.baselines.optimal.answers import DETAILS, ORDERS

    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or parts[0] not in DETAILS or parts[1] not in ORDERS:
        raise InvalidArgument(
            f"assume must be 'DETAIL,ORDER' with DETAIL in {DETAILS} and ORDER in {ORDERS}, "
            f"got {text!r}"
        )
    return parts[0], parts[1]


def names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def policy_kwargs(name: str, opponent: str, open_cards: bool) -> dict[str, Any]:
    """The kwargs Table 3's sweep gives each policy (the pinned adapters of kd and ld)."""
    if name == "raw":
        return {"model": "hf:embedded?dtype=bfloat16"}
    if name in ("kd", "ld"):
        from benchmarks.reproduce import shipped_adapter_sha

        return {"adapter_sha256": shipped_adapter_sha(name, ENV_ID)}
    if name == "optimal":
        return {"opponent": opponent, "open_cards": open_cards}
    return {}


def machine_now() -> dict[str, Any]:
    """The CPU (model, bf16 in hardware, speed flags), cores and load average."""
    from benchmarks.reproduce import machine

    return machine()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_exact21(config: Exact21Config) -> dict[str, Any]:
    """Compute everything the config asks for; the record :func:`save_exact21` writes."""
    from ld_agents.baselines.optimal import solve
    from ld_agents.baselines.optimal.exact_eval import estimate_queries, exact_evaluate

    start = time.perf_counter()
    opp, oc = config.opponent, config.open_cards
    ceiling = solve(opp, oc)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    done = _partial(config)
    record: dict[str, Any] = {
        "command": config.command,
        "commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_now(),
        "load_average_start": _load(),
        "opponent": opp,
        "open_cards": oc,
        "ceiling": {
            "policy": "optimal (solver)",
            "win": ceiling.win,
            "loss": ceiling.loss,
            "draw": ceiling.draw,
            "expected_reward": ceiling.expected_reward,
        },
        "rows": {},
        "earlier_seconds": done.get("wall_seconds", 0.0) if done else 0.0,
    }
    if done:
        record["rows"] = dict(done["rows"])
        record["resumed_from"] = {"created": done["created"], "commit": done["commit"]}
        record.update({k: done[k] for k in ("stages", "raw_opponent") if k in done})

    def checkpoint() -> None:
        record["wall_seconds"] = record["earlier_seconds"] + time.perf_counter() - start
        write_json_atomic(Path(config.out) / PARTIAL_NAME, record)

    run = {
        "executor": config.executor,
        "workers": config.workers,
        "chunk_size": config.chunk_size,
        "progress": config.progress,
    }
    for name in names(config.policies):
        if name in record["rows"]:
            continue
        logger.info("exact walk: %s vs %s", name, opp)
        kwargs = policy_kwargs(name, opp, oc)
        res = exact_evaluate(name, opp, oc, policy_kwargs=kwargs or None, **run)
        record["rows"][name] = {
            **_row("exact", res.to_dict(), ceiling.expected_reward),
            "policy_kwargs": kwargs,
        }
        checkpoint()
    for name in names(config.estimate):
        if name in record["rows"]:
            continue
        kwargs = policy_kwargs(name, opp, oc) or None
        logger.info("estimate: %s vs %s", name, opp)
        t0 = time.perf_counter()
        est = estimate_queries(name, opp, oc, policy_kwargs=kwargs, sample=config.sample)
        row = _row("estimate", est.to_dict(), None)
        row["wall_seconds"] = time.perf_counter() - t0
        row["load_average"] = _load()
        if config.assume:
            detail, order = parse_assume(config.assume)
            res = exact_evaluate(name, opp, oc, policy_kwargs=kwargs, detail=detail,
                                 order=order, **run)  # fmt: skip
            row = {**_row("exact (assumed)", res.to_dict(), ceiling.expected_reward),
                   "estimate": row}  # fmt: skip
        row["policy_kwargs"] = kwargs or {}
        record["rows"][name] = row
        gc.collect()  # the model goes before the next one loads
        checkpoint()
    if config.stages and "stages" not in record:
        record["stages"] = run_stages(config)
        gc.collect()
        checkpoint()
    if config.raw_opponent and "raw_opponent" not in record:
        record["raw_opponent"] = raw_opponent_counts(oc)
    record["load_average_end"] = _load()
    record["wall_seconds"] = record.pop("earlier_seconds") + time.perf_counter() - start
    return record


def _partial(config: Exact21Config) -> dict[str, Any] | None:
    """The checkpoint of an interrupted run in ``config.out`` for the same opponent."""
    path = Path(config.out) / PARTIAL_NAME
    if not path.is_file():
        return None
    done = json.loads(path.read_text(encoding="utf-8"))
    if done.get("opponent") != config.opponent or done.get("open_cards") != config.open_cards:
        return None
    logger.info("resuming from %s: %s done", path, ", ".join(done["rows"]) or "nothing")
    return done


def _row(kind: str, data: Mapping[str, Any], ceiling: float | None) -> dict[str, Any]:
    row = {"kind": kind, **data}
    if ceiling is not None:
        row["regret"] = ceiling - float(data["expected_reward"])
    return row


def run_stages(config: Exact21Config) -> dict[str, Any]:
    """The LD student's first-decision values per stage (:mod:`ld_agents.ld.stage_value`),
    with a check that the mixture with the student everywhere acts as the student does."""
    import ld_agents
    from ld_agents.baselines.optimal.exact_eval import GameTree, card_detail
    from ld_agents.ld.stage_value import check_first_decisions, first_decision_stage_values

    kwargs = policy_kwargs("ld", config.opponent, config.open_cards)
    t0 = time.perf_counter()
    student = ld_agents.make("ld", ENV_ID, **kwargs)
    load_s = time.perf_counter() - t0
    values = first_decision_stage_values(
        student,
        config.opponent,
        config.open_cards,
        progress=config.progress,
        choices_path=Path(config.out) / f"{kwargs['adapter_sha256']}-{CHOICES_NAME}",
    )
    tree = GameTree(None, None, card_detail("rank"), config.open_cards, True)  # type: ignore[arg-type]
    sample = [tree.agent_obs(n) for n in list(tree.initial())[::37]]
    t1 = time.perf_counter()
    equal, n = check_first_decisions(student, sample)
    return {
        **values.to_dict(),
        "student_kwargs": kwargs,
        "load_seconds": load_s,
        "check": {"equal": equal, "n": n, "seconds": time.perf_counter() - t1},
        "load_average": _load(),
    }


def raw_opponent_counts(open_cards: bool) -> dict[str, Any]:
    """Against the raw LLM as opponent (card ids in order, the agent's cards too): the
    first round's distinct observations for the cheap agents (a lower bound of the walk)."""
    from ld_agents.baselines.optimal.exact_eval import first_round_opponent_observations

    out: dict[str, Any] = {}
    for name in ("scripted", "rl"):
        t0 = time.perf_counter()
        agent_n, opp_n = first_round_opponent_observations(name, open_cards)
        out[name] = {
            "agent_first_round": agent_n,
            "opponent_first_round": opp_n,
            "seconds": time.perf_counter() - t0,
        }
    return out


# ----------------------------------------------------------------------------- files


def save_exact21(record: Mapping[str, Any], folder: Path | str) -> list[Path]:
    """Write ``exact21.json`` and ``exact21.md`` into ``folder`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / JSON_NAME, folder / MD_NAME]
    write_json_atomic(paths[0], record)
    write_text_atomic(paths[1], to_markdown(record))
    (folder / PARTIAL_NAME).unlink(missing_ok=True)
    return paths


#: the committed records of the other settings, in folders of ``COMMITTED``
COMMITTED_SETTINGS = {("random", False): "random", ("dealer", True): "dealer-open"}


def committed_folder(opponent: str = "dealer", open_cards: bool = False) -> Path:
    """The committed record's folder for an opponent and open cards (the dealer with its
    hidden card: ``COMMITTED`` itself)."""
    sub = COMMITTED_SETTINGS.get((opponent, bool(open_cards)))
    return COMMITTED / sub if sub else COMMITTED


def load_exact21(folder: Path | str = COMMITTED) -> dict[str, Any] | None:
    """The record in ``folder`` (default: the committed one), or ``None``."""
    path = Path(folder) / JSON_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def to_markdown(record: Mapping[str, Any]) -> str:
    """The record as Markdown: exact rows, estimates, the stage values, the raw opponent."""
    m = record["machine"]
    cpu = f"{m.get('cpu_model')}, {m.get('cpus')} cores, flags {', '.join(m.get('flags', []))}"
    c = record["ceiling"]
    lines = [
        f"# Exact 21 points against the {record['opponent']} "
        f"({'open cards' if record['open_cards'] else 'face-down card'})",
        "",
        f"Command: `{record['command']}`; commit `{record['commit']}`; {record['created']}.",
        f"CPU: {cpu}; load average {record['load_average_start']} at the start, "
        f"{record['load_average_end']} at the end (the CPU was shared); "
        f"wall time {_hours(record['wall_seconds'])}"
        f"{', over resumed runs' if 'resumed_from' in record else ''}.",
        "",
        f"Ceiling (the solver's best response): win {100 * c['win']:.2f}%, loss "
        f"{100 * c['loss']:.2f}%, draw {100 * c['draw']:.2f}%, E = {c['expected_reward']:+.4f}.",
        "",
        "| policy | how | win | loss | draw | E | exact regret | observations | walk | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in sorted(record["rows"].items()):
        if row["kind"] == "estimate":
            lines.append(
                f"| {name} | estimate | | | | | | ~{row['total']:,.0f} | {row['detail']}, "
                f"order {row['order']} | ~{_hours(row['projected_seconds'])} "
                f"({row['seconds_per_observation']:.2f} s/obs) |"
            )
            continue
        lines.append(
            f"| {name} | {row['kind']} | {100 * row['win']:.3f}% | {100 * row['loss']:.3f}% | "
            f"{100 * row['draw']:.3f}% | {row['expected_reward']:+.5f} | {row['regret']:.5f} | "
            f"{row['observations']:,} | {row['detail']}, order {row['order']} | "
            f"{row['seconds']:.1f} |"
        )
    lines += [
        "",
        "- exact: every deck order, face-down card and opponent move enumerated; the policy "
        "asked once per distinct observation (walked at the card detail and order it reads).",
        "- estimate: the number of distinct observations an exact walk would ask (at the "
        "detail and order the policy reads), estimated from a sample of each round, and "
        "the time at the seconds per observation measured on that sample, on this CPU.",
    ]
    if "stages" in record:
        lines += ["", *_stages_markdown(record["stages"])]
    if "raw_opponent" in record:
        lines += ["", "## Against the raw LLM as opponent", ""]
        for name, r in record["raw_opponent"].items():
            lines.append(
                f"- {name}: first round alone: {r['agent_first_round']:,} agent and "
                f"{r['opponent_first_round']:,} distinct raw-opponent observations."
            )
    return "\n".join(lines) + "\n"


def _stages_markdown(s: Mapping[str, Any]) -> list[str]:
    stages = list(s["loss_alone"])
    lines = [
        "## The LD student's first decision, stage by stage",
        "",
        f"V(S): the first decision of each deal by the chain with the student's choice at "
        f"the stages S and the ground truth's elsewhere, every later decision by ld_oracle "
        f"({s['first_states']:,} distinct first-decision state lines as the student reads "
        f"them; scoring "
        f"{s['scoring_seconds']:.0f} s, all {s['seconds']:.0f} s).",
        "",
        f"- V(none) = ld_oracle = {s['oracle']:+.5f}; V(all) = {s['student_first']:+.5f}; "
        f"the student's first decision loses {s['first_decision_loss']:.5f}.",
        f"- check: the mixture with the student everywhere acted as the student on "
        f"{s['check']['equal']}/{s['check']['n']} first-decision observations.",
        "",
        "| stage | accuracy (weighted by P) | accuracy (states) | V(none) - V({s}) | "
        "V(all - {s}) - V(all) |",
        "|---|---|---|---|---|",
    ]
    for st in stages:
        lines.append(
            f"| {st} | {100 * s['accuracy'][st]:.1f}% | {100 * s['accuracy_unweighted'][st]:.1f}% "
            f"| {s['loss_alone'][st]:+.5f} | {s['gain_if_fixed'][st]:+.5f} |"
        )
    return lines
