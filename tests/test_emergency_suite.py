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


def test_every_llm_policy_reads_the_rule_as_given(tmp_path):
    """LD, KD and raw read the same words, the ones the writer read and the generated
    function's manual line quotes (not the rule kind's own wording)."""
    from benchmarks.emergency_suite import policy_specs
    from ld_envs.pursuit_rules import make_rule

    for rule in suite_rules():
        if rule.spec is None:
            assert rule.told == {}  # the area: the state carries the zone
            continue
        specs = {
            p.label: p.kwargs
            for p in policy_specs(rule, tmp_path / "g.json", tmp_path / "r.json",
                                  ["ld_generated", "ld_reference", "kd", "raw"], "hf:embedded")
        }  # fmt: skip
        for label in ("ld_generated", "ld_reference"):
            (told,) = specs[label]["rules"]
            assert make_rule(told, 21).text == rule.text
            assert make_rule(told, 21).text != make_rule(rule.spec, 21).text
        assert specs["kd"]["rule_text"] == specs["raw"]["rule_text"] == rule.text


def test_suite_report_shows_both_selection_checks(tmp_path):
    from benchmarks.emergency_suite import format_suite

    rules = [r for r in suite_rules() if r.label in ("edge", "restricted_area")]
    selection = {
        "edge": {"states": 40, "picked_when_in_force": 39, "not_picked_when_absent": 38,
                 "picked_env_wording": 3, "function": "generated"},
        "restricted_area": {"states": 40, "picked_when_in_force": 37,
                            "not_picked_when_absent": 40, "picked_env_wording": None},
    }  # fmt: skip
    text = format_suite(rules, {}, tmp_path, selection)
    assert "| edge | generated | 40 | 39 | 38 | 3 |" in text
    assert "| restricted_area | generated | 40 | 37 | 40 | (the same) |" in text


def test_a_run_of_some_rules_keeps_the_others_in_the_report(tmp_path):
    """``--only`` limits what runs; suite.md still shows every rule the folder holds."""
    from benchmarks.emergency_suite import SuiteConfig, run_suite

    sets = [{"passed": 1, "first_pass": 2}]
    writing = {r.label: {"samples_per_set": 4, "sets": sets, "function": None}
               for r in suite_rules()}  # fmt: skip
    (tmp_path / "writing.json").write_text(json.dumps(writing))
    path = run_suite(SuiteConfig(out=tmp_path, only=("wall",), write_only=True, samples=4))
    text = path.read_text()
    for rule in suite_rules():
        assert f"| {rule.label} | {rule.split} | 4 | 1 |" in text


def test_writing_recorded_with_other_settings_is_not_resumed(tmp_path):
    """A rule that writing.json records as written by another model, with other samples
    or seeds, is refused before any model is built (the suite would mix two runs); the
    same settings resume without writing again."""
    from benchmarks.emergency_suite import write_functions

    rule = suite_rules()[0]
    spec = "openai:http://127.0.0.1:9/v1?model=a"
    entry = {"model": spec, "samples_per_set": 2, "text": rule.text, "sets": [{"seed": 7}]}
    (tmp_path / "writing.json").write_text(json.dumps({rule.label: entry}))
    same = write_functions([rule], tmp_path, 2, [7], spec, None)
    assert same == {rule.label: entry}
    other = spec.replace("model=a", "model=b")
    for args in ((2, [7], other), (4, [7], spec), (2, [0, 1000], spec)):
        with pytest.raises(InvalidArgument, match="other settings"):
            write_functions([rule], tmp_path, *args, None)
