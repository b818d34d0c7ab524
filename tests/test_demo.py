"""The main job (``ld-gym demo``): its plan and picture; the whole run is ``slow``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.demo import plan, run_demo, strip
from ld_agents.files import assets_dir


def test_plan_shows_raw_kd_and_ld_beside_baselines_on_every_env():
    sweeps = {env: [p.name for p in policies] for env, policies, _ in plan()}
    assert set(sweeps) == {"Pursuit-v0", "PursuitRestricted-v0", "TwentyOne-v0"}
    for names in sweeps.values():
        assert {"raw", "kd", "ld", "scripted"} <= set(names)
    restricted = next(
        p for env, ps, _ in plan() if env == "PursuitRestricted-v0" for p in ps if p.name == "ld"
    )
    # LD meets the area with the function the model wrote, not the project's stand-in
    area = restricted.kwargs["emergency"]
    assert area.startswith(str(assets_dir()))
    fn = json.loads(Path(area).read_text())["functions"][0]
    assert fn["provenance"]["stand_in"] is False
    assert "ld-pursuit-writer" in fn["provenance"]["author"]


def test_strip_tiles_frames_in_rows():
    frames = [np.full((4, 3, 3), i, dtype=np.uint8) for i in range(8)]
    out = strip(frames, columns=3)
    assert out.shape == (12, 9, 3)
    assert out[4, 3, 0] == 4 and out[8, 3, 0] == 7
    assert (out[8:, 6:] == 255).all()  # the short last row is white


@pytest.mark.slow
def test_demo_writes_tables_and_the_figure5_strip(tmp_path):
    lines: list[str] = []
    seconds = run_demo(tmp_path, pursuit_episodes=1, twentyone_episodes=2, echo=lines.append)
    text = "\n".join(lines)
    for env in ("Pursuit-v0", "PursuitRestricted-v0", "TwentyOne-v0"):
        assert (tmp_path / env / "table.md").is_file()
    for label in ("raw", "kd", "ld", "ld (model-written area function)"):
        assert f"| {label} |" in text
    assert (tmp_path / "figure5" / "figure5_ld.png").stat().st_size > 0
    assert "figure5_ld.png" in lines[-1] and seconds > 0
