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
import math
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
    from benchmarks.exact21 import COMMITTED, committed_folder, load_exact21

    opponent = env_kwargs.get("opponent", "dealer")
    open_cards = bool(env_kwargs.get("open_cards", False))
    folder = committed_folder(opponent, open_cards) if isinstance(opponent, str) else COMMITTED
    source = str(folder.relative_to(COMMITTED.parents[2]) / "exact21.md")
    if record is None:
        record = load_exact21(folder)
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


# ----------------------------------------------------------------------- a row's kwargs

#: registered policies the solver evaluates exactly in seconds for any kwargs
#: (:func:`ld_agents.baselines.optimal.evaluate`): a row that ran them with other kwargs
#: than the exact21 record walked gets its own exact figures
SOLVED_POLICIES = ("scripted", "dealer", "random")
#: kwargs that do not change an exact figure (the seed) or are matched elsewhere (the
#: adapter, by its fingerprint: ``pins``); the rl model's fingerprint, which ``ld-gym
#: bench`` pins, is read as the model the row names, as an unpinned row's is
_NEUTRAL_KWARGS = frozenset({"seed", "adapter", "adapter_sha256", "model_sha256"})


def policy_setting(
    name: str, kwargs: Mapping[str, Any] | None, env_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The kwargs of policy ``name`` that can change its exact value: without the seed,
    the adapter (matched by fingerprint), values equal to the factory's defaults, and the
    env's own opponent / open cards passed on unchanged."""
    from ld_agents.base import factory

    defaults: dict[str, Any] = {}
    try:
        import inspect

        params = inspect.signature(factory(name, "TwentyOne-v0")).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
    except Exception:  # an unknown name or no signature: compare the kwargs as given
        defaults = {}
    env_default = {
        "opponent": env_kwargs.get("opponent", "dealer"),
        "open_cards": bool(env_kwargs.get("open_cards", False)),
    }
    out = {}
    for key, value in (kwargs or {}).items():
        if key in _NEUTRAL_KWARGS:
            continue
        if key in env_default and value == env_default[key]:
            continue
        if key in defaults and value == defaults[key] and key not in env_default:
            continue
        out[key] = value
    return out


def _setting_text(setting: Mapping[str, Any]) -> str:
    if not setting:
        return "its default kwargs"
    return ", ".join(f"{k}={v!r}" for k, v in sorted(setting.items()))


def solved_row(
    name: str, kwargs: Mapping[str, Any], env_kwargs: Mapping[str, Any], ceiling: float
) -> ExactRow:
    """The exact figures of a :data:`SOLVED_POLICIES` policy made with ``kwargs`` against
    the sweep's opponent, from the solver (seconds), and its regret ``ceiling - E``."""
    from ld_agents.base import make
    from ld_agents.baselines.optimal import evaluate

    opponent = env_kwargs.get("opponent", "dealer")
    open_cards = bool(env_kwargs.get("open_cards", False))
    agent = make(name, "TwentyOne-v0", **dict(kwargs))
    win, loss, draw, reward = _solution_figures(evaluate(agent, opponent, open_cards))
    return ExactRow(win, loss, draw, reward, ceiling - reward)


def exact_column_rows(
    env_kwargs: Mapping[str, Any],
    policies: Sequence[Mapping[str, Any]],
    record: Mapping[str, Any] | None = None,
    pins: Mapping[str, str | None] | None = None,
    ceiling: float | None = None,
) -> ExactColumn:
    """:func:`exact_column` keyed by each sweep row's label, matching the kwargs as well.

    ``policies``: the manifest's ``{"name", "kwargs", "label"}`` entries; ``pins``: each
    row's adapter fingerprint by label. A row whose kwargs differ from those the exact21
    record walked (:func:`policy_setting`) is not given the record's figures: a
    :data:`SOLVED_POLICIES` row gets its own from the solver (against ``ceiling``, the
    optimum's expected reward; default: :func:`exact_optimum`), any other says why not."""
    from benchmarks.exact21 import committed_folder, load_exact21

    pins = pins or {}
    opponent = env_kwargs.get("opponent", "dealer")
    if record is None and isinstance(opponent, str):  # read once, for every row below
        record = load_exact21(committed_folder(opponent, bool(env_kwargs.get("open_cards", False))))
    names = list(dict.fromkeys(p["name"] for p in policies))
    by_name_pins = {p["name"]: pins.get(p.get("label") or p["name"]) for p in policies}
    whole = exact_column(env_kwargs, names, record, by_name_pins)
    rows: dict[str, ExactRow] = {}
    missing: dict[str, str] = {}
    solved: list[str] = []
    for p in policies:
        name, label = p["name"], p.get("label") or p["name"]
        pin = pins.get(label)
        one = exact_column(env_kwargs, [name], record, {name: pin})
        setting = policy_setting(name, p.get("kwargs"), env_kwargs)
        walked = ((record or {}).get("rows") or {}).get(name) or {}
        recorded = policy_setting(name, walked.get("policy_kwargs"), env_kwargs)
        if setting == recorded:
            if name in one.rows:
                rows[label] = one.rows[name]
            else:
                missing[label] = one.missing.get(name, "not in the exact21 record")
            continue
        if name in SOLVED_POLICIES and opponent in ("dealer", "random"):
            if ceiling is None:
                opt = exact_optimum(env_kwargs)
                ceiling = math.nan if opt is None else opt.expected_reward
            try:
                rows[label] = solved_row(name, p.get("kwargs") or {}, env_kwargs, ceiling)
                solved.append(f"{label} ({_setting_text(setting)})")
                continue
            except Exception as exc:  # the solver refuses: say why rather than guess
                missing[label] = f"the solver could not evaluate it ({exc})"
                continue
        if name in one.missing:
            missing[label] = one.missing[name]
        else:
            missing[label] = (
                f"the exact walk ran {name} with {_setting_text(recorded)}, this row "
                f"{_setting_text(setting)} (rerun python -m benchmarks.studies.exact21 "
                "with these kwargs)"
            )
    notes = whole.notes
    if solved:
        notes = (
            f"exact figures for the kwargs these rows ran, from the solver "
            f"(ld_agents.baselines.optimal.evaluate), not the exact21 record: "
            f"{'; '.join(solved)}",
            *notes,
        )
    return ExactColumn(rows, missing, whole.source, notes)
