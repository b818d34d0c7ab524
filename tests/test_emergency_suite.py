"""The emergency suite's reference functions (no model): every rule's extension loads
into the pursuit base, and its code returns its own examples' expected lists."""

from __future__ import annotations

import json

import pytest

from benchmarks.emergency_suite import reference_extension, suite_rules
from ld_agents.ld.base import shipped_base
from ld_agents.ld.sandbox import SandboxWorker
from ld_envs.errors import InvalidArgument


@pytest.mark.parametrize("rule", suite_rules(), ids=lambda r: r.label)
def test_reference_extension_loads_and_matches_its_examples(rule, tmp_path):
    path = reference_extension(rule, tmp_path)
    data = json.loads(path.read_text())
    (entry,) = data["functions"]
    examples = entry["examples"]
    assert examples and examples[0]["expected"] != examples[0]["prev"]
    base = shipped_base("pursuit")
    (added,) = base.extend(data, origin=str(path))  # the schema needs its examples
    with SandboxWorker() as worker:
        for ex in examples:
            res = base.run_stage(worker, added.name, ex["state"], ex["prev"])
            assert res.ok and res.value == ex["expected"]


def test_pass_at_k_is_the_unbiased_estimate():
    from benchmarks.emergency_suite import pass_at_k

    assert pass_at_k(16, 0, 4) == 0.0 and pass_at_k(16, 16, 1) == 1.0
    assert pass_at_k(48, 12, 1) == pytest.approx(0.25)
    # one pass in 16: a draw of 4 holds it with chance 4/16
    assert pass_at_k(16, 1, 4) == pytest.approx(0.25)
    assert pass_at_k(16, 2, 16) == 1.0
    with pytest.raises(InvalidArgument, match="pass@k"):
        pass_at_k(4, 1, 8)
