"""The policy-speed study (benchmarks.studies.policy_speed): its bound, its table, and bad
options refused before any model loads."""

from __future__ import annotations

import pytest

from benchmarks.studies import policy_speed
from ld_envs.errors import InvalidArgument

SIZES = {"body_params": 100_000_000, "vocab": 1000, "d_model": 10}


def test_summary_divides_by_the_flop_bound_of_each_round():
    # 100 tokens x 2 x 1e8 = 2e10 FLOP, 5 rows x 2 x 1e4 = 1e5: 20.0001 ms at 1,000 GFLOP/s
    rounds = [
        {
            "seconds": 0.060,
            "gflops": 1000.0,
            "forward_passes": 1,
            "tokens_processed": 100,
            "logit_rows": 5,
        },
        {
            "seconds": 0.040,
            "gflops": 1000.0,
            "forward_passes": 1,
            "tokens_processed": 100,
            "logit_rows": 5,
        },
    ]
    s = policy_speed.summary(rounds, SIZES)
    assert s["ms_per_decision_median"] == 50.0 and s["ms_per_decision_best"] == 40.0
    assert s["flop_bound_ms"] == 20.0
    assert s["x_bound"] == 2.5
    assert s["tokens_processed_per_decision"] == 100


def test_table_has_a_row_per_path():
    row = {
        "ms_per_decision_median": 130.4,
        "ms_per_decision_best": 120.0,
        "forward_passes_per_decision": 0.2,
        "tokens_processed_per_decision": 165.0,
        "logit_rows_per_decision": 4.0,
        "flop_bound_ms": 38.0,
        "x_bound": 3.43,
        "speedup_vs_naive": 110.2,
    }
    result = {
        "decisions": 40,
        "batch": 20,
        "rounds": 2,
        "command": "c",
        "commit": "x",
        "machine": "m",
        "threads": 2,
        "ld": {"trees": row, "naive": dict(row, speedup_vs_naive=1.0), "dtype": "bfloat16"},
    }
    md = policy_speed.to_markdown(result)
    assert "| ld | trees | 130, 120 | 0.2 | 165 | 4 | 38 | 3.43 | 110.2x |" in md
    assert "| ld | naive |" in md and "bfloat16 |" not in md


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policies", "ld,gpt"], "--policies: unknown"),
        (["--batch", "0"], "--batch must be an int >= 1"),
        (["--naive", "-1"], "--naive must be an int >= 0"),
    ],
)
def test_bad_options_are_refused_before_work(argv, message, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(policy_speed, "time_paths", no_work)
    with pytest.raises(InvalidArgument, match=message):
        policy_speed.main(argv)
