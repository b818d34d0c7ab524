"""The paper's Tables 1-3 from a sweep's records, with honest error bars.

* Pursuit (Tables 1-2): success %, failure without violation %, failure with violation %,
  average steps of successful episodes, and the mean stationary steps lower bound over the
  same successful episodes (:func:`ld_envs.pursuit.steps_lower_bound`).
* 21 points (Table 3): victory %, loss %, draw %, mean reward; the exact optimum (from
  ``ld_agents.baselines.optimal.solve``) as a ceiling row labelled *exact*, and each policy's regret
  (its mean reward minus the optimum's exact expected reward).

Every rate carries a Wilson 95% interval (:func:`wilson`); means carry a Student-t 95%
interval (:func:`mean_ci`). :func:`paired_comparison` compares two policies episode by
episode over their shared starts or decks. A column holds the paper's reported figure for
rows that match one of the paper's (our ``teacher``/``raw``/``kd``/``ld`` against its
Large/Small/-KD/-LD rows, for one model family), labelled with the paper's model name and
kept apart from our figures.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument, unknown_name

logger = logging.getLogger(__name__)

#: the 97.5% quantile of the standard normal distribution
Z95 = 1.959963984540054
PAPER_FILE = Path(__file__).resolve().parent.parent / "assets" / "paper_results.json"
DEFAULT_FAMILY = "GLM4"
PURSUIT_OUTCOMES = ("success", "failure_without_violation", "failure_with_violation")
TWENTYONE_OUTCOMES = ("win", "loss", "draw")

# Student t 97.5% quantiles for 1..30 degrees of freedom.
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip


# ---------------------------------------------------------------------------- statistics


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (95% by default).

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at
    0% or 100%, which the paper's tables are full of (0/200 -> [0, 1.9%]).
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise InvalidArgument(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends (no rounding residue)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (to about 1e-5)."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z95  # Cornish-Fisher expansion, exact enough beyond 30 degrees of freedom
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval (``lo``/``hi`` are NaN when it cannot be had)."""

    value: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def rate(k: int, n: int) -> Estimate:
    """A proportion with its Wilson interval."""
    lo, hi = wilson(k, n)
    return Estimate(k / n if n else math.nan, lo, hi, n)


def mean_ci(values: Sequence[float]) -> Estimate:
    """A mean with its Student-t 95% interval (NaN interval below two values)."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t975(n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class Paired:
    """A paired difference ``a - b`` over shared episodes."""

    a: str
    b: str
    metric: str
    #: shared episodes the difference is taken over
    n: int
    #: episodes where the two policies' figures differ
    n_differ: int
    diff: Estimate
    #: the unpaired 95% half-width of the same difference, for contrast
    unpaired_half_width: float


def paired_comparison(
    records: Sequence[Mapping[str, Any]], a: str, b: str, metric: str = "reward"
) -> Paired:
    """Mean per-episode difference of ``metric`` between policies ``a`` and ``b``.

    Pairing is what makes small differences visible. Two policies play the *same* starts
    (pursuit) or decks (21 points) in a sweep, so most of the luck of an episode is
    common to both and cancels in the per-episode difference. Unpaired, a 21-point reward
    (+1/-1/0) has a standard deviation near 0.95, so the 95% interval of the difference of
    two 200-game means is about +-1.96 * 0.95 * sqrt(2/200) = +-0.19: two policies whose
    expected rewards differ by 0.04 cannot be told apart. Paired, the games where both
    policies make the same choices contribute a difference of exactly 0, the standard
    deviation of the difference shrinks with them, and the interval narrows accordingly.

    ``metric``: ``reward``, ``success`` (1/0), ``win`` (1/0), ``violations``, or ``steps``
    (taken over episodes where both succeeded, as "average steps of success").
    """
    by_a = {r["episode"]: r for r in records if r["policy"] == a}
    by_b = {r["episode"]: r for r in records if r["policy"] == b}
    for name, got in ((a, by_a), (b, by_b)):
        if not got:
            known = sorted({str(r["policy"]) for r in records})
            raise unknown_name("policy in these records", name, known)
    shared = sorted(set(by_a) & set(by_b))
    pairs: list[tuple[float, float]] = []
    for ep in shared:
        ra, rb = by_a[ep], by_b[ep]
        if metric == "steps":
            if ra["outcome"] == "success" and rb["outcome"] == "success":
                pairs.append((float(ra["steps"]), float(rb["steps"])))
        else:
            pairs.append((_metric(ra, metric), _metric(rb, metric)))
    diffs = [x - y for x, y in pairs]
    est = mean_ci(diffs)
    xa, xb = [x for x, _ in pairs], [y for _, y in pairs]
    unpaired = math.nan
    if len(pairs) >= 2:
        va, vb = _var(xa), _var(xb)
        unpaired = Z95 * math.sqrt(va / len(xa) + vb / len(xb))
    return Paired(a, b, metric, len(pairs), sum(d != 0 for d in diffs), est, unpaired)


def _var(xs: Sequence[float]) -> float:
    m = math.fsum(xs) / len(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _metric(rec: Mapping[str, Any], metric: str) -> float:
    if metric == "reward":
        return float(rec["reward"])
    if metric == "success":
        return float(rec["outcome"] == "success")
    if metric == "win":
        return float(rec["outcome"] == "win")
    if metric == "violations":
        return float(rec["violations"])
    raise InvalidArgument(
        f"unknown paired metric {metric!r}; known: reward, success, win, violations, steps"
    )


# ---------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A table in three forms: terminal text, Markdown and CSV."""

    title: str
    #: display headers and cells
    columns: list[str]
    rows: list[list[str]]
    #: CSV headers and raw values (numbers unrounded, intervals in their own columns)
    csv_columns: list[str] = field(default_factory=list)
    csv_rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join("---" for _ in self.columns) + "|")
        out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def to_text(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.csv_columns or self.columns)
        writer.writerows(self.csv_rows or self.rows)
        return buf.getvalue()


def _pct(e: Estimate) -> str:
    if math.isnan(e.value):
        return "—"
    return f"{100 * e.value:.1f}% [{100 * e.lo:.1f}, {100 * e.hi:.1f}]"


def _num(e: Estimate, digits: int = 2, signed: bool = False) -> str:
    if math.isnan(e.value):
        return "—"
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    if math.isnan(e.lo):
        return fmt.format(e.value)
    return f"{fmt.format(e.value)} [{fmt.format(e.lo)}, {fmt.format(e.hi)}]"


def _csv_est(e: Estimate) -> list[Any]:
    return ["" if math.isnan(x) else x for x in (e.value, e.lo, e.hi)]


def _by_policy(
    records: Sequence[Mapping[str, Any]], policies: Sequence[str] | None
) -> dict[str, list[Mapping[str, Any]]]:
    order = list(policies) if policies is not None else []
    for r in records:
        if policies is None and r["policy"] not in order:
            order.append(r["policy"])
    groups: dict[str, list[Mapping[str, Any]]] = {p: [] for p in order}
    for r in records:
        if r["policy"] in groups:
            groups[r["policy"]].append(r)
    return groups


@dataclass(frozen=True)
class PursuitRow:
    """One policy's pursuit figures."""

    policy: str
    n: int
    success: Estimate
    failure_without_violation: Estimate
    failure_with_violation: Estimate
    steps_success: Estimate
    #: mean stationary lower bound over the same successful episodes
    lower_bound_success: Estimate
    mean_violations: float


def pursuit_row(policy: str, recs: Sequence[Mapping[str, Any]]) -> PursuitRow:
    n = len(recs)
    count = {o: sum(r["outcome"] == o for r in recs) for o in PURSUIT_OUTCOMES}
    wins = [r for r in recs if r["outcome"] == "success"]
    bounds = [float(r["steps_lower_bound"]) for r in wins if "steps_lower_bound" in r]
    return PursuitRow(
        policy,
        n,
        rate(count["success"], n),
        rate(count["failure_without_violation"], n),
        rate(count["failure_with_violation"], n),
        mean_ci([float(r["steps"]) for r in wins]),
        mean_ci(bounds),
        (math.fsum(r["violations"] for r in recs) / n) if n else math.nan,
    )


@dataclass(frozen=True)
class TwentyOneRow:
    """One policy's 21-point figures (``regret`` is NaN without the exact optimum)."""

    policy: str
    n: int
    win: Estimate
    loss: Estimate
    draw: Estimate
    reward: Estimate
    regret: Estimate


def twentyone_row(
    policy: str, recs: Sequence[Mapping[str, Any]], optimum_reward: float | None
) -> TwentyOneRow:
    n = len(recs)
    count = {o: sum(r["outcome"] == o for r in recs) for o in TWENTYONE_OUTCOMES}
    reward = mean_ci([float(r["reward"]) for r in recs])
    if optimum_reward is None:
        regret = Estimate(math.nan, math.nan, math.nan, n)
    else:
        regret = Estimate(
            reward.value - optimum_reward,
            reward.lo - optimum_reward,
            reward.hi - optimum_reward,
            n,
        )
    return TwentyOneRow(
        policy, n, rate(count["win"], n), rate(count["loss"], n), rate(count["draw"], n),
        reward, regret,
    )  # fmt: skip


# ---------------------------------------------------------------------------- the paper


@lru_cache(maxsize=4)
def _paper_doc(path: str) -> dict[str, Any] | None:
    p = Path(path)
    if not p.exists():
        logger.warning("paper figures not found at %s; the paper column is left out", p)
        return None
    doc: dict[str, Any] = json.loads(p.read_text())
    return doc


def paper_families(path: Path | str = PAPER_FILE) -> list[str]:
    doc = _paper_doc(str(path))
    return sorted(doc["families"]) if doc else []


@dataclass(frozen=True)
class PaperColumn:
    """The paper's figures for one env and model family, ready to sit beside ours."""

    header: str
    table: str
    metrics: list[str]
    #: role (teacher/raw/kd/ld) -> the paper's row
    rows: dict[str, dict[str, Any]]
    #: policy registry name -> role
    policy_roles: dict[str, str]
    notes: list[str]

    def row_for(self, name: str) -> dict[str, Any] | None:
        role = self.policy_roles.get(name)
        return None if role is None else self.rows.get(role)


def paper_column(
    env_id: str, family: str = DEFAULT_FAMILY, path: Path | str = PAPER_FILE
) -> PaperColumn | None:
    """The paper's rows of ``env_id``'s table for a model family (``None`` if it has none)."""
    doc = _paper_doc(str(path))
    if doc is None:
        return None
    families = doc["families"]
    if family not in families:
        raise unknown_name("paper model family", family, list(families))
    table = doc["tables"].get(env_id)
    if table is None:
        return None
    rows = {r["role"]: r for r in table["rows"] if r["family"] == family}
    if not rows:
        return None
    return PaperColumn(
        header=f"paper ({families[family]['small']})",
        table=table["table"],
        metrics=list(table["metrics"]),
        rows=rows,
        policy_roles=dict(doc["policy_roles"]),
        notes=list(table.get("notes", [])),
    )


def _paper_cell(row: Mapping[str, Any] | None, metrics: Sequence[str]) -> str:
    if row is None:
        return ""
    pct = [f"{row[m]:.1f}%" for m in metrics if m.endswith("_pct")]
    text = " / ".join(pct)
    if "avg_steps_success" in metrics:
        steps = row.get("avg_steps_success")
        text += f", {steps:.2f} steps" if steps is not None else ", — steps"
    return f"{text} ({row['method']})"


def paper_reference_table(col: PaperColumn, family: str) -> Table:
    """The paper's rows for the family, as a table of its own (not ours)."""
    pct = [m for m in col.metrics if m.endswith("_pct")]
    names = {
        "success_pct": "success",
        "failure_without_violation_pct": "fail w/o violation",
        "failure_with_violation_pct": "fail w/ violation",
        "avg_steps_success": "avg steps of success",
        "victory_pct": "victory",
        "loss_pct": "loss",
        "draw_pct": "draw",
    }
    columns = ["paper row", *[names.get(m, m) for m in col.metrics]]
    rows = []
    for role in ("teacher", "raw", "kd", "ld"):
        r = col.rows.get(role)
        if r is None:
            continue
        cells = [f"{r[m]:.2f}%" for m in pct]
        if "avg_steps_success" in col.metrics:
            s = r.get("avg_steps_success")
            cells.append("—" if s is None else f"{s:.2f}")
        rows.append([f"{r['method']} (as {role})", *cells])
    return Table(
        title=f"The paper's {col.table} ({family} family): reported figures, not ours",
        columns=columns,
        rows=rows,
        notes=col.notes,
    )


# ---------------------------------------------------------------------------- the optimum


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


# ---------------------------------------------------------------------------- builders


COST_COLUMNS = ("fwd passes / decision", "tokens / decision", "ms / decision")


def cost_per_decision(recs: Sequence[Mapping[str, Any]]) -> tuple[float, float, float] | None:
    """Mean forward passes, tokens processed and wall milliseconds per decision over a
    policy's episodes (from the ``cost`` counters the sweep records); ``None`` for a
    policy that records no model work (non-LLM policies)."""
    totals = {"decisions": 0.0, "forward_passes": 0.0, "tokens_processed": 0.0, "seconds": 0.0}
    seen = False
    for rec in recs:
        cost = rec.get("cost") or {}
        if "forward_passes" not in cost:
            continue
        seen = True
        totals["decisions"] += float(cost.get("decisions", 0.0))
        totals["forward_passes"] += float(cost["forward_passes"])
        totals["tokens_processed"] += float(cost.get("tokens_processed", 0.0))
        totals["seconds"] += float(cost.get("policy_seconds", cost.get("seconds", 0.0)))
    if not seen or totals["decisions"] <= 0:
        return None
    d = totals["decisions"]
    return (
        totals["forward_passes"] / d,
        totals["tokens_processed"] / d,
        1000 * totals["seconds"] / d,
    )


def add_cost_columns(table: Table, groups: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Append per-decision cost columns to a policy table whose first rows follow
    ``groups``' order, when any policy there recorded model work."""
    costs = [cost_per_decision(recs) for recs in groups.values()]
    if all(c is None for c in costs):
        return
    table.columns += list(COST_COLUMNS)
    table.csv_columns += ["forward_passes_per_decision", "tokens_per_decision", "ms_per_decision"]
    for i, row in enumerate(table.rows):
        c = costs[i] if i < len(costs) else None
        row += ["-"] * 3 if c is None else [f"{c[0]:.2f}", f"{c[1]:.0f}", f"{c[2]:.0f}"]
        table.csv_rows[i] += ["", "", ""] if c is None else list(c)
    table.notes.append(
        "cost: forward passes, tokens processed and policy wall milliseconds per decision "
        "(one decision = one policy call for one episode's step; batched calls shared "
        "equally among the episodes in the batch), on the machine that ran the sweep"
    )


def pursuit_table(
    records: Sequence[Mapping[str, Any]],
    policies: Sequence[str] | None = None,
    paper: PaperColumn | None = None,
    names: Mapping[str, str] | None = None,
    title: str = "Pursuit",
) -> Table:
    """Tables 1-2: one row per policy. ``names`` maps labels to registry names (paper)."""
    groups = _by_policy(records, policies)
    columns = [
        "policy", "n", "success", "fail w/o violation", "fail w/ violation",
        "avg steps of success", "lower bound (same eps)",
    ]  # fmt: skip
    csv_columns = ["policy", "n"]
    for m in ("success", "failure_without_violation", "failure_with_violation"):
        csv_columns += [f"{m}_rate", f"{m}_lo", f"{m}_hi"]
    csv_columns += [
        "steps_success", "steps_success_lo", "steps_success_hi",
        "lower_bound_success", "mean_violations",
    ]  # fmt: skip
    if paper is not None:
        columns.append(paper.header)
        csv_columns += ["paper_row", *[f"paper_{m}" for m in paper.metrics]]
    table = Table(title, columns, [], csv_columns, [])
    for policy, recs in groups.items():
        row = pursuit_row(policy, recs)
        cells = [
            policy,
            str(row.n),
            _pct(row.success),
            _pct(row.failure_without_violation),
            _pct(row.failure_with_violation),
            _num(row.steps_success),
            _num(Estimate(row.lower_bound_success.value, math.nan, math.nan, 0)),
        ]
        values: list[Any] = [policy, row.n]
        for e in (row.success, row.failure_without_violation, row.failure_with_violation):
            values += _csv_est(e)
        values += _csv_est(row.steps_success)
        values += [_csv_est(row.lower_bound_success)[0], row.mean_violations]
        if paper is not None:
            prow = paper.row_for((names or {}).get(policy, policy))
            cells.append(_paper_cell(prow, paper.metrics))
            values += [prow["method"] if prow else ""]
            values += [("" if prow is None or prow[m] is None else prow[m]) for m in paper.metrics]
        table.rows.append(cells)
        table.csv_rows.append(values)
    add_cost_columns(table, groups)
    table.notes.append(
        "rates: Wilson 95% intervals; steps: mean [Student-t 95%] over successful episodes; "
        "lower bound: mean fewest steps any pursuers need against an evader that stands "
        "still, over the same successful episodes"
    )
    if paper is not None:
        table.notes.append(
            f"'{paper.header}': the paper's {paper.table} figure for the matching row "
            f"(success / fail w/o / fail w/ violation, avg steps), not ours"
        )
    return table


def twentyone_table(
    records: Sequence[Mapping[str, Any]],
    policies: Sequence[str] | None = None,
    optimum: Optimum | None = None,
    paper: PaperColumn | None = None,
    names: Mapping[str, str] | None = None,
    title: str = "21 points",
) -> Table:
    """Table 3: one row per policy, plus the exact optimum as a ceiling row."""
    groups = _by_policy(records, policies)
    columns = ["policy", "n", "victory", "loss", "draw", "mean reward", "regret vs optimum"]
    csv_columns = ["policy", "n", "exact"]
    for m in ("win", "loss", "draw", "reward", "regret"):
        csv_columns += [m, f"{m}_lo", f"{m}_hi"]
    if paper is not None:
        columns.append(paper.header)
        csv_columns += ["paper_row", *[f"paper_{m}" for m in paper.metrics]]
    table = Table(title, columns, [], csv_columns, [])
    opt_reward = optimum.expected_reward if optimum is not None else None
    for policy, recs in groups.items():
        row = twentyone_row(policy, recs, opt_reward)
        cells = [
            policy, str(row.n), _pct(row.win), _pct(row.loss), _pct(row.draw),
            _num(row.reward, 3, signed=True), _num(row.regret, 3, signed=True),
        ]  # fmt: skip
        values: list[Any] = [policy, row.n, False]
        for e in (row.win, row.loss, row.draw, row.reward, row.regret):
            values += _csv_est(e)
        if paper is not None:
            prow = paper.row_for((names or {}).get(policy, policy))
            cells.append(_paper_cell(prow, paper.metrics))
            values += [prow["method"] if prow else ""]
            values += [("" if prow is None else prow[m]) for m in paper.metrics]
        table.rows.append(cells)
        table.csv_rows.append(values)
    add_cost_columns(table, groups)
    if optimum is not None:
        cells = [
            optimum.label, "exact", f"{100 * optimum.win:.2f}%", f"{100 * optimum.loss:.2f}%",
            f"{100 * optimum.draw:.2f}%", f"{optimum.expected_reward:+.4f}", "0 (ceiling)",
        ]  # fmt: skip
        values = [optimum.label, "", True]
        for v in (optimum.win, optimum.loss, optimum.draw, optimum.expected_reward, 0.0):
            values += [v, "", ""]
        if paper is not None:
            cells.append("")
            values += [""] * (1 + len(paper.metrics))
        cells += [""] * (len(table.columns) - len(cells))
        values += [""] * (len(table.csv_columns) - len(values))
        table.rows.append(cells)
        table.csv_rows.append(values)
        table.notes.append(
            "optimal (exact): the exact best response's probabilities and expected reward "
            "from the solver, not sampled; regret = mean reward - that expected reward, "
            "with the mean's 95% interval"
        )
    else:
        table.notes.append("no exact optimum row: the solver is unavailable for this opponent")
    table.notes.append("rates: Wilson 95% intervals; mean reward: Student-t 95% interval")
    if paper is not None:
        table.notes.append(
            f"'{paper.header}': the paper's {paper.table} figure for the matching row "
            f"(victory / loss / draw), not ours"
        )
    return table


def paired_table(results: Sequence[Paired]) -> Table:
    """Paired differences as a table."""
    table = Table(
        "Paired comparisons (a - b over shared episodes)",
        ["a", "b", "metric", "shared", "differ", "mean a - b [95%]", "unpaired +-"],
        [],
        ["a", "b", "metric", "n", "n_differ", "diff", "diff_lo", "diff_hi", "unpaired_half"],
        [],
    )
    for p in results:
        table.rows.append(
            [
                p.a, p.b, p.metric, str(p.n), str(p.n_differ), _num(p.diff, 3, signed=True),
                "—" if math.isnan(p.unpaired_half_width) else f"{p.unpaired_half_width:.3f}",
            ]
        )  # fmt: skip
        table.csv_rows.append(
            [p.a, p.b, p.metric, p.n, p.n_differ, *_csv_est(p.diff), p.unpaired_half_width]
        )
    table.notes.append(
        "paired: the mean per-episode difference on the same starts/decks with its Student-t "
        "95% interval; 'unpaired +-' is the half-width the same data would give unpaired"
    )
    return table


# ---------------------------------------------------------------------------- report


@dataclass
class Report:
    """All tables of a sweep."""

    main: Table
    extra: list[Table] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return [self.main, *self.extra]

    def to_text(self) -> str:
        return "\n".join(t.to_text() for t in self.tables)

    def to_markdown(self) -> str:
        return "\n".join(t.to_markdown() for t in self.tables)

    def save(self, folder: Path | str) -> list[Path]:
        """Write ``table.md`` (every table), ``table.csv`` and ``paired.csv``, atomically."""
        from benchmarks.results_io import write_text_atomic

        folder = Path(folder)
        paths = [folder / "table.md", folder / "table.csv"]
        write_text_atomic(paths[0], self.to_markdown())
        write_text_atomic(paths[1], self.main.to_csv())
        for t in self.extra:
            if t.title.startswith("Paired"):
                paths.append(folder / "paired.csv")
                write_text_atomic(paths[-1], t.to_csv())
        return paths


_PAIRED_METRICS = {"pursuit": ("success", "steps", "reward"), "twentyone": ("reward", "win")}


def build_report(
    manifest: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    paired: Sequence[tuple[str, str]] = (),
    family: str | None = DEFAULT_FAMILY,
    optimum: Optimum | bool | None = True,
) -> Report:
    """The tables of a sweep folder's manifest and records.

    ``paired``: pairs of policy labels to compare; ``family``: the paper's model family
    for the paper column (``None`` leaves it out); ``optimum``: ``True`` asks the solver
    (21 points), ``False``/``None`` leaves the row out, an :class:`Optimum` is used as given.
    """
    from ld_agents.base import game_of

    env_id = manifest["env_id"]
    game = game_of(env_id)
    policies = [p["label"] for p in manifest["policies"]]
    names = {p["label"]: p["name"] for p in manifest["policies"]}
    paper = paper_column(env_id, family) if family else None
    kw = manifest.get("env_kwargs", {})
    desc = ", ".join(f"{k}={v}" for k, v in kw.items())
    title = (
        f"{env_id}{f' ({desc})' if desc else ''}: {manifest['episodes']} episodes per policy, "
        f"seed {manifest['seed']}"
    )
    if game == "pursuit":
        main = pursuit_table(records, policies, paper, names, title)
    else:
        opt = exact_optimum(kw) if optimum is True else (optimum or None)
        main = twentyone_table(records, policies, opt, paper, names, title)
    short = [p for p in policies if sum(r["policy"] == p for r in records) < manifest["episodes"]]
    if short:
        main.notes.append(f"incomplete: {', '.join(short)} (rerun the sweep to finish)")
    report = Report(main)
    if paired:
        results = []
        for a, b in paired:
            for metric in _PAIRED_METRICS[game]:
                results.append(paired_comparison(records, a, b, metric))
        report.extra.append(paired_table(results))
    if paper is not None and family:
        report.extra.append(paper_reference_table(paper, family))
    return report
