"""A non-editable ``pip install .`` works from another folder and writes nothing into the
installed package: the assets ship inside it, outputs go under the current folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_installed_copy_runs_from_elsewhere_and_writes_only_under_cwd(tmp_path):
    target, cwd = tmp_path / "site", tmp_path / "work"
    cwd.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert (target / "ld_agents" / "_assets" / "function_bases" / "pursuit.json").is_file()
    before = {p for p in target.rglob("*") if "__pycache__" not in p.parts}
    env = dict(os.environ, PYTHONPATH=str(target), SDL_VIDEODRIVER="dummy")
    script = (
        "import ld_agents.files as f, sys; assert str(f.assets_dir()).startswith(sys.argv[1]);"
        "from benchmarks.cli.main import main;"
        "sys.exit(main(['bench', 'Pursuit-v0', '--policies', 'scripted,ld_oracle',"
        " '--episodes', '2', '--out', 'runs/t', '--no-progress']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], cwd=cwd, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert (cwd / "runs" / "t" / "table.md").is_file()
    after = {p for p in target.rglob("*") if "__pycache__" not in p.parts}
    assert after == before
