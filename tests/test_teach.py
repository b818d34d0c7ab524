"""``ld-gym teach`` against a local OpenAI-compatible stub server (standard library only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from benchmarks.cli.main import main as cli_main
from ld_agents.ld.base import load_function_base
from ld_agents.ld.teach import extract_json, function_dicts, teacher_prompt
from ld_envs.errors import InvalidArgument

GOOD = {
    "name": "cells_in_reach",
    "stage": "candidates",
    "role": "core",
    "signature": "cells_in_reach(state, prev) -> cell_lists",
    "rule": "a pursuer moves to any cell within Manhattan distance 2, on the board",
    "when_to_call": "always, first",
    "right_when": "always",
    "properties": [{"name": "cells_within_distance", "distance": 2}],
    "source": (
        "def cells_in_reach(state, prev):\n"
        "    n = state['size']\n"
        "    out = []\n"
        "    for px, py in state['pursuers']:\n"
        "        cells = []\n"
        "        for x in range(px - 2, px + 3):\n"
        "            for y in range(py - 2, py + 3):\n"
        "                if 0 <= x < n and 0 <= y < n and abs(x - px) + abs(y - py) <= 2:\n"
        "                    cells.append([x, y])\n"
        "        out.append(cells)\n"
        "    return out\n"
    ),
}
# claims distance 2 but lists distance 1: fails its property
WRONG = {
    **GOOD,
    "name": "cells_next_door",
    "role": "alternative",
    "source": GOOD["source"].replace("cells_in_reach", "cells_next_door").replace("<= 2", "<= 1"),
}
# refused by the static check before it runs
HOSTILE = {
    **GOOD,
    "name": "peek_files",
    "source": "import os\ndef peek_files(state, prev):\n    return os.listdir('/')\n",
}

CANNED = (
    "Here is the function base you asked for.\n```json\n"
    + json.dumps({"functions": [GOOD, WRONG, HOSTILE]}, indent=1)
    + "\n```\nHope it helps!"
)


class _Teacher(BaseHTTPRequestHandler):
    prompts: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        return None

    def _send(self, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "stub-teacher", "object": "model"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        req = json.loads(self.rfile.read(length))
        if self.path.endswith("/chat/completions"):
            _Teacher.prompts.append(req["messages"][-1]["content"])
            self._send(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": CANNED}}]}
            )
        else:
            _Teacher.prompts.append(req["prompt"])
            self._send({"choices": [{"index": 0, "text": CANNED}]})


@pytest.fixture()
def stub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teacher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Teacher.prompts.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_teach_against_stub_server(stub_url: str, tmp_path: Path, api: str, capsys: Any) -> None:
    out = tmp_path / "teacher_pursuit.json"
    spec = f"openai:{stub_url}?model=stub-teacher&api={api}"
    code = cli_main(["teach", "--game", "pursuit", "--model", spec, "--out", str(out)])
    # only the candidates stage is covered: incomplete, exit 1
    assert code == 1
    assert len(_Teacher.prompts) == 1
    prompt = _Teacher.prompts[0]
    assert "## Rules" in prompt and "Manhattan distance 2" in prompt and "## Schema" in prompt

    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["parsed"] is True
    assert [k["name"] for k in report["kept"]] == ["cells_in_reach"]
    rejected = {r["name"]: r for r in report["rejected"]}
    assert set(rejected) == {"cells_next_door", "peek_files"}
    assert rejected["cells_next_door"]["check"] == "property"
    assert "cells_within_distance" in rejected["cells_next_door"]["reasons"][0]
    assert rejected["peek_files"]["check"] == "static"
    assert "import of 'os' is not allowed" in rejected["peek_files"]["reasons"][0]
    assert report["missing_stages"] == ["filter", "constraints", "select"]
    assert out.with_suffix(".report.md").is_file()
    printed = capsys.readouterr().out
    assert "1 kept, 2 rejected" in printed

    # the kept functions form a loadable base with the teacher's provenance
    data = json.loads(out.read_text())
    assert data["provenance"]["model"] == spec
    assert data["provenance"]["stand_in"] is False
    assert [f["name"] for f in data["functions"]] == ["cells_in_reach"]
    assert data["kind"] == "extension"  # incomplete: an extension of the shipped base
    code = cli_main(["validate", str(out), "--game", "pursuit", "--states", "10"])
    assert code == 0


def test_teach_nothing_parsable(tmp_path: Path) -> None:
    from ld_agents.ld.teach import teach

    rep = teach("twentyone", "given", out=tmp_path / "x.json", answer="I cannot do that.")
    assert not rep.parsed and not rep.kept and not rep.complete
    assert rep.out is None
    assert "no JSON function list" in rep.format()


def test_extract_json_is_lenient() -> None:
    assert extract_json('blah {"functions": [{"a": 1},]} trailing') == {"functions": [{"a": 1}]}
    assert extract_json("```json\n[{'source': 'x', 'ok': True}]\n```") == [
        {"source": "x", "ok": True}
    ]
    assert extract_json("no json here") is None
    assert function_dicts({"name": "f", "source": "def f(s, p): ..."}) == [
        {"name": "f", "source": "def f(s, p): ..."}
    ]


def test_extract_json_survives_nesting_too_deep_to_parse() -> None:
    """A teacher stuck repeating "[" gives nothing parsable, not a RecursionError."""
    assert extract_json("[" * 3000 + "]") is None
    assert extract_json('Here: {"functions": ' + "[" * 2000 + "}") is None


def test_teach_rejects_entries_whose_fields_are_not_strings(tmp_path: Path) -> None:
    """A name or stage that is a list is a schema rejection in the report (it was a
    TypeError that lost the run); a list right_when falls back to 'never' with a note."""
    from ld_agents.ld.teach import teach

    src = "def keep_all(state, prev):\n    return prev\n"
    items = [
        {"name": ["keep_all"], "stage": "filter", "source": src},
        {"name": "keep_all", "stage": ["filter"], "source": src},
        {"name": "keep_all", "stage": "filter", "source": src, "right_when": ["always"]},
    ]
    answer = json.dumps({"functions": items})
    rep = teach("pursuit", "given", out=tmp_path / "t.json", answer=answer, n_states=2)
    reasons = [r["reasons"][0] for r in rep.rejected]
    assert reasons == ["fields ['name'] are not strings", "fields ['stage'] are not strings"]
    assert [k["name"] for k in rep.kept] == ["keep_all"]
    assert any("right_when" in note and "'never'" in note for note in rep.notes)


def test_teacher_prompt_twentyone() -> None:
    text = teacher_prompt("twentyone")
    assert "bust" in text and "decide" in text and '"functions"' in text


def test_base_loads_after_teach(stub_url: str, tmp_path: Path) -> None:
    from ld_agents.ld.teach import teach

    out = tmp_path / "b.json"
    rep = teach("pursuit", f"openai:{stub_url}?model=stub-teacher", out=out, n_states=10)
    assert rep.kept and rep.out == str(out)
    from ld_agents.ld.base import bases_dir

    base = load_function_base(bases_dir() / "pursuit.json", [out])
    assert "cells_in_reach" in [f.name for f in base.stage_candidates("candidates")]
    assert base.function("cells_in_reach").provenance.model.startswith("openai:")


def test_cli_writes_under_runs_by_default(tmp_path: Path, monkeypatch: Any) -> None:
    """Without --out, a saved answer's kept functions and report land in runs/teach/."""
    monkeypatch.chdir(tmp_path)
    answer = tmp_path / "answer.txt"
    answer.write_text(CANNED)
    argv = ["teach", "--game", "pursuit", "--model", "saved", "--answer-file", str(answer)]
    assert cli_main([*argv, "--states", "10"]) == 1  # only one stage covered
    out = tmp_path / "runs" / "teach"
    assert json.loads((out / "pursuit.json").read_text())["functions"][0]["name"] == (
        "cells_in_reach"
    )
    assert (out / "pursuit.report.json").is_file() and (out / "pursuit.report.md").is_file()


@pytest.mark.parametrize("report", ["same", "report.md"])
def test_cli_refuses_a_report_path_that_would_replace_the_base(
    tmp_path: Path, capsys: Any, report: str
) -> None:
    """--report equal to --out (or ending in .md, where the Markdown copy goes) would
    overwrite the kept functions or the JSON report: refused before the teacher is asked."""
    from benchmarks.cli.main import main

    out = tmp_path / "base.json"
    answer = tmp_path / "answer.txt"
    answer.write_text("no functions")
    path = out if report == "same" else tmp_path / report
    argv = ["teach", "--game", "pursuit", "--model", "given", "--answer-file", str(answer)]
    rc = main([*argv, "--out", str(out), "--report", str(path)])
    assert rc == 1 and "would write" in capsys.readouterr().err
    assert not out.exists()


def test_a_binary_answer_file_is_one_clear_error(tmp_path: Path) -> None:
    """An answer file that is not UTF-8 text is an InvalidArgument naming it."""
    from ld_agents.ld.teach import run_teach

    answer = tmp_path / "answer.bin"
    answer.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        run_teach("pursuit", "given", out=tmp_path / "b.json", answer_file=answer)
