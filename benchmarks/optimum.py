"""Exact 21-points figures for the tables: the ceiling row and every policy's exact row.

:func:`exact_optimum` asks the solver (``ld_agents.baselines.optimal.solve``) for the
best response to a sweep's opponent; its win/loss/draw probabilities and expected reward
are exact, not sampled, and every policy's regret is measured against that reward.
:func:`exact_column` gives each policy's own exact figures and exact regret from the
exact21 record (``python -m benchmarks.studies.exact21``, committed in
``benchmarks/results/exact21``), and for a policy without them, why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Optimum:
    """The exact best response's figures (probabilities, not frequencies)."""

    win: float
    loss: float
    draw: float
    expected_reward: float
    label: str = "optimal (exact)"


def exact_optimum(env_kwargs: Mapping[str, Any]) -> Optimum | None:
    """Exact figures of the best response to the sweep's opponent, from the solver.

    ``None`` (with a logged reason) when the solver is unavailable or the opponent is a
    registered policy the solver cannot model.
    """
    try:
        from ld_agents.baselines import optimal
    except ImportError:
        logger.warning("ld_agents.baselines.optimal is not available: no exact optimum row")
        return None
    opponent = env_kwargs.get("opponent", "dealer")
    open_cards = bool(env_kwargs.get("open_cards", False))
    try:
        sol = optimal.solve(opponent=opponent, open_cards=open_cards)
    except Exception as exc:  # an opponent the solver does not model
        logger.warning("no exact optimum for opponent %r: %s", opponent, exc)
        return None
    return Optimum(*_solution_figures(sol))


def _solution_figures(sol: Any) -> tuple[float, float, float, float]:
    def get(*names: str) -> float:
        for name in names:
            if isinstance(sol, Mapping) and name in sol:
                return float(sol[name])
            if hasattr(sol, name):
                return float(getattr(sol, name))
        raise InvalidArgument(f"the solver's result has none of {names}: {sol!r}")

    return (
        get("win", "p_win", "victory"),
        get("loss", "p_loss", "lose"),
        get("draw", "p_draw"),
        get("expected_reward", "reward", "value"),
    )


# ----------------------------------------------------------------------------- every row


@dataclass(frozen=True)
class ExactRow:
    """A policy's exact figures against the sweep's opponent (probabilities), and its
    exact regret (the ceiling's expected reward minus its own)."""

    win: float
    loss: float
    draw: float
    expected_reward: float
    regret: float
    #: what the walk assumed beyond the policy's traits ("" when nothing)
    assumed: str = ""


@dataclass(frozen=True)
class ExactColumn:
    """Exact figures per policy name, why the others have none, and their source."""

    rows: dict[str, ExactRow]
    missing: dict[str, str]
    source: str
    #: further exact figures from the record (ld_oracle, the LD student's first decision)
    notes: tuple[str, ...] = ()


_READS = {"card": "card ids (suits included)", "rank": "ranks", "class": "card values"}


def _estimate_reason(row: Mapping[str, Any]) -> str:
    hours = float(row["projected_seconds"]) / 3600
    order = " in order" if row["order"] != "none" else ""
    return (
        f"not walked: its answer reads {_READS[row['detail']]}{order}, so an exact walk "
        f"asks ~{float(row['total']):,.0f} observations, ~{hours:,.0f} h at "
        f"{float(row['seconds_per_observation']):.2f} s each on the recording CPU"
    )


def _pin_mismatch(recorded: Mapping[str, Any] | None, pin: str | None) -> str | None:
    """Why an exact figure of a student does not belong beside a sweep row that ran the
    adapter ``pin`` (``None``: it does, or the sweep row pins nothing)."""
    if pin is None:
        return None
    got = (recorded or {}).get("adapter_sha256")
    if got == pin:
        return None
    walked = f"adapter {got}" if got else "an adapter it does not record"
    return (
        f"the exact walk ran {walked}, this sweep's row adapter {pin} (rerun "
        "python -m benchmarks.studies.exact21 for the new adapter)"
    )


def _record_notes(
    record: Mapping[str, Any], names: Sequence[str], pins: Mapping[str, str | None]
) -> tuple[str, ...]:
    """Exact figures the table has no row for: ld_oracle (LD with perfect selection) and
    the LD student's first decision followed by perfect selection (when the walk ran the
    sweep's adapter)."""
    notes = []
    oracle = record["rows"].get("ld_oracle")
    if oracle is not None and oracle["kind"] == "exact" and "ld_oracle" not in names:
        notes.append(
            f"ld_oracle (the LD chain with perfect selection), exact: E = "
            f"{oracle['expected_reward']:+.4f}, regret {oracle['regret']:.4f}"
        )
    stages = record.get("stages")
    if stages is None or "ld" not in names:
        return tuple(notes)
    if _pin_mismatch(stages.get("student_kwargs"), pins.get("ld")):
        return tuple(notes)
    ceiling = float(record["ceiling"]["expected_reward"])
    head = (
        f"ld's first decision followed by perfect selection, exact: E = "
        f"{stages['student_first']:+.4f}, regret {ceiling - stages['student_first']:.4f}"
    )
    loss = float(stages["first_decision_loss"])
    worst = max(stages["loss_alone"], key=stages["loss_alone"].get)
    if loss <= 1e-9:
        low = min(stages["accuracy"], key=stages["accuracy"].get)
        head += "; its first decision loses nothing to perfect selection (its least accurate "
        head += f"stage, {low}, is right on {100 * stages['accuracy'][low]:.1f}% of them)"
    elif stages["loss_alone"][worst] >= loss - 1e-12:
        head += f"; its first decision loses {loss:.4f}, all at the {worst} stage "
        head += f"({100 * stages['accuracy'][worst]:.1f}% right)"
    notes.append(head)
    return tuple(notes)


def exact_column(
    env_kwargs: Mapping[str, Any],
    names: Sequence[str],
    record: Mapping[str, Any] | None = None,
    pins: Mapping[str, str | None] | None = None,
) -> ExactColumn:
    """Exact figures of the sweep's policies (by registered name) from the exact21 record
    (:mod:`benchmarks.exact21`; default: the committed ``benchmarks/results/exact21``),
    matched by opponent and open cards; policies without a walked row get the reason.

    ``pins``: the adapter fingerprint each policy's sweep row ran (``adapter_sha256``); an
    exact row walked with another adapter (or not recording one) is not shown beside it."""
    pins = pins or {}
    from benchmarks.exact21 import COMMITTED, load_exact21

    opponent = env_kwargs.get("opponent", "dealer")
    open_cards = bool(env_kwargs.get("open_cards", False))
    source = str(COMMITTED.relative_to(COMMITTED.parents[2]) / "exact21.md")
    if record is None:
        record = load_exact21()
    if not isinstance(opponent, str) or opponent not in ("dealer", "random"):
        why = "the opponent is an LLM that reads card ids in order: not enumerable here"
        counts = (record or {}).get("raw_opponent", {}).get("scripted")
        if counts:
            why += (
                f" (its first round alone asks {counts['opponent_first_round']:,} distinct "
                f"opponent observations against scripted)"
            )
        return ExactColumn({}, dict.fromkeys(names, why), source)
    if record is None or record["opponent"] != opponent or record["open_cards"] != open_cards:
        why = f"no exact21 record for opponent={opponent}, open_cards={open_cards}"
        return ExactColumn({}, dict.fromkeys(names, why), source)
    rows: dict[str, ExactRow] = {}
    missing: dict[str, str] = {}
    for name in names:
        row = record["rows"].get(name)
        if row is None:
            missing[name] = "not in the exact21 record"
        elif row["kind"] == "estimate":
            missing[name] = _estimate_reason(row)
        elif why := _pin_mismatch(row.get("policy_kwargs"), pins.get(name)):
            missing[name] = why
        else:
            rows[name] = ExactRow(
                row["win"], row["loss"], row["draw"], row["expected_reward"], row["regret"],
                row.get("assumed", ""),
            )  # fmt: skip
    return ExactColumn(rows, missing, source, _record_notes(record, names, pins))
