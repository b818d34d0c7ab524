"""Figures: Figure 5 trajectories, table bar charts, episode GIFs, and ``ld-gym plot``."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from benchmarks import plots
from benchmarks.cli.main import main
from benchmarks.sweep import PolicySpec, RunOptions, SweepSpec, run_sweep
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import PRESETS


def count_colour(path, hex_colour: str, tol: int = 12) -> int:
    """Pixels of an image within ``tol`` of a colour on every channel."""
    img = iio.imread(path)[..., :3].astype(int)
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb) <= tol).all(axis=-1).sum())


@pytest.fixture(scope="module")
def figure5_trace() -> plots.EpisodeTrace:
    return plots.play_episode("Pursuit-v0", "scripted", preset="figure5", render=True)


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    spec = SweepSpec("Pursuit-v0", [PolicySpec("scripted"), PolicySpec("random_blind")], 4, 0)
    run_sweep(spec, folder, RunOptions(progress=False))
    return folder


def test_figure5_episode_starts_at_the_papers_cells(figure5_trace):
    """The figure5 preset starts from the paper's blue and orange dots."""
    pursuers, evader = figure5_trace.history[0]
    assert pursuers == [tuple(p) for p in PRESETS["figure5"]["pursuers"]]
    assert evader == PRESETS["figure5"]["evader"]
    assert len(figure5_trace.history) == figure5_trace.steps + 1


def test_trajectory_png_has_the_paper_colours(figure5_trace, tmp_path):
    """Figure 5: green, red and grey pursuer lines and the orange evader appear on a PNG."""
    path = plots.plot_trajectories(figure5_trace, tmp_path / "fig5.png")
    assert iio.imread(path).shape[:2] == (748, 704)
    for colour in (*plots.PURSUER_COLOURS, plots.EVADER_COLOUR, plots.START_COLOUR):
        assert count_colour(path, colour) > 40, colour
    assert count_colour(path, plots.AREA_FACE, tol=3) < 50  # no restricted area on Pursuit-v0


def test_trajectory_shading_darkens_with_passages(tmp_path):
    """A cell passed five times is shaded darker than a cell passed once."""
    trace = plots.EpisodeTrace(
        "Pursuit-v0", "test",
        [([(1, 1), (5, 5), (9, 9)], (15, 15))] * 5 + [([(1, 3), (5, 5), (9, 9)], (15, 15))],
        size=21, area=None, outcome=None, steps=5, violations=0,
    )  # fmt: skip
    path = plots.plot_trajectories(trace, tmp_path / "shade.png")

    def over_white(alpha: float) -> str:  # pursuer A's green at this alpha on white
        rgb = [round(alpha * c + (1 - alpha) * 255) for c in (0x2C, 0xA0, 0x2C)]
        return "#" + "".join(f"{c:02x}" for c in rgb)

    five, once = over_white(0.12 + 0.5), over_white(0.12 + 0.5 / 5)
    assert count_colour(path, five, tol=3) > 300  # (1, 1): 5 passages, darkest
    assert count_colour(path, once, tol=3) > 300  # (1, 3): 1 passage, light


def test_restricted_area_is_drawn(tmp_path):
    """On PursuitRestricted-v0 the 5x5 block appears, hatched grey."""
    trace = plots.play_episode("PursuitRestricted-v0", "scripted", preset="figure5", seed=3)
    assert trace.area is not None
    path = plots.plot_trajectories(trace, tmp_path / "area.png")
    assert count_colour(path, plots.AREA_FACE, tol=3) > 2000


def test_new_rules_are_drawn_and_named(tmp_path):
    """A band rule's cells are cross-hatched and the rule's text is in the trace; a board
    without rules draws no hatch."""
    band = {"kind": "band", "axis": "row", "span": [9, 10]}
    ruled = plots.play_episode("Pursuit-v0", "scripted", {"rules": [band]}, seed=1)
    assert "rows with y from 9 to 10" in ruled.rules
    assert {(x, y) for x in range(21) for y in (9, 10)} <= set(ruled.forbidden["A"])
    plain = plots.play_episode("Pursuit-v0", "scripted", seed=1)
    assert plain.rules == "" and plain.forbidden == {}
    with_rule = plots.plot_trajectories(ruled, tmp_path / "rule.png")
    without = plots.plot_trajectories(plain, tmp_path / "plain.png")
    hatch = plots.AREA_COLOUR
    assert count_colour(with_rule, hatch, tol=20) > count_colour(without, hatch, tol=20) + 500


def test_sweep_episode_replay_matches_its_record(sweep_folder):
    """Replaying sweep episode i gives the outcome and steps the sweep recorded."""
    from benchmarks.sweep import load_sweep

    rec = next(r for r in load_sweep(sweep_folder).records if r["policy"] == "random_blind")
    trace = plots.play_episode("Pursuit-v0", "random_blind", episode=rec["episode"])
    assert (trace.outcome, trace.steps, trace.violations) == (
        rec["outcome"], rec["steps"], rec["violations"],
    )  # fmt: skip


def test_gif_has_one_frame_per_state(figure5_trace, tmp_path):
    """The GIF holds the start and every step as rgb_array frames of the env's size."""
    path = plots.save_gif(figure5_trace.frames, tmp_path / "ep.gif")
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == figure5_trace.steps + 1
    assert frames.shape[1:3] == figure5_trace.frames[0].shape[:2]
    with pytest.raises(InvalidArgument, match="render=True"):
        plots.save_gif([], tmp_path / "none.gif")


def test_bar_chart_shows_each_outcome_colour(sweep_folder, tmp_path):
    """The bar chart draws success (green) and failure-with-violation (red) bars."""
    from benchmarks.sweep import load_sweep

    result = load_sweep(sweep_folder)
    path = plots.plot_table_bars(result.manifest, result.records, tmp_path / "bars.png")
    assert count_colour(path, plots.BAR_COLOURS["success"], tol=3) > 2000
    assert count_colour(path, plots.BAR_COLOURS["failure_with_violation"], tol=3) > 2000


def test_trajectories_refused_for_21_points():
    """Trajectory figures are for the pursuit envs; 21 points says so."""
    with pytest.raises(InvalidArgument, match="pursuit"):
        plots.play_episode("TwentyOne-v0", "scripted")


def test_cli_plot_writes_bars_trajectories_and_gifs(sweep_folder, tmp_path, capsys):
    """ld-gym plot DIR draws bars, a Figure 5 per policy and GIFs."""
    out = tmp_path / "figs"
    rc = main(["plot", str(sweep_folder), "--out", str(out), "--policies", "scripted", "--gif"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bars.png", "episode_figure5_scripted.gif", "trajectory_figure5_scripted.png"]
    assert main(["plot", str(sweep_folder), "--policies", "ghost"]) == 1
    assert "no policy 'ghost'" in capsys.readouterr().err


def test_caption_frame_adds_a_text_panel():
    """The caption panel sits below the frame (same width) and holds dark text pixels."""
    frame = np.full((60, 80, 3), 200, dtype=np.uint8)
    out = plots.caption_frame(frame, ["step 3", "select: encircle_evader (p=0.91)"])
    assert out.shape[1] == 80 and out.shape[0] > 60
    assert (out[:60] == frame).all()
    assert (out[60:] < 100).any()


@pytest.mark.llm
def test_ld_episode_gif_frames_show_the_chosen_functions(tmp_path):
    """An LD student's episode: one caption per step naming each stage's chosen function
    (a function of the base), all frames the same size, written as a GIF."""
    from ld_agents.ld.base import shipped_base

    trace = plots.play_episode("Pursuit-v0", "ld", preset="figure5", render=True)
    names = {f.name for f in shipped_base("pursuit").functions}
    assert len(trace.choices) == trace.steps
    for lines in trace.choices:
        assert len(lines) == 4
        assert all(line.split(": ")[1].split(" ")[0] in names for line in lines)
    assert len({f.shape for f in trace.frames}) == 1
    assert trace.frames[0].shape[0] > gym_frame_height()
    assert plots.save_gif(trace.frames, tmp_path / "ld.gif").stat().st_size > 0


def gym_frame_height() -> int:
    import gymnasium as gym

    env = gym.make("Pursuit-v0", render_mode="rgb_array")
    env.reset(seed=0)
    return env.render().shape[0]


def test_entropy_plot_of_the_selection_study(tmp_path):
    """The section 3.5 plot: one panel per game, written as a PNG."""
    from benchmarks.studies.ld_selection import plot_entropies

    def half(scale: float) -> dict:
        return {
            "items": 5,
            "selection_entropies": [0.1 * scale * i for i in range(5)],
            "generation_entropies": [scale * i for i in range(5)],
            "selection_entropy_bound_mean_logK": 1.4,
        }

    result = {"games": {g: {"base": half(1.0), "student": half(0.5)} for g in ("a", "b")}}
    path = plot_entropies(result, tmp_path / "e.png")
    img = iio.imread(path)
    assert img.shape[1] > 1.5 * img.shape[0]  # two panels side by side


def test_an_interrupted_plot_resumes(sweep_folder, tmp_path, monkeypatch):
    """Stopped while its GIF is drawn, the same plot command runs again: the trajectory
    written before the stop was recorded as its own at once (a rerun refused it)."""
    out = tmp_path / "figs"

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(plots, "save_gif", stop)
        with pytest.raises(KeyboardInterrupt):
            plots.plot_sweep(sweep_folder, out=out, policies=["scripted"], gif=True)
    assert (out / "trajectory_figure5_scripted.png").is_file()
    written = plots.plot_sweep(sweep_folder, out=out, policies=["scripted"], gif=True)
    assert sorted(p.name for p in written) == [
        "bars.png",
        "episode_figure5_scripted.gif",
        "trajectory_figure5_scripted.png",
    ]
