"""The selection benchmark's bookkeeping (the model runs are in benchmarks/, not here)."""

from __future__ import annotations

import pytest

from benchmarks.studies.ld_selection import AS_PLAYED, _add_as_played


def test_as_played_counts_no_rule_boards_with_pursuit_v0_candidates():
    """'all, as played' takes the no-rule constraints items from the Pursuit-v0 row (the
    emergency function unlisted) and every other stage as it is; 'all' is not re-counted."""
    n = {
        "candidates": 4,
        "all": 12,
        "constraints (restricted area)": 1,
        "constraints": 3,
        "constraints (Pursuit-v0 candidates)": 3,
        "select": 4,
    }
    acc = {
        "candidates": 1.0,
        "all": 0.5,
        "constraints (restricted area)": 1.0,
        "constraints": 0.0,
        "constraints (Pursuit-v0 candidates)": 2 / 3,
        "select": 0.25,
    }
    _add_as_played(acc, n)
    assert n[AS_PLAYED] == 12
    assert acc[AS_PLAYED] == pytest.approx((4 + 1 + 2 + 1) / 12)


def test_as_played_is_absent_without_a_pursuit_v0_row():
    acc, n = {"hand": 1.0, "all": 1.0}, {"hand": 2, "all": 2}
    _add_as_played(acc, n)
    assert AS_PLAYED not in acc
