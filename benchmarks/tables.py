"""The paper's Tables 1-3 from a sweep's records, as text, Markdown and CSV.

* Pursuit (Tables 1-2): success %, failure without violation %, failure with violation %,
  average steps of successful episodes, and the mean stationary steps lower bound over the
  same successful episodes (:func:`ld_envs.pursuit.steps_lower_bound`).
* 21 points (Table 3): victory %, loss %, draw %, mean reward; the exact optimum
  (:mod:`benchmarks.optimum`) as a ceiling row labelled *exact*, and each policy's regret
  (the optimum's exact expected reward minus its mean reward); beside the sampled figures,
  each policy's exact win / loss / draw, expected reward and exact regret (ceiling minus
  value) from the exact21 record, or why it has none (:func:`benchmarks.optimum.exact_column`).

The intervals come from :mod:`benchmarks.stats` (Wilson for rates, Student-t for means,
paired differences); the paper's reported figures from :mod:`benchmarks.paper`, in a column
of their own for rows that match one of the paper's, labelled with the paper's model name.
:func:`build_report` gathers a sweep folder's tables.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.optimum import (
    ExactColumn,
    ExactRow,
    Optimum,
    exact_column_rows,
    exact_optimum,
)
from benchmarks.paper import DEFAULT_FAMILY, PaperColumn, paper_column
from benchmarks.results_io import write_text_atomic
from benchmarks.stats import Estimate, Paired, mean_ci, paired_comparison, rate
from ld_envs.errors import InvalidArgument

PURSUIT_OUTCOMES = ("success", "failure_without_violation", "failure_with_violation")
TWENTYONE_OUTCOMES = ("win", "loss", "draw")


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
    """One policy's 21-point figures (``regret`` = the optimum's expected reward - the mean
    reward, as the exact regret; NaN without the exact optimum)."""

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
        # regret = optimum - policy (the exact regret's sign): >= 0 in expectation, below
        # 0 only by sampling noise; the interval is the mean's, mirrored
        regret = Estimate(
            optimum_reward - reward.value,
            optimum_reward - reward.hi,
            optimum_reward - reward.lo,
            n,
        )
    return TwentyOneRow(
        policy, n, rate(count["win"], n), rate(count["loss"], n), rate(count["draw"], n),
        reward, regret,
    )  # fmt: skip


# ---------------------------------------------------------------------------- the paper's rows


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
    exact: ExactColumn | None = None,
) -> Table:
    """Table 3: one row per policy, plus the exact optimum as a ceiling row; with
    ``exact``, each policy's exact figures beside its sampled ones."""
    groups = _by_policy(records, policies)
    columns = ["policy", "n", "victory", "loss", "draw", "mean reward", "regret vs optimum"]
    csv_columns = ["policy", "n", "exact"]
    for m in ("win", "loss", "draw", "reward", "regret"):
        csv_columns += [m, f"{m}_lo", f"{m}_hi"]
    if exact is not None:
        columns += list(EXACT_COLUMNS)
        csv_columns += [f"exact_{m}" for m in ("win", "loss", "draw", "reward", "regret")]
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
        if exact is not None:
            ex = exact.rows.get(_exact_key(exact, policy, names or {}))
            cells += _exact_cells(ex)
            values += (
                [""] * 5
                if ex is None
                else [ex.win, ex.loss, ex.draw, ex.expected_reward, ex.regret]
            )
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
        if exact is not None:
            cells += _exact_cells(
                ExactRow(optimum.win, optimum.loss, optimum.draw, optimum.expected_reward, 0.0)
            )
            values += [optimum.win, optimum.loss, optimum.draw, optimum.expected_reward, 0.0]
        if paper is not None:
            cells.append("")
            values += [""] * (1 + len(paper.metrics))
        cells += [""] * (len(table.columns) - len(cells))
        values += [""] * (len(table.csv_columns) - len(values))
        table.rows.append(cells)
        table.csv_rows.append(values)
        table.notes.append(
            "optimal (exact): the exact best response's probabilities and expected reward "
            "from the solver, not sampled; regret vs optimum = that expected reward - the "
            "mean reward, with the mean's 95% interval (>= 0 in expectation; below 0 only "
            "by sampling noise)"
        )
    else:
        table.notes.append("no exact optimum row: the solver is unavailable for this opponent")
    table.notes.append("rates: Wilson 95% intervals; mean reward: Student-t 95% interval")
    if exact is not None:
        table.notes += _exact_notes(exact, groups, names or {})
    if paper is not None:
        table.notes.append(
            f"'{paper.header}': the paper's {paper.table} figure for the matching row "
            f"(victory / loss / draw), not ours"
        )
    return table


#: the exact columns of Table 3 (beside the sampled ones)
EXACT_COLUMNS = ("exact win / loss / draw", "exact E", "exact regret")


def _exact_cells(ex: Any) -> list[str]:
    if ex is None:
        return ["—", "—", "—"]
    mark = "*" if ex.assumed else ""
    return [
        f"{100 * ex.win:.2f}% / {100 * ex.loss:.2f}% / {100 * ex.draw:.2f}%{mark}",
        f"{ex.expected_reward:+.4f}{mark}",
        f"{ex.regret:.4f}{mark}",
    ]


def _exact_key(exact: ExactColumn, policy: str, names: Mapping[str, str]) -> str:
    """The key of row ``policy`` in ``exact``: its label when the column is keyed by
    label (:func:`benchmarks.optimum.exact_column_rows`), else its policy name."""
    if policy in exact.rows or policy in exact.missing:
        return policy
    return names.get(policy, policy)


def _exact_notes(
    exact: ExactColumn, groups: Mapping[str, Any], names: Mapping[str, str]
) -> list[str]:
    notes = [
        "exact: every deck order, face-down card and opponent move enumerated, the policy "
        "asked once per distinct observation (not sampled); exact regret = the optimum's "
        f"expected reward - the policy's; from {exact.source}"
    ]
    if any(r.assumed for r in exact.rows.values()):
        notes.append("*: exact for the policy reading canonical observations (an assumption)")
    notes += list(exact.notes)
    by_reason: dict[str, list[str]] = {}
    for policy in groups:
        why = exact.missing.get(_exact_key(exact, policy, names))
        if why:
            by_reason.setdefault(why, []).append(policy)
    for why, policies in by_reason.items():
        notes.append(f"no exact figures for {', '.join(policies)}: {why}")
    return notes


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
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "table.md", folder / "table.csv"]
        write_text_atomic(paths[0], self.to_markdown())
        write_text_atomic(paths[1], self.main.to_csv())
        for t in self.extra:
            if t.title.startswith("Paired"):
                paths.append(folder / "paired.csv")
                write_text_atomic(paths[-1], t.to_csv())
        return paths


_PAIRED_METRICS = {"pursuit": ("success", "steps", "reward"), "twentyone": ("reward", "win")}


def adapter_pins(manifest: Mapping[str, Any]) -> dict[str, str | None]:
    """The adapter fingerprint each kd or ld row of a sweep ran, by policy name: its pin
    (``adapter_sha256``) where the sweep recorded one, else the fingerprint of the adapter
    it names now (the shipped one by default; ``"none"`` for ld with no adapter, the base
    model). An unpinned row is read as today's adapter: the best guess for a sweep run
    before a retraining, which is why ``ld-gym reproduce`` pins."""
    from benchmarks.reproduce import shipped_adapter_sha
    from ld_agents.lora import adapter_sha256

    pins: dict[str, str | None] = {}
    for p in manifest["policies"]:
        kw, name = p.get("kwargs", {}), p["name"]
        pin = kw.get("adapter_sha256")
        if pin is None and name in ("kd", "ld"):
            adapter = kw.get("adapter", "default" if name == "ld" else None)
            if adapter is None and name == "ld":
                pin = "none"
            elif adapter in (None, "default"):
                pin = shipped_adapter_sha(name, manifest["env_id"])
            elif Path(adapter).is_dir():
                pin = adapter_sha256(adapter)
            else:
                pin = f"missing {adapter}"
        pins[name] = pin
    return pins


def label_pins(manifest: Mapping[str, Any]) -> dict[str, str | None]:
    """:func:`adapter_pins` by row label (two rows of one policy may run two adapters)."""
    pins: dict[str, str | None] = {}
    for p in manifest["policies"]:
        one = adapter_pins({**manifest, "policies": [p]})
        pins[p.get("label") or p["name"]] = one[p["name"]]
    return pins


def build_report(
    manifest: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    paired: Sequence[tuple[str, str]] = (),
    family: str | None = DEFAULT_FAMILY,
    optimum: Optimum | bool | None = True,
    exact: ExactColumn | bool | None = True,
) -> Report:
    """The tables of a sweep folder's manifest and records.

    ``paired``: pairs of policy labels to compare; ``family``: the paper's model family
    for the paper column (``None`` leaves it out); ``optimum``: ``True`` asks the solver
    (21 points), ``False``/``None`` leaves the row out, an :class:`Optimum` is used as given;
    ``exact``: ``True`` reads each policy's exact figures from the committed exact21 record
    (:func:`benchmarks.optimum.exact_column_rows`: matched by kwargs too), ``False``/``None``
    leaves them out.
    """
    from ld_agents.base import game_of

    env_id = manifest["env_id"]
    game = game_of(env_id)
    policies = [p["label"] for p in manifest["policies"]]
    names = {p["label"]: p["name"] for p in manifest["policies"]}
    if any(isinstance(p, str) or len(p) != 2 for p in paired):
        raise InvalidArgument(
            f"paired takes a list of (label, label) pairs, e.g. [('scripted', 'raw')], "
            f"got {paired!r}"
        )
    if family == "none":  # the CLI's word for no paper column
        family = None
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
        if exact is True:
            ex = exact_column_rows(
                kw,
                manifest["policies"],
                pins=label_pins(manifest),
                ceiling=None if opt is None else opt.expected_reward,
            )
        else:
            ex = exact or None
        main = twentyone_table(records, policies, opt, paper, names, title, ex)
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
