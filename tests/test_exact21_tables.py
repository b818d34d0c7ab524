"""Table 3's exact columns and the exact21 record (no model, no walk)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.exact21 import Exact21Config, load_exact21, parse_assume, to_markdown
from benchmarks.optimum import Optimum, exact_column
from benchmarks.studies.exact21 import build_parser
from benchmarks.tables import EXACT_COLUMNS, twentyone_table
from ld_envs.errors import InvalidArgument


def record() -> dict[str, Any]:
    exact = {
        "kind": "exact", "win": 0.44, "loss": 0.46, "draw": 0.10, "expected_reward": -0.02,
        "regret": 0.022, "detail": "class", "order": "none", "observations": 10,
        "seconds": 1.0, "assumed": "",
    }  # fmt: skip
    estimate = {
        "kind": "estimate", "detail": "card", "order": "all", "total": 1e6,
        "seconds_per_observation": 0.5, "projected_seconds": 5e5, "nodes_per_round": [1.0],
    }  # fmt: skip
    return {
        "command": "python -m benchmarks.studies.exact21", "commit": "abc", "created": "now",
        "machine": {"cpu_model": "cpu", "cpus": 2, "flags": ["avx2"]},
        "load_average_start": [1.0], "load_average_end": [1.0], "wall_seconds": 60.0,
        "opponent": "dealer", "open_cards": False,
        "ceiling": {"win": 0.456, "loss": 0.454, "draw": 0.09, "expected_reward": 0.002},
        "rows": {"scripted": exact, "raw": estimate},
    }  # fmt: skip


def card(policy: str, ep: int, reward: float) -> dict[str, Any]:
    outcome = "win" if reward > 0 else "loss" if reward < 0 else "draw"
    return {"policy": policy, "episode": ep, "outcome": outcome, "reward": reward}


def test_exact_column_reads_walked_rows_and_says_why_not() -> None:
    """Walked rows give figures; estimated ones give the walk's size as the reason."""
    col = exact_column({"opponent": "dealer"}, ["scripted", "raw", "kd"], record())
    assert col.rows["scripted"].regret == pytest.approx(0.022)
    assert "1,000,000 observations" in col.missing["raw"]
    assert col.missing["kd"] == "not in the exact21 record"


def test_exact_column_shows_a_student_only_beside_the_adapter_it_walked() -> None:
    """An exact row walked with another adapter than the sweep row ran (or recording none)
    is not shown beside it; the same adapter is, and so is a policy without a pin."""
    rec = record()
    rec["rows"]["ld"] = {**rec["rows"]["scripted"], "policy_kwargs": {"adapter_sha256": "aa"}}
    rec["rows"]["kd"] = dict(rec["rows"]["scripted"])  # records no adapter
    same = exact_column({"opponent": "dealer"}, ["ld", "scripted"], rec, pins={"ld": "aa"})
    assert same.rows["ld"].regret == pytest.approx(0.022) and "ld" not in same.missing
    other = exact_column({"opponent": "dealer"}, ["ld"], rec, pins={"ld": "bb"})
    assert "ld" not in other.rows
    assert "adapter aa" in other.missing["ld"] and "adapter bb" in other.missing["ld"]
    legacy = exact_column({"opponent": "dealer"}, ["kd", "scripted"], rec, pins={"kd": "cc"})
    assert "does not record" in legacy.missing["kd"] and "scripted" in legacy.rows


def test_first_decision_note_needs_the_walked_adapter() -> None:
    """The LD student's stage note is shown only for the adapter the stage study scored,
    and a first decision that loses nothing says so."""
    rec = record()
    rec["stages"] = {
        "student_kwargs": {"adapter_sha256": "aa"}, "student_first": -0.01,
        "first_decision_loss": 0.0, "loss_alone": {"decide": 0.0, "hand": 0.0},
        "accuracy": {"decide": 0.971, "hand": 1.0},
    }  # fmt: skip
    notes = exact_column({"opponent": "dealer"}, ["ld"], rec, pins={"ld": "aa"}).notes
    assert any("loses nothing" in n and "97.1%" in n for n in notes)
    notes = exact_column({"opponent": "dealer"}, ["ld"], rec, pins={"ld": "bb"}).notes
    assert not any("first decision" in n for n in notes)


def test_exact_column_refuses_another_opponent() -> None:
    """A record for the dealer gives nothing against random, and an LLM opponent says why."""
    col = exact_column({"opponent": "random"}, ["scripted"], record())
    assert not col.rows and "no exact21 record" in col.missing["scripted"]
    llm = exact_column({"opponent": "raw"}, ["scripted"], record())
    assert "reads card ids in order" in llm.missing["scripted"]


def test_table_shows_exact_cells_beside_sampled_ones() -> None:
    """The exact columns follow the regret column; a missing row shows dashes."""
    recs = [card("scripted", 0, 1.0), card("raw", 0, -1.0)]
    col = exact_column({"opponent": "dealer"}, ["scripted", "raw"], record())
    opt = Optimum(0.456, 0.454, 0.09, 0.002)
    table = twentyone_table(recs, ["scripted", "raw"], opt, exact=col)
    i = table.columns.index(EXACT_COLUMNS[0])
    assert table.columns[i - 1] == "regret vs optimum"
    assert table.rows[0][i : i + 3] == ["44.00% / 46.00% / 10.00%", "-0.0200", "0.0220"]
    assert table.rows[1][i : i + 3] == ["—", "—", "—"]
    assert all(len(r) == len(table.columns) for r in table.rows)
    assert any("no exact figures for raw" in n for n in table.notes)


def test_markdown_of_a_record() -> None:
    """The record's Markdown lists the exact and estimated rows."""
    text = to_markdown(record())
    assert "| scripted | exact |" in text and "| raw | estimate |" in text


def test_committed_record_matches_the_solver() -> None:
    """The committed record's optimal row is the solver's value, and every row is sane."""
    from ld_agents.baselines.optimal import solve

    rec = load_exact21()
    if rec is None:
        pytest.skip("no committed exact21 record")
    sol = solve(rec["opponent"], rec["open_cards"])
    assert rec["rows"]["optimal"]["expected_reward"] == pytest.approx(
        sol.expected_reward, abs=1e-12
    )
    for row in rec["rows"].values():
        if row["kind"] == "exact":
            assert row["win"] + row["loss"] + row["draw"] == pytest.approx(1.0)
            assert row["regret"] >= -1e-12


def test_config_and_options_are_checked() -> None:
    """Bad options are refused by name; every study option has help."""
    with pytest.raises(InvalidArgument, match="opponent"):
        Exact21Config(opponent="raw")
    with pytest.raises(InvalidArgument, match="DETAIL,ORDER"):
        parse_assume("class")
    assert parse_assume("rank, all") == ("rank", "all")
    parser = build_parser()
    assert all(a.help for a in parser._actions)


def test_adapter_pins_read_an_unpinned_row_as_the_adapter_it_names_now() -> None:
    """A pinned row keeps its pin; an unpinned ld or kd row gets the fingerprint of the
    adapter it loads now (shipped by default); ld with no adapter is the base model."""
    from benchmarks.reproduce import shipped_adapter_sha
    from benchmarks.tables import adapter_pins
    from ld_agents.ld.policy import default_adapter
    from ld_agents.lora import adapter_sha256

    def manifest(ld_kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "env_id": "TwentyOne-v0",
            "policies": [
                {"name": "scripted", "label": "scripted", "kwargs": {}},
                {"name": "kd", "label": "kd", "kwargs": {"adapter_sha256": "kk"}},
                {"name": "ld", "label": "ld", "kwargs": ld_kwargs},
            ],
        }

    shipped = shipped_adapter_sha("ld", "TwentyOne-v0")
    assert adapter_pins(manifest({})) == {"scripted": None, "kd": "kk", "ld": shipped}
    assert adapter_pins(manifest({"adapter_sha256": "ab"}))["ld"] == "ab"
    assert adapter_pins(manifest({"adapter": None}))["ld"] == "none"
    other = default_adapter("pursuit")
    assert adapter_pins(manifest({"adapter": str(other)}))["ld"] == adapter_sha256(other)
    assert adapter_pins(manifest({"adapter": "no/such/dir"}))["ld"].startswith("missing")


def test_a_pinned_rl_row_keeps_its_exact_figures():
    """bench pins the rl model file (model_sha256); the exact walk's record, made with the
    default kwargs, still matches the row (the pin is read like the model it names)."""
    from benchmarks.optimum import policy_setting

    pinned = policy_setting("rl", {"model_sha256": "ab" * 32}, {})
    assert pinned == policy_setting("rl", {}, {})
