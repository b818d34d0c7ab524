"""The README's main job: a small sweep of every game, baselines beside the raw embedded model.

For each env of :data:`PLAN` it runs (or resumes) one sweep and saves the paper's table for
it under ``out/<env id>/``:

* ``Pursuit-v0``: scripted, random (mask-aware), random_blind, raw (greedy evader);
* ``TwentyOne-v0``: optimal (with its exact ceiling), scripted, dealer, random, raw.

It is a demonstration sized to take a few minutes on a 2-core CPU; the paper's tables use
200 episodes per policy (``ld-gym bench``, ``ld-gym reproduce``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.games import check_sweep_inputs
from benchmarks.outputs import check_sweep_folder
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, run_sweep
from benchmarks.tables import build_report
from ld_agents.files import output_path

logger = logging.getLogger(__name__)

#: the default output folder, under the current directory
DEFAULT_OUT = Path("runs") / "demo"
DEFAULT_MODEL = "hf:embedded"
#: (env id, policies, which episode count applies)
PLAN = [
    ("Pursuit-v0", ["scripted", "random", "random_blind", "raw"], "pursuit"),
    ("TwentyOne-v0", ["optimal", "scripted", "dealer", "random", "raw"], "twentyone"),
]


def run_demo(
    out: Path | str = DEFAULT_OUT,
    model: str = DEFAULT_MODEL,
    pursuit_episodes: int = 8,
    twentyone_episodes: int = 40,
    seed: int = 0,
    progress: bool | None = None,
    echo: Callable[[str], None] = logger.info,
    overwrite: bool = False,
) -> float:
    """Run the demo's sweeps into ``out`` and return the seconds it took; ``echo`` gets
    each sweep's main table and a line on what ran. Every sweep and folder is checked
    before the first episode (a folder that is not the sweep's own is written only when it
    holds none of a sweep's files, or with ``overwrite``)."""
    episodes = {"pursuit": pursuit_episodes, "twentyone": twentyone_episodes}
    out = output_path(out)
    planned = []
    for env_id, names, game in PLAN:
        policies = [PolicySpec(n, {"model": model} if n == "raw" else {}) for n in names]
        spec = SweepSpec(env_id, policies, episodes=episodes[game], seed=seed)
        check_sweep_inputs(spec.env_id, spec.env_kwargs, spec.policies)
        planned.append((spec, check_sweep_folder(out / env_id, overwrite=overwrite)))
    start = time.perf_counter()
    for spec, folder in planned:
        result = run_sweep(spec, folder, RunOptions(progress=progress))
        report = build_report(result.manifest, result.records)
        report.save(folder)
        echo(report.main.to_text())
        echo(f"({result.ran} episodes run now, {result.seconds:.1f} s; saved in {folder})\n")
    return time.perf_counter() - start
