"""``ld-gym reproduce`` (:mod:`benchmarks.reproduce`): the table sweeps' specs, the record it
keeps, resuming."""

from __future__ import annotations

import json

import pytest

from benchmarks import reproduce
from benchmarks.cli.main import main
from ld_envs.errors import UnknownName


def _config(tmp_path, **kw):
    return reproduce.ReproduceConfig(out=tmp_path, **kw)


def test_specs_follow_the_paper_settings(tmp_path):
    """Table 1 runs twice (greedy and raw-model evader), the teacher row appears only with
    a teacher model, and the LLM other side gets the small model."""
    config = _config(tmp_path, teacher_model="openai:http://127.0.0.1:9/v1?model=big")
    sweeps = {s.folder: s for s in reproduce.selected(config)}
    assert set(sweeps) == {"table1-greedy", "table1-raw", "table2", "table3-dealer", "table3-raw"}
    raw_evader = reproduce.sweep_spec(sweeps["table1-raw"], config)
    assert raw_evader.env_kwargs == {"evader": "raw", "evader_kwargs": {"model": config.model}}
    labels = [p.label for p in raw_evader.policies]
    assert labels[0] == "teacher" and {"raw", "kd", "ld", "rl", "scripted"} <= set(labels)
    assert raw_evader.policies[0].kwargs == {"model": config.teacher_model}
    dealer = reproduce.sweep_spec(sweeps["table3-dealer"], _config(tmp_path))
    assert "teacher" not in [p.label for p in dealer.policies]
    assert "optimal" in [p.label for p in dealer.policies]
    # the exact optimum is a best response to the dealer rule, not to an LLM opponent
    raw_opponent = reproduce.sweep_spec(sweeps["table3-raw"], _config(tmp_path))
    assert "optimal" not in [p.label for p in raw_opponent.policies]
    assert dealer.env_kwargs == {"opponent": "dealer"}
    assert reproduce.sweep_spec(sweeps["table2"], config).env_id == "PursuitRestricted-v0"
    with pytest.raises(UnknownName, match="known: 1, 2, 3"):
        reproduce.selected(_config(tmp_path, tables="4"))


def test_students_are_pinned_to_their_adapters_content(tmp_path):
    """The kd and ld rows pin the shipped adapters' content fingerprints, so a retrained
    adapter cannot add rows to a sweep of the old one (the manifest check refuses)."""
    from ld_agents import kd
    from ld_agents.ld import policy as ld
    from ld_agents.lora import adapter_sha256

    config = _config(tmp_path)
    sweeps = {s.folder: s for s in reproduce.selected(config)}
    for folder, game in (("table2", "pursuit"), ("table3-dealer", "twentyone")):
        by_name = {p.name: p for p in reproduce.sweep_spec(sweeps[folder], config).policies}
        ld_sha = adapter_sha256(ld.default_adapter(game))
        kd_sha = adapter_sha256(kd.default_adapter(sweeps[folder].env_id))
        assert by_name["ld"].kwargs == {"adapter_sha256": ld_sha}
        assert by_name["kd"].kwargs == {"adapter_sha256": kd_sha}
    assert adapter_sha256(ld.default_adapter("pursuit")) != adapter_sha256(
        ld.default_adapter("twentyone")
    )


def test_runs_records_and_resumes(tmp_path, capsys):
    """A small run writes each sweep's table, the log (command, commit, machine, wall time)
    and the README; running it again resumes: no episode runs twice."""
    argv = [
        "reproduce", "--tables", "1,3", "--only", "table1-greedy,table3-dealer",
        "--policies", "scripted,optimal", "--episodes", "3", "--out", str(tmp_path),
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    log = json.loads((tmp_path / "reproduce.json").read_text())
    assert set(log) == {"table1-greedy", "table3-dealer"}
    run = log["table3-dealer"]["runs"][0]
    assert run["episodes_run"] == 6 and run["machine"]["cpus"] >= 1 and run["commit"]
    assert log["table1-greedy"]["runs"][0]["episodes_run"] == 3  # optimal is 21 points only
    readme = (tmp_path / "README.md").read_text()
    assert "| optimal (exact) |" in readme and "--episodes 3" in readme
    lines = (tmp_path / "table3-dealer" / "episodes.jsonl").read_text().splitlines()
    assert main(argv) == 0
    again = json.loads((tmp_path / "reproduce.json").read_text())
    assert again["table3-dealer"]["runs"][1]["episodes_run"] == 0
    assert (tmp_path / "table3-dealer" / "episodes.jsonl").read_text().splitlines() == lines
