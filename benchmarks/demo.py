"""The README's main job: the methods beside the baselines on every game, in minutes.

For each env of :func:`plan` it runs (or resumes) one sweep on the embedded model and saves
the paper's table for it under ``out/<env id>/``:

* ``Pursuit-v0``: scripted, random, and the three LLM ways: ``raw`` (the base model),
  ``kd`` (the knowledge-distilled adapter) and ``ld`` (the logic-distilled student);
* ``PursuitRestricted-v0``: the same, ``ld`` with the restricted-area function the
  embedded model wrote itself (``assets/function_bases/generated/restricted_area.json``,
  written by ``ld-gym emergency``; the student was not retrained for it);
* ``TwentyOne-v0``: optimal (with its exact ceiling), scripted, dealer, raw, kd, ld.

Then it plays the LD student from the paper's Figure 5 start and writes the episode as a
strip of frames captioned with the function chosen at each stage (``figure5_ld.png``) and
as a GIF. It is a demonstration of a few minutes (299 s on a 2-core Xeon with AMX-BF16); the
paper's tables use 200 episodes per policy (``ld-gym bench``, ``ld-gym reproduce``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.games import check_sweep_inputs
from benchmarks.outputs import check_sweep_folder
from benchmarks.specs import PolicySpec
from benchmarks.sweep import RunOptions, SweepSpec, check_resume, run_sweep
from benchmarks.tables import build_report
from ld_agents.files import assets_dir, check_output_folder, output_path

logger = logging.getLogger(__name__)

#: the default output folder, under the current directory
DEFAULT_OUT = Path("runs") / "demo"
#: the raw policy's model: bf16 where the CPU has it (``dtype=auto``): about half the float32
#: cost per decision, 39 of 40 decisions equal (benchmarks/results/same_results)
DEFAULT_MODEL = "hf:embedded?dtype=auto"
#: the restricted-area function the embedded model wrote (``ld-gym emergency``)
GENERATED_AREA = Path("function_bases") / "generated" / "restricted_area.json"
#: the Figure 5 episode's files, in ``out/figure5/``
FIGURE_FILES = ("figure5_ld.png", "figure5_ld.gif")


def plan(model: str = DEFAULT_MODEL) -> list[tuple[str, list[PolicySpec], str]]:
    """(env id, policies, which episode count applies) of each demo sweep."""
    raw = PolicySpec("raw", {"model": model})
    llm = [raw, PolicySpec("kd"), PolicySpec("ld")]
    area = str(assets_dir() / GENERATED_AREA)
    restricted_ld = PolicySpec("ld", {"emergency": area}, "ld (model-written area function)")
    return [
        ("Pursuit-v0", [PolicySpec("scripted"), PolicySpec("random"), *llm], "pursuit"),
        (
            "PursuitRestricted-v0",
            [PolicySpec("scripted"), raw, PolicySpec("kd"), restricted_ld],
            "pursuit",
        ),
        (
            "TwentyOne-v0",
            [PolicySpec(n) for n in ("optimal", "scripted", "dealer")] + llm,
            "twentyone",
        ),
    ]


def strip(frames: Sequence[np.ndarray], columns: int = 6) -> np.ndarray:
    """Frames tiled left to right, top to bottom (white where a row is short)."""
    h, w, c = frames[0].shape
    rows = -(-len(frames) // columns)
    out = np.full((rows * h, min(columns, len(frames)) * w, c), 255, dtype=np.uint8)
    for i, f in enumerate(frames):
        r, k = divmod(i, columns)
        out[r * h : (r + 1) * h, k * w : (k + 1) * w] = f
    return out


def figure5_episode(out: Path) -> dict[str, Any]:
    """Play ``ld`` from the paper's Figure 5 start; write the captioned frames as a strip
    (PNG) and a GIF; return the outcome and the files."""
    import io

    from PIL import Image

    from benchmarks.plots import play_episode, save_gif
    from ld_agents.files import mark_made, write_bytes_atomic

    trace = play_episode("Pursuit-v0", PolicySpec("ld"), preset="figure5", render=True)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(strip(trace.frames)).save(buf, format="PNG")
    png = out / FIGURE_FILES[0]
    write_bytes_atomic(png, buf.getvalue())
    gif = save_gif(trace.frames, out / FIGURE_FILES[1])
    mark_made([png, gif])
    return {"outcome": trace.outcome, "steps": trace.steps, "strip": png, "gif": gif}


def run_demo(
    out: Path | str = DEFAULT_OUT,
    model: str = DEFAULT_MODEL,
    pursuit_episodes: int = 4,
    twentyone_episodes: int = 30,
    seed: int = 0,
    progress: bool | None = None,
    echo: Callable[[str], None] = logger.info,
    overwrite: bool = False,
) -> float:
    """Run the demo's sweeps and the Figure 5 episode into ``out``; return the seconds it
    took. ``echo`` gets each sweep's main table, a line on what ran, and the picture's
    path. Every sweep and folder is checked before the first episode (a folder that is not
    the sweep's own is written only when it holds none of a sweep's files, or with
    ``overwrite``)."""
    episodes = {"pursuit": pursuit_episodes, "twentyone": twentyone_episodes}
    out = output_path(out)
    planned = []
    for env_id, policies, game in plan(model):
        spec = SweepSpec(env_id, policies, episodes=episodes[game], seed=seed)
        check_sweep_inputs(spec.env_id, spec.env_kwargs, spec.policies)
        folder = check_sweep_folder(out / env_id, overwrite=overwrite)
        check_resume(spec, folder, overwrite)
        planned.append((spec, folder))
    figure = check_output_folder(out / "figure5", FIGURE_FILES, overwrite=overwrite)
    start = time.perf_counter()
    for spec, folder in planned:
        result = run_sweep(spec, folder, RunOptions(progress=progress), overwrite=overwrite)
        report = build_report(result.manifest, result.records)
        report.save(folder)
        echo(report.main.to_text())
        echo(f"({result.ran} episodes run now, {result.seconds:.1f} s; saved in {folder})\n")
    made = figure5_episode(figure)
    echo(
        f"LD from the paper's Figure 5 start: {made['outcome']} in {made['steps']} steps; "
        f"the functions it chose, frame by frame: {made['strip']} (GIF: {made['gif']})"
    )
    return time.perf_counter() - start
