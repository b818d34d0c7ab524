"""Emergency handling: a new rule as text -> a generated, validated function at its stage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli.main import main as cli_main
from ld_agents.ld.base import bases_dir, load_function_base, shipped_base
from ld_agents.ld.emergency import (
    FALLBACK_NOTE,
    PROMPT_VARIANTS,
    build_prompt,
    extract_function,
    handle_emergency,
    recognise_rule,
    write_extension,
    write_report,
)
from ld_agents.ld.sandbox import SandboxWorker
from ld_envs.errors import InvalidArgument

RULE = "no piece may enter the 5x5 block (x0, y0, x1, y1)"

CORRECT = """def keep_out_of_block(state, prev):
    area = state["restricted"]
    if area is None:
        return [list(cells) for cells in prev]
    x0, y0, x1, y1 = area
    return [[c for c in cells if not (x0 <= c[0] <= x1 and y0 <= c[1] <= y1)] for cells in prev]
"""
# off by one: the block's border cells stay listed
WRONG_CELLS = CORRECT.replace("keep_out_of_block", "inner_block_only").replace(
    "x0 <= c[0] <= x1 and y0 <= c[1] <= y1", "x0 < c[0] < x1 and y0 < c[1] < y1"
)
# right cells, but crashes when no area is in force
NO_NONE = """def drop_block(state, prev):
    x0, y0, x1, y1 = state["restricted"]
    return [[c for c in cells if not (x0 <= c[0] <= x1 and y0 <= c[1] <= y1)] for cells in prev]
"""
HOSTILE = "import os\ndef sneaky(state, prev):\n    return os.listdir('/')\n"
RESTRICTED_STATE = {
    "size": 21,
    "pursuers": [[5, 5], [15, 15], [2, 18]],
    "evader": [10, 2],
    "restricted": [6, 6, 10, 10],
}


@pytest.fixture(scope="module")
def worker() -> Iterator[SandboxWorker]:
    with SandboxWorker() as w:
        yield w


def test_rule_recognised_and_unknown_rule_refused() -> None:
    kind = recognise_rule(RULE)
    assert kind.stage == "constraints" and kind.name == "restricted_area"
    assert {"name": "removes_exactly", "cells": "restricted_area"} in kind.properties
    with pytest.raises(InvalidArgument, match="known rule kinds: restricted_area"):
        recognise_rule("pursuers must wear hats")


def test_prompt_holds_rule_stage_types_neighbour_signature() -> None:
    base = shipped_base("pursuit")
    prompt, header = build_prompt(base, recognise_rule(RULE), RULE, PROMPT_VARIANTS[0])
    assert RULE in prompt and "'constraints'" in prompt and "cell_lists" in prompt
    assert "def drop_evader_cell(state, prev):" in prompt  # the neighbouring function
    assert prompt.endswith(header) and header.startswith("def drop_restricted_cells(state, prev):")
    assert len({v.key for v in PROMPT_VARIANTS}) == len(PROMPT_VARIANTS) >= 8


def test_extract_function_forms() -> None:
    header = 'def f(state, prev):\n    """Doc."""\n'
    body = "    return prev\n\n\nsome trailing junk (\n"
    src, name = extract_function(body, header, "f")
    assert name == "f" and src == 'def f(state, prev):\n    """Doc."""\n    return prev\n'
    fenced = "Sure!\n```python\nimport math\ndef g(state, prev):\n    return prev\n```\nbye"
    src, name = extract_function(fenced, header, "f")
    assert name == "g" and src.startswith("import math\ndef g(state, prev):")
    src, name = extract_function("    return (((\n", header, "f")
    assert name == "f"  # never parses: comes back whole, the static check reports it


def test_correct_passes_wrong_rejected_with_report(worker: SandboxWorker, tmp_path: Path) -> None:
    base = shipped_base("pursuit")
    res = handle_emergency(
        RULE, base, candidates=[WRONG_CELLS, NO_NONE, HOSTILE, CORRECT], worker=worker
    )
    verdicts = [(s.name, s.passed, s.checks_failed) for s in res.samples]
    assert verdicts[0] == ("inner_block_only", False, ["property"])
    assert "removes_exactly" in res.samples[0].failures[0]
    assert "kept wrongly" in res.samples[0].failures[0]
    assert verdicts[1][1] is False and verdicts[1][2] == ["run"]
    assert verdicts[2][1] is False and verdicts[2][2] == ["static"]
    assert verdicts[3] == ("keep_out_of_block", True, [])
    assert (res.tried, res.passed, res.first_pass) == (4, 1, 4)
    assert res.source_kind == "generated" and res.function == "keep_out_of_block"
    # added to the base at its stage; the labeller picks it when the area is in force
    assert "keep_out_of_block" in [f.name for f in base.stage_candidates("constraints")]
    assert base.right_function("constraints", RESTRICTED_STATE) == "keep_out_of_block"

    # the extension file loads into the shipped base at its stage, with provenance
    ext = write_extension(res, tmp_path / "generated" / "ext.json")
    loaded = load_function_base(bases_dir() / "pursuit.json", [ext])
    entry = loaded.function("keep_out_of_block")
    assert entry.stage == "constraints" and entry.role == "emergency"
    assert entry.handles_rule == "restricted_area"
    assert entry.provenance is not None and not entry.provenance.stand_in
    assert RULE in entry.provenance.note and "sample 4 of 4" in entry.provenance.note
    assert len(entry.examples) == 2
    # and `ld-gym validate` accepts it
    assert cli_main(["validate", str(ext), "--game", "pursuit", "--states", "20"]) == 0
    j, m = write_report(res, tmp_path / "report", "hand")
    data = json.loads(j.read_text())
    assert data["samples_tried"] == 4 and data["samples_passed"] == 1
    assert data["samples_needed"] == 4
    assert "| 1 | candidate 0 | no | property |" in m.read_text()


def test_fallback_labels_the_stand_in(worker: SandboxWorker, tmp_path: Path) -> None:
    base = shipped_base("pursuit")
    res = handle_emergency(RULE, base, candidates=[WRONG_CELLS, HOSTILE], worker=worker)
    assert res.passed == 0 and res.first_pass is None
    assert res.source_kind == "stand-in" and res.function == "drop_restricted_cells"
    assert res.extension["provenance"]["note"].startswith(FALLBACK_NOTE)
    assert res.extension["provenance"]["stand_in"] is True
    assert "none passed" in res.format_markdown()
    ext = write_extension(res, tmp_path / "fallback.json")
    loaded = load_function_base(bases_dir() / "pursuit.json", [ext])
    entry = loaded.function("drop_restricted_cells")
    assert entry.stage == "constraints"
    assert entry.provenance is not None and entry.provenance.note.startswith(FALLBACK_NOTE)
    assert base.right_function("constraints", RESTRICTED_STATE) == "drop_restricted_cells"


class _Coder(BaseHTTPRequestHandler):
    """An OpenAI-compatible teacher that answers every completion with a body."""

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
        self._send({"data": [{"id": "coder"}]})

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        # the prompt ends with the signature + docstring (+ scaffold): answer with a body
        if req["prompt"].rstrip().endswith('"""'):
            text = (
                '    area = state["restricted"]\n    if area is None:\n        return prev\n'
                "    x0, y0, x1, y1 = area\n"
                "    return [[c for c in cells if not (x0 <= c[0] <= x1 and y0 <= c[1] <= y1)]"
                " for cells in prev]\n"
            )
        else:
            text = "    return prev\n"  # wrong after a scaffold: keeps the area's cells
        self._send({"choices": [{"text": text}]})


@pytest.fixture()
def coder_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Coder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_with_teacher_endpoint(coder_url: str, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "ext.json"
    code = cli_main(
        [
            "emergency",
            RULE,
            "--model",
            f"openai:{coder_url}?model=coder",
            "--samples",
            "3",
            "--variants",
            "full-none,full,short",
            "--out",
            str(out),
            "--report-dir",
            str(tmp_path / "rep"),
            "--name",
            "stub",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 samples" in printed and "2 passed" in printed
    report = json.loads((tmp_path / "rep" / "stub.json").read_text())
    assert [s["passed"] for s in report["samples"]] == [False, True, True]
    assert report["samples_needed"] == 2
    ext = json.loads(out.read_text())
    assert ext["kind"] == "extension" and ext["provenance"]["model"].startswith("openai:")
    assert ext["functions"][0]["name"] == "drop_restricted_cells"


def test_cli_writes_under_runs_by_default(
    coder_url: str, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """Without --out and --report-dir everything lands in runs/emergency/ of the current
    directory (never in assets/), named <game>_<rule kind>_<model>."""
    monkeypatch.chdir(tmp_path)
    argv = ["emergency", RULE, "--model", f"openai:{coder_url}?model=coder", "--samples", "1"]
    assert cli_main([*argv, "--variants", "full"]) == 0
    exts = list((tmp_path / "runs" / "emergency").glob("pursuit_restricted_area_openai_*.json"))
    assert len(exts) == 1 and json.loads(exts[0].read_text())["kind"] == "extension"
    reports = tmp_path / "runs" / "emergency" / "reports"
    assert sorted(p.suffix for p in reports.iterdir()) == [".json", ".md"]
    assert str(exts[0].relative_to(tmp_path)) in capsys.readouterr().out


@pytest.mark.llm
def test_embedded_model_writes_samples(tmp_path: Path) -> None:
    """The real embedded model: two short samples, each judged; the result is labelled."""
    base = shipped_base("pursuit")
    res = handle_emergency(
        RULE,
        base,
        backend="hf:embedded",
        samples=2,
        batch=2,
        max_new_tokens=48,
        variants=["full-loop", "full-unpack"],
    )
    assert res.tried == 2 and res.model == "hf:embedded"
    for s in res.samples:
        assert s.source.startswith(f"def {s.name}(state, prev):")
        assert s.passed == (not s.failures)
    if res.passed:
        assert res.source_kind == "generated"
        assert res.extension["provenance"]["model"] == "hf:embedded"
    else:
        assert res.source_kind == "stand-in"
        assert res.extension["provenance"]["note"].startswith(FALLBACK_NOTE)
    assert res.function in [f.name for f in base.stage_candidates("constraints")]
    write_report(res, tmp_path, "llm")
