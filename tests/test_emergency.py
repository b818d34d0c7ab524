"""Emergencies: a new rule's text -> functions written by a model, validated against the
rule's semantics, the first that passes added to the base (never one that fails)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.cli.main import main as cli_main
from ld_agents.ld import rule_writer as rw
from ld_agents.ld.emergency import (
    UnrelatedRule,
    check_function_name,
    cut_completion,
    relate_rule,
    save_result,
    write_rule_function,
)
from ld_agents.ld.sandbox import SandboxWorker
from ld_envs import pursuit_rules as pr
from ld_envs.errors import InvalidArgument

GUARD = {"kind": "guard", "pursuer": "A", "other": "B", "axis": "column"}
GUARD_TEXT = "Pursuer B may not stop in the same column as pursuer A."
RIGHT = "    ps = state['pursuers']\n    return [[c for c in cells if not (i == 1 and c[0] == ps[0][0])] for i, cells in enumerate(prev)]\n"  # noqa: E501
WRONG = "    ps = state['pursuers']\n    return [[c for c in cells if not (c[0] == ps[0][0])] for i, cells in enumerate(prev)]\n"  # noqa: E501


@pytest.fixture(scope="module")
def worker() -> Iterator[SandboxWorker]:
    with SandboxWorker() as w:
        yield w


@pytest.mark.parametrize("kind", list(pr.KINDS))
def test_reference_code_passes_its_own_rule_and_fails_others(kind, worker):
    """The semantic validator tells right from wrong: each kind's reference function
    passes its rule, and the function of another drawn rule of the same kind fails."""
    rng = np.random.default_rng(1)
    rule = rw.random_rule(kind, rng)
    assert rw.check_rule_function(rw.reference_source(rule, "f"), "f", worker, rule).ok
    other = rw.random_rule(kind, rng)
    while (other.params, other.pieces) == (rule.params, rule.pieces):
        other = rw.random_rule(kind, rng)
    verdict = rw.check_rule_function(rw.reference_source(other, "f"), "f", worker, rule)
    assert not verdict.ok and verdict.failure


def test_without_semantics_only_the_generic_checks_run(worker):
    wrong = "def f(state, prev):\n" + WRONG
    semantic = rw.check_rule_function(wrong, "f", worker, pr.make_rule(GUARD, 21))
    generic = rw.check_rule_function(wrong, "f", worker, semantics=False)
    assert not semantic.ok and "pursuer" in semantic.failure
    assert generic.ok and generic.checks == list(rw.GENERIC_CHECKS)
    adds = "def f(state, prev):\n    return [cells + [[0, 0]] for cells in prev]\n"
    assert "not in its input" in rw.check_rule_function(adds, "f", worker, semantics=False).failure


@pytest.mark.parametrize("cast", ["c[0] * 1.0, c[1] * 1.0", "c[0], c[1] == c[1]"])
def test_cells_of_another_type_fail_even_when_equal(cast, worker):
    """[3.0, 14.0] equals [3, 14] but is no cell: the stage's own type check refuses it
    (a function passing with it would write an extension its base cannot load)."""
    source = (
        "def f(state, prev):\n"
        f"    return [[[{cast}] for c in cells if c[0] != state['pursuers'][0][0]] "
        "for i, cells in enumerate(prev)]\n"
    )
    verdict = rw.check_rule_function(source, "f", worker, semantics=False)
    assert not verdict.ok and "not an [x, y] cell" in verdict.failure, verdict


@pytest.mark.parametrize("name", ["_drop_cells", "\uff44rop_cells", "\ufb01lter_cells", "class", 3])
def test_a_function_name_that_could_never_load_is_refused_first(name):
    """Names the sandbox refuses ('_...') or Python renames (fullwidth letters and
    ligatures are NFKC-normalised in source) are refused before any model runs."""
    with pytest.raises(InvalidArgument, match="NFKC"):
        check_function_name(name)
    assert check_function_name("drop_zellen_\u00fc") == "drop_zellen_\u00fc"


def test_relate_rule_places_specs_kinds_and_texts_and_refuses_the_unrelated():
    assert relate_rule(GUARD_TEXT, GUARD).semantics
    assert relate_rule("x", "restricted_area").kind == rw.AREA_KIND
    text_only = relate_rule("No pursuer may stop on a cell whose x and y are both odd.")
    assert text_only.stage == "constraints" and not text_only.semantics
    with pytest.raises(UnrelatedRule, match=r"handles rules that forbid cells.*guard"):
        relate_rule("The dealer must stand on soft 17.")
    with pytest.raises(pr.InvalidRule, match="other"):
        relate_rule(GUARD_TEXT, dict(GUARD, other="A"))


def test_cut_completion_keeps_the_body_only():
    assert cut_completion(RIGHT + "\ndef more():\n    pass\n") == RIGHT
    assert cut_completion("    return prev\nprint(1)\n") == "    return prev\n"


class _Writer(BaseHTTPRequestHandler):
    """An OpenAI-compatible writer: sample seeds 0 and 1 answer wrong, the others right."""

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send({"data": [{"id": "writer"}]})

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        assert req["temperature"] == 0.8 and req["prompt"].endswith("(state, prev):\n")
        self._send({"choices": [{"text": WRONG if req["seed"] < 2 else RIGHT}]})


@pytest.fixture()
def writer_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Writer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_samples_are_judged_and_only_a_passing_one_is_added(writer_url, tmp_path, worker):
    result = write_rule_function(
        GUARD_TEXT, GUARD, model=f"openai:{writer_url}?model=writer", samples=4, worker=worker
    )
    assert [s.ok for s in result.samples] == [False, False, True, True]
    assert result.first_pass == 3 and result.passed == 2
    assert set(rw.SEMANTIC_CHECKS) <= set(result.checks)
    ext = result.extension()
    entry = ext["functions"][0]
    assert entry["stage"] == "constraints" and entry["right_when"] == "new_rule_in_force"
    assert GUARD_TEXT in entry["when_to_call"] and entry["source"].endswith(RIGHT)
    out, rjson, _ = save_result(result, tmp_path / "ext.json", tmp_path / "rep", "g")
    assert out is not None and json.loads(rjson.read_text())["first_pass"] == 3
    with pytest.raises(InvalidArgument, match="--overwrite"):
        save_result(result, tmp_path / "ext.json", tmp_path / "rep", "g")
    none = write_rule_function(
        GUARD_TEXT, GUARD, model=f"openai:{writer_url}?model=writer", samples=2, worker=worker
    )
    with pytest.raises(InvalidArgument, match="never added"):
        none.extension()


def test_a_generated_function_joins_the_base_and_the_oracle_selects_it_when_in_force(
    writer_url, tmp_path, worker
):
    import gymnasium as gym

    import ld_agents

    result = write_rule_function(
        GUARD_TEXT, GUARD, model=f"openai:{writer_url}?model=writer", samples=3, worker=worker
    )
    path, _, _ = save_result(result, tmp_path / "ext.json", tmp_path, "g")
    env = gym.make("Pursuit-v0", rules=[GUARD])
    obs, _ = env.reset(seed=2)
    policy = ld_agents.make("ld_oracle", "Pursuit-v0", rules=[GUARD], extensions=[path])
    try:
        state = policy.state(obs)
        assert policy.base.right_function("constraints", state) == result.name
        policy.rule_text = None  # the same base with no rule in force: not selected
        assert policy.base.right_function("constraints", policy.state(obs)) == "no_extra_rule"
    finally:
        policy.close()


def test_cli_writes_under_runs_by_default(writer_url, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["emergency", GUARD_TEXT, "--rule", json.dumps(GUARD), "--samples", "3"]
    assert cli_main([*argv, "--model", f"openai:{writer_url}?model=writer"]) == 0
    exts = list((tmp_path / "runs" / "emergency").glob("*.json"))
    assert len(exts) == 1 and json.loads(exts[0].read_text())["kind"] == "extension"
    printed = capsys.readouterr().out
    assert "3 samples, 1 passed" in printed and "first pass at sample 3" in printed


@pytest.mark.llm
def test_embedded_writer_samples_are_reproducible(worker):
    """The real embedded model with the shipped writer adapter: two samples at a fixed
    seed; the same seed gives the same code, and each verdict is the validator's."""
    if not (rw_adapter := Path("assets/adapters/ld-pursuit-writer/adapter")).is_dir():
        pytest.skip("no shipped writer adapter")
    rule = {"kind": "block", "cells": [6, 5, 9, 8], "pieces": "pursuers"}
    text = rw.wording(pr.make_rule(rule, 21), rw.HELD_OUT_WORDING)
    runs = [
        write_rule_function(text, rule, adapter=rw_adapter, samples=2, seed=7, worker=worker)
        for _ in range(2)
    ]
    assert [s.source for s in runs[0].samples] == [s.source for s in runs[1].samples]
    for s in runs[0].samples:
        again = rw.check_rule_function(s.source, runs[0].name, worker, pr.make_rule(rule, 21))
        assert again.ok == s.ok


def test_a_written_function_records_the_writer_adapter_fingerprint(tmp_path):
    """The extension's provenance pins the writer adapter (content fingerprint), so a file
    written by an earlier writer is told apart from the shipped one's."""
    from ld_agents.ld.emergency import _spec_adapter_sha256
    from ld_agents.lora import adapter_sha256

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    assert _spec_adapter_sha256(f"hf:embedded?adapter={adapter}&dtype=float32") == adapter_sha256(
        adapter
    )
    assert _spec_adapter_sha256("hf:embedded") is None
    assert _spec_adapter_sha256("openai:http://host/v1?model=m") is None


def test_a_rule_file_that_is_not_json_is_one_clear_error(tmp_path):
    """--rule FILE.json with bad JSON, or a missing file, names the file (it was a
    JSONDecodeError traceback, or read as an unknown rule kind)."""
    from ld_agents.ld.emergency import read_rule_arg

    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    with pytest.raises(InvalidArgument, match="is not a JSON rule spec"):
        read_rule_arg(str(bad))
    with pytest.raises(InvalidArgument, match="no JSON file"):
        read_rule_arg(str(tmp_path / "missing.json"))
