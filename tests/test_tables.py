"""Tables and their parts: Wilson and t intervals, pursuit and 21-point rows, paired
comparison, the paper column, the exact optimum row."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import paper, stats, tables
from benchmarks.optimum import Optimum, exact_optimum
from benchmarks.paper import paper_column
from benchmarks.stats import mean_ci, paired_comparison, t975, wilson
from benchmarks.tables import build_report, pursuit_table, twentyone_table
from ld_envs.errors import UnknownName


def pursuit_rec(policy: str, episode: int, outcome: str, steps: int, bound: int = 5) -> dict:
    return {
        "policy": policy,
        "episode": episode,
        "env_seed": episode,
        "outcome": outcome,
        "steps": steps,
        "violations": 8 if outcome == "failure_with_violation" else 0,
        "reward": 1.0 if outcome == "success" else 0.0,
        "steps_lower_bound": bound,
    }


def card_rec(policy: str, episode: int, reward: float) -> dict:
    outcome = {1.0: "win", -1.0: "loss", 0.0: "draw"}[reward]
    return {
        "policy": policy,
        "episode": episode,
        "env_seed": episode,
        "outcome": outcome,
        "steps": 1,
        "violations": 0,
        "reward": reward,
    }


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 200, 0.0, 0.018845326377266575),
        (200, 200, 0.9811546736227335, 1.0),
        (81, 263, 0.2552885198782742, 0.36620957698280004),
        (5, 10, 0.236593090512564, 0.7634069094874361),
        (1, 3, 0.06149194472039621, 0.7923403991979522),
    ],
)
def test_wilson_golden_values(k, n, lo, hi):
    """The Wilson 95% interval matches golden values (0/200 -> [0, 1.88%])."""
    assert wilson(k, n) == pytest.approx((lo, hi), abs=1e-12)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_bounds_solve_the_score_equation(kn):
    """Each interior Wilson bound p solves (k/n - p)^2 = z^2 p (1 - p) / n."""
    k, n = kn
    lo, hi = wilson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    for p in (lo, hi):
        if 0.0 < p < 1.0:
            gap = (k / n - p) ** 2 - stats.Z95**2 * p * (1 - p) / n
            assert abs(gap) < 1e-12


@pytest.mark.parametrize(
    ("df", "q"),
    [
        (1, 12.706205),
        (10, 2.228139),
        (31, 2.039513),
        (60, 2.000298),
        (120, 1.979930),
        (1000, 1.962339),
    ],
)
def test_t_quantiles_match_tables(df, q):
    """Student-t 97.5% quantiles agree with printed tables to 1e-5."""
    assert t975(df) == pytest.approx(q, abs=1e-5)


def test_mean_interval_golden():
    """mean_ci([1, 2, 3, 4]) = 2.5 +- t(3) * s / 2."""
    est = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert (est.value, est.lo, est.hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half), abs=1e-6)
    assert math.isnan(mean_ci([3.0]).lo) and math.isnan(mean_ci([]).value)


# --------------------------------------------------------------------------- rows


def test_pursuit_row_counts_outcomes_and_steps_of_successes_only():
    """Rates count outcomes; steps and the bound average over successful episodes only."""
    recs = [
        pursuit_rec("p", 0, "success", 10, 4),
        pursuit_rec("p", 1, "success", 14, 6),
        pursuit_rec("p", 2, "failure_with_violation", 3, 99),
        pursuit_rec("p", 3, "failure_without_violation", 100, 99),
    ]
    row = tables.pursuit_row("p", recs)
    assert (row.success.value, row.failure_with_violation.value) == (0.5, 0.25)
    assert row.success.lo == pytest.approx(wilson(2, 4)[0])
    assert row.steps_success.value == 12.0 and row.lower_bound_success.value == 5.0
    table = pursuit_table(recs)
    assert table.rows[0][2].startswith("50.0% [")
    assert table.rows[0][5].startswith("12.00 [")


def test_twentyone_table_has_exact_ceiling_row_and_regret():
    """The optimum row is labelled exact; regret = exact expected reward - mean reward."""
    recs = [card_rec("dealer", i, r) for i, r in enumerate([1.0, -1.0, -1.0, 0.0, 1.0])]
    opt = Optimum(win=0.45, loss=0.43, draw=0.12, expected_reward=0.02)
    table = twentyone_table(recs, optimum=opt)
    row = tables.twentyone_row("dealer", recs, 0.02)
    assert row.regret.value == pytest.approx(0.02 - 0.0)
    assert row.regret.hi - row.regret.lo == pytest.approx(row.reward.hi - row.reward.lo)
    assert table.rows[-1][0] == "optimal (exact)" and table.rows[-1][1] == "exact"
    assert table.rows[-1][2] == "45.00%"
    assert table.rows[0][6].startswith("+0.020 [")
    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert parsed[-1]["exact"] == "True" and float(parsed[-1]["win"]) == 0.45


def test_twentyone_table_without_solver_says_so():
    """Without an optimum the table leaves regret empty and notes why."""
    table = twentyone_table([card_rec("a", 0, 1.0)], optimum=None)
    assert table.rows[0][6] == "—"
    assert any("no exact optimum" in n for n in table.notes)


# --------------------------------------------------------------------------- paired


def test_pairing_separates_policies_that_differ_by_004():
    """On shared decks a 0.04 reward gap has a CI excluding 0; unpaired it is ~+-0.19."""
    rng = np.random.default_rng(0)
    b = rng.choice([1.0, -1.0, 0.0], p=[0.42, 0.48, 0.10], size=200)
    a = b.copy()
    losses = np.flatnonzero(b == -1.0)[:4]
    a[losses] = 1.0  # a turns 4 of b's losses into wins: +8 / 200 = +0.04
    recs = [card_rec("a", i, float(x)) for i, x in enumerate(a)]
    recs += [card_rec("b", i, float(x)) for i, x in enumerate(b)]
    res = paired_comparison(recs, "a", "b", "reward")
    assert res.n == 200 and res.n_differ == 4
    assert res.diff.value == pytest.approx(0.04)
    assert res.diff.lo > 0
    assert res.unpaired_half_width > 0.15


def test_paired_steps_use_episodes_both_succeeded():
    """The paired steps difference is taken over episodes where both policies succeeded."""
    recs = [
        pursuit_rec("a", 0, "success", 10),
        pursuit_rec("b", 0, "success", 13),
        pursuit_rec("a", 1, "success", 11),
        pursuit_rec("b", 1, "failure_without_violation", 100),
        pursuit_rec("a", 2, "success", 12),
        pursuit_rec("b", 2, "success", 14),
    ]
    res = paired_comparison(recs, "a", "b", "steps")
    assert res.n == 2 and res.diff.value == pytest.approx(-2.5)
    success = paired_comparison(recs, "a", "b", "success")
    assert success.n == 3 and success.diff.value == pytest.approx(1 / 3)


def test_paired_unknown_policy_lists_known():
    """Pairing a policy the records do not hold fails listing the ones they do."""
    with pytest.raises(UnknownName, match="known: a"):
        paired_comparison([card_rec("a", 0, 1.0)], "a", "ghost")


# --------------------------------------------------------------------------- the paper


def test_paper_file_holds_tables_1_to_3_as_printed():
    """assets/paper_results.json transcribes the paper's three tables with row names."""
    doc = json.loads(paper.PAPER_FILE.read_text())
    t1, t2, t3 = (
        doc["tables"][k]["rows"] for k in ("Pursuit-v0", "PursuitRestricted-v0", "TwentyOne-v0")
    )
    assert len(t1) == 12 and len(t2) == 4 and len(t3) == 12
    by = {r["method"]: r for r in t1}
    assert (
        by["GLM4-9B-KD"]["success_pct"] == 88.5 and by["GLM4-9B-LD"]["avg_steps_success"] == 13.26
    )
    assert by["GLM4-9B (Small)"]["avg_steps_success"] is None
    assert {r["method"]: r for r in t2}["GLM4 (Large)"]["avg_steps_success"] == 18.98
    assert {r["method"]: r for r in t3}["Qwen2.5-7B-LD"]["victory_pct"] == 55.0


def test_paper_column_matches_roles_and_stays_out_of_our_figures():
    """raw/kd/ld/teacher get the paper's row in a labelled column; other policies none."""
    col = paper_column("Pursuit-v0", "GLM4")
    assert col is not None and col.header == "paper (GLM4-9B)"
    recs = [pursuit_rec("scripted", 0, "success", 10), pursuit_rec("kd", 0, "success", 12)]
    table = pursuit_table(recs, paper=col, names={"scripted": "scripted", "kd": "kd"})
    assert table.columns[-1] == "paper (GLM4-9B)"
    assert table.rows[0][-1] == ""
    assert "88.5%" in table.rows[1][-1] and "GLM4-9B-KD" in table.rows[1][-1]
    assert table.rows[1][2].startswith("100.0%")  # our figure, not the paper's 88.5%
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert rows[1]["success_rate"] == "1.0" and rows[1]["paper_success_pct"] == "88.5"


def test_unknown_paper_family_lists_known():
    """An unknown model family fails listing the paper's families."""
    with pytest.raises(UnknownName, match=r"GLM4, LLaMA3, Qwen2\.5"):
        paper_column("Pursuit-v0", "GPT")


def test_report_saves_markdown_and_csv(tmp_path):
    """build_report().save writes table.md and table.csv (and paired.csv when asked)."""
    manifest = {
        "env_id": "Pursuit-v0",
        "env_kwargs": {},
        "seed": 0,
        "episodes": 2,
        "policies": [{"label": "a", "name": "scripted"}, {"label": "b", "name": "raw"}],
    }
    recs = [
        pursuit_rec("a", 0, "success", 10),
        pursuit_rec("a", 1, "success", 12),
        pursuit_rec("b", 0, "failure_with_violation", 4),
    ]
    report = build_report(manifest, recs, paired=[("a", "b")])
    paths = report.save(tmp_path)
    assert [p.name for p in paths] == ["table.md", "table.csv", "paired.csv"]
    md = (tmp_path / "table.md").read_text()
    assert "| a | 2 | 100.0% [" in md and "GLM4-9B (Small)" in md
    assert "incomplete: b" in md
    assert len(list(csv.reader(io.StringIO((tmp_path / "table.csv").read_text())))) == 3


def test_21_point_report_takes_the_ceiling_from_the_solver():
    """The 21-point report's exact row is the solver's (baselines.optimal.solve), regret too."""
    from ld_agents.baselines.optimal import solve

    exact = solve("dealer", open_cards=False)
    manifest = {
        "env_id": "TwentyOne-v0",
        "env_kwargs": {},
        "seed": 0,
        "episodes": 4,
        "policies": [{"label": "d", "name": "dealer"}],
    }
    recs = [card_rec("d", i, r) for i, r in enumerate([1.0, 1.0, -1.0, 0.0])]
    report = build_report(manifest, recs, family=None)
    last = report.main.rows[-1]
    assert last[:3] == ["optimal (exact)", "exact", f"{100 * exact.win:.2f}%"]
    assert last[5] == f"{exact.expected_reward:+.4f}"
    assert report.main.rows[0][6].startswith(f"{exact.expected_reward - 0.25:+.3f} [")


def test_cost_columns_for_llm_rows_only():
    """Policies that record model work get forward passes, tokens and ms per decision
    (summed over episodes, divided by decisions); the others show '-'; no LLM policy, no
    cost columns."""
    llm = []
    for ep, (dec, fwd, tok, sec) in enumerate([(10, 10, 3000, 2.0), (30, 20, 5000, 6.0)]):
        rec = pursuit_rec("raw", ep, "failure_with_violation", dec)
        rec["cost"] = {
            "decisions": dec,
            "forward_passes": fwd,
            "tokens_processed": tok,
            "policy_seconds": sec,
        }
        llm.append(rec)
    plain = [pursuit_rec("scripted", ep, "success", 12) for ep in range(2)]
    table = tables.pursuit_table(plain + llm, ["scripted", "raw"])
    assert table.columns[-3:] == list(tables.COST_COLUMNS)
    assert table.rows[0][-3:] == ["-", "-", "-"]
    assert table.rows[1][-3:] == ["0.75", "200", "200"]  # 30/40, 8000/40, 8 s/40
    header = next(csv.reader(io.StringIO(table.to_csv())))
    assert header[-1] == "ms_per_decision"
    assert "ms / decision" not in tables.pursuit_table(plain).columns
    cards = [card_rec("raw", 0, 1.0) | {"cost": llm[0]["cost"]}, card_rec("dealer", 0, -1.0)]
    t21 = tables.twentyone_table(cards, ["dealer", "raw"], optimum=exact_optimum({}))
    assert t21.rows[1][-3:] == ["1.00", "300", "200"]
    assert all(len(r) == len(t21.columns) for r in t21.rows)  # the exact row padded
