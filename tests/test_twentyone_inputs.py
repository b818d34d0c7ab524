"""21 points: exact figures matched to a row's kwargs, one regret sign, the optimal
policy refused as the opponent, and bad policy arguments refused up front."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

import ld_agents
import ld_envs  # noqa: F401  (registers the envs)
from benchmarks.games import check_sweep_inputs
from benchmarks.optimum import Optimum, exact_column_rows
from benchmarks.specs import PolicySpec
from benchmarks.tables import build_report, twentyone_table
from ld_envs.errors import InvalidArgument

ENV = "TwentyOne-v0"


def card(policy: str, ep: int, reward: float) -> dict[str, Any]:
    outcome = "win" if reward > 0 else "loss" if reward < 0 else "draw"
    return {"policy": policy, "episode": ep, "outcome": outcome, "reward": reward}


def fake_record() -> dict[str, Any]:
    row = {
        "kind": "exact", "win": 0.44, "loss": 0.46, "draw": 0.10, "expected_reward": -0.02,
        "regret": 0.022, "assumed": "",
    }  # fmt: skip
    return {
        "opponent": "dealer", "open_cards": False,
        "ceiling": {"win": 0.456, "loss": 0.454, "draw": 0.09, "expected_reward": 0.002},
        "rows": {"scripted": dict(row), "rl": dict(row)},
    }  # fmt: skip


# ----------------------------------------------------------- 1. exact figures per kwargs


def test_exact_figures_follow_the_rows_kwargs() -> None:
    """A scripted row run with stand_at=12 shows stand_at=12's exact figures (from the
    solver), not the record's default scripted; a default row keeps the record's."""
    manifest = {
        "env_id": ENV, "env_kwargs": {}, "seed": 0, "episodes": 2,
        "policies": [
            {"name": "scripted", "kwargs": {}, "label": "s17"},
            {"name": "scripted", "kwargs": {"stand_at": 12}, "label": "s12"},
        ],
    }  # fmt: skip
    recs = [card(p, i, r) for p in ("s17", "s12") for i, r in enumerate([1.0, -1.0])]
    report = build_report(manifest, recs, family=None)
    rows = {r[0]: r for r in report.main.rows}
    i = report.main.columns.index("exact E")
    assert rows["s17"][i] == "-0.0416"
    assert rows["s12"][i] == "-0.0707"
    assert rows["s12"][i - 1] == "43.14% / 50.21% / 6.64%"
    assert float(rows["s12"][i + 1]) == pytest.approx(0.0020 + 0.0707, abs=2e-4)
    assert any("s12 (stand_at=12)" in n for n in report.main.notes)


def test_a_walked_policy_with_other_kwargs_gets_no_exact_figure() -> None:
    """A policy the solver cannot evaluate, run with kwargs the record did not walk, shows
    dashes and says why; the seed and values equal to the defaults change nothing."""
    policies = [
        {"name": "rl", "kwargs": {"deterministic": False}, "label": "rl-x"},
        {"name": "rl", "kwargs": {"seed": 3}, "label": "rl"},
        {"name": "scripted", "kwargs": {"stand_at": 17}, "label": "scripted"},
    ]
    col = exact_column_rows({}, policies, fake_record(), ceiling=0.002)
    assert "rl-x" not in col.rows and "deterministic=False" in col.missing["rl-x"]
    assert col.rows["rl"].regret == pytest.approx(0.022)
    assert col.rows["scripted"].regret == pytest.approx(0.022)  # the record's, unchanged
    table = twentyone_table([card("rl-x", 0, 1.0)], ["rl-x"], names={"rl-x": "rl"}, exact=col)
    assert table.rows[0][-3:] == ["—", "—", "—"]
    assert any("no exact figures for rl-x" in n for n in table.notes)


# ----------------------------------------------------------------- 2. one regret sign


def test_sampled_and_exact_regret_share_one_sign() -> None:
    """Both regrets are optimum - policy: a policy below the ceiling has a positive
    sampled regret (as its exact one), the notes say so."""
    opt = Optimum(win=0.45, loss=0.45, draw=0.10, expected_reward=0.002)
    col = exact_column_rows({}, [{"name": "scripted", "label": "scripted"}], fake_record())
    recs = [card("scripted", i, r) for i, r in enumerate([-1.0, -1.0, 1.0, 0.0])]
    table = twentyone_table(recs, ["scripted"], opt, exact=col)
    row = table.rows[0]
    sampled = float(row[table.columns.index("regret vs optimum")].split()[0])
    exact = float(row[table.columns.index("exact regret")])
    assert sampled == pytest.approx(0.002 - (-0.25), abs=1e-3) and sampled > 0
    assert exact > 0
    text = " ".join(table.notes)
    assert "regret vs optimum = that expected reward - the mean reward" in text
    assert "mean reward - that expected reward" not in text


# ------------------------------------------------------- 3. optimal is the agent's seat


def test_optimal_is_refused_as_the_opponent() -> None:
    with pytest.raises(InvalidArgument, match="only plays the agent's seat"):
        gym.make(ENV, opponent=ld_agents.make("optimal", ENV))
    with pytest.raises(InvalidArgument, match="only plays the agent's seat"):
        check_sweep_inputs(ENV, {"opponent": "optimal"}, [PolicySpec("scripted", {})])
    check_sweep_inputs(ENV, {"opponent": "dealer"}, [PolicySpec("optimal", {})])


# ------------------------------------------------------------ 4. arguments refused


@pytest.mark.parametrize(
    ("name", "kwargs", "param"),
    [
        ("dealer", {"stands_at": 0}, "stands_at"),
        ("dealer", {"stands_at": 40}, "stands_at"),
        ("dealer", {"stands_at": 17.5}, "stands_at"),
        ("dealer", {"stands_at": True}, "stands_at"),
        ("scripted", {"stand_at": -1}, "stand_at"),
        ("scripted", {"stand_at": 17.5}, "stand_at"),
        ("scripted", {"max_bust": "0.5"}, "max_bust"),
        ("random", {"p_hit": "0.5"}, "p_hit"),
        ("random", {"p_hit": True}, "p_hit"),
        ("optimal", {"open_cards": "no"}, "open_cards"),
    ],
)
def test_bad_policy_arguments_are_refused(name: str, kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidArgument, match=param):
        ld_agents.make(name, ENV, **kwargs)


def test_good_policy_arguments_are_kept() -> None:
    assert ld_agents.make("dealer", ENV, stands_at=15).stands_at == 15
    assert ld_agents.make("scripted", ENV, stand_at=12).stand_at == 12
    assert ld_agents.make("random", ENV, p_hit=1).p_hit == 1.0


def test_exact_evaluate_wants_a_real_bool() -> None:
    from ld_agents.baselines.optimal import estimate_queries, exact_evaluate

    with pytest.raises(InvalidArgument, match="open_cards must be True or False"):
        exact_evaluate("scripted", "dealer", open_cards="yes", progress=False)
    with pytest.raises(InvalidArgument, match="open_cards must be True or False"):
        estimate_queries("scripted", "dealer", open_cards="yes")


def test_exact21_config_wants_a_real_bool() -> None:
    from benchmarks.exact21 import Exact21Config

    with pytest.raises(InvalidArgument, match="open_cards must be True or False"):
        Exact21Config(open_cards="no")  # type: ignore[arg-type]


def test_build_report_arguments(tmp_path) -> None:
    """One pair given as a bare tuple is refused clearly; family 'none' means no paper
    column (as on the command line); a report saves into a folder not made yet."""
    from benchmarks.sweep import PolicySpec, RunOptions, SweepSpec, run_sweep
    from benchmarks.tables import build_report

    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted"), PolicySpec("random")], 2, 0)
    result = run_sweep(spec, tmp_path / "s", RunOptions(progress=False))
    with pytest.raises(InvalidArgument, match="list of \\(label, label\\) pairs"):
        build_report(result.manifest, result.records, paired=("scripted", "random"))
    report = build_report(result.manifest, result.records, family="none")
    assert "paper" not in report.main.to_text()
    saved = report.save(tmp_path / "new" / "folder")
    assert all(p.is_file() for p in saved)


def test_exact_figures_come_from_the_record_of_the_sweeps_setting() -> None:
    """A sweep against the random opponent (or the dealer with open cards) gets the exact
    figures walked in that setting, not 'no record' because the default one is the dealer's."""
    from benchmarks.exact21 import committed_folder, load_exact21
    from benchmarks.optimum import exact_column_rows

    for opponent, open_cards in (("random", False), ("dealer", True)):
        record = load_exact21(committed_folder(opponent, open_cards))
        assert (record["opponent"], record["open_cards"]) == (opponent, open_cards)
        env_kwargs = {"opponent": opponent, "open_cards": open_cards}
        column = exact_column_rows(env_kwargs, [{"name": "scripted", "kwargs": {}}])
        assert column.rows["scripted"].expected_reward == pytest.approx(
            record["rows"]["scripted"]["expected_reward"]
        )
