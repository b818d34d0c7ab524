"""The shipped function bases are exactly what ``scripts/function_bases/build.py`` makes
from their sources (``scripts/function_bases/*_functions.py`` and the manual entries)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ld_agents.ld.base import SHIPPED, bases_dir
from ld_agents.ld.sandbox import SandboxWorker

BUILD = Path(__file__).resolve().parents[1] / "scripts" / "function_bases" / "build.py"


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("function_bases_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build() -> ModuleType:
    return _load_build()


@pytest.fixture(scope="module")
def rebuilt(build: ModuleType) -> dict[str, dict[str, Any]]:
    with SandboxWorker() as worker:
        return build.build_all(worker)


def test_rebuild_covers_every_shipped_file(rebuilt):
    """The build makes every file the project ships (bases and emergency extensions)."""
    shipped = {name for files in SHIPPED.values() for name in files.values()}
    assert set(rebuilt) == shipped


def test_shipped_bases_equal_their_rebuild_from_source(build, rebuilt):
    """Each shipped JSON file is byte-for-byte the build's output (else rerun build.py)."""
    for name, data in rebuilt.items():
        shipped = (bases_dir() / name).read_text()
        if shipped != build.file_text(data):
            old, new = json.loads(shipped), json.loads(build.file_text(data))
            fields = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
            changed = [
                f["name"] for f in new.get("functions", []) if f not in old.get("functions", [])
            ]
            pytest.fail(
                f"assets/function_bases/{name} differs from its rebuild (fields {fields}; "
                f"functions {changed}); run .venv/bin/python scripts/function_bases/build.py"
            )


def test_rebuilt_bases_pass_validation(build, rebuilt):
    """Every function of the rebuilt bases passes the sandbox contract tests."""
    with SandboxWorker() as worker:
        reports = build.validate_all(rebuilt, worker)
    assert all(r.ok for r in reports), "\n".join(r.format() for r in reports if not r.ok)


def test_check_fails_when_a_shipped_base_differs(build, tmp_path, monkeypatch, capsys):
    """``build.py --check`` exits 1 naming the file when a shipped base was edited."""
    shutil.copytree(bases_dir(), tmp_path / "function_bases")
    monkeypatch.setenv("LD_GYM_ASSETS", str(tmp_path))
    assert build.main(["--check"]) == 0
    path = tmp_path / "function_bases" / "twentyone.json"
    data = json.loads(path.read_text())
    data["functions"][0]["when_to_call"] += " (edited)"
    path.write_text(json.dumps(data, indent=1) + "\n")
    capsys.readouterr()
    assert build.main(["--check"]) == 1
    assert "twentyone.json" in capsys.readouterr().err
