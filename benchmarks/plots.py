"""Figures: the paper's Figure 5 for any policy, bar charts of the tables, episode GIFs.

* :func:`plot_trajectories` draws one pursuit episode on the board as the paper's Figure 5
  does: the three pursuers' paths as green, red and grey dashed lines (A, B, C), the
  evader's in orange, every cell a piece passed through shaded in its colour, darker the
  more often it was passed; starts as dots, ends as crosses; the restricted area hatched.
* :func:`plot_table_bars` draws a sweep's table as bar charts with 95% error bars.
* :func:`save_gif` writes the ``rgb_array`` frames of an episode as an animated GIF.
* :func:`plot_sweep` draws all of these for a sweep folder (``ld-gym plot``).

:func:`play_episode` replays one episode (a preset start such as ``figure5``, or episode
``i`` of a sweep with the sweep's seeds) and returns its trace. Matplotlib runs on the
Agg backend; every file is written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.games import build_env, build_opponent, build_policy, game_hooks
from benchmarks.optimum import exact_optimum
from benchmarks.results_io import write_bytes_atomic
from benchmarks.specs import PolicySpec
from benchmarks.tables import pursuit_row, twentyone_row
from ld_agents.files import check_output_folder, mark_made, output_path
from ld_agents.seeding import episode_seed, policy_seed
from ld_envs.errors import InvalidArgument, did_you_mean, unknown_name
from ld_envs.pursuit import PRESETS

logger = logging.getLogger(__name__)

#: Figure 5's colours: pursuers A, B, C green, red, grey (dashed); the evader orange
PURSUER_COLOURS = ("#2ca02c", "#d62728", "#7f7f7f")
EVADER_COLOUR = "#ff7f0e"
START_COLOUR = "#1f77b4"  # the paper's blue dots
AREA_COLOUR = "#555555"  # the restricted area: edge and hatch
AREA_FACE = "#c6c6dc"  # its fill (a bluish grey no blend of the pieces produces)
BAR_COLOURS = {
    "success": "#2ca02c",
    "failure_without_violation": "#7f7f7f",
    "failure_with_violation": "#d62728",
    "win": "#2ca02c",
    "loss": "#d62728",
    "draw": "#7f7f7f",
}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path | str, dpi: int = 110) -> Path:
    """Write a figure as PNG to ``path`` atomically, close it, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path


# ---------------------------------------------------------------------------- episodes


@dataclass
class EpisodeTrace:
    """One played episode: positions per step, outcome, and frames when rendered."""

    env_id: str
    policy: str
    #: (pursuer cells A, B, C; evader cell) after reset and after every step
    history: list[tuple[list[tuple[int, int]], tuple[int, int]]]
    size: int
    area: tuple[int, int, int, int] | None
    outcome: str | None
    steps: int
    violations: int
    frames: list[np.ndarray] = field(default_factory=list)
    #: per step, the LD student's stage choices ("stage: function (p=...)"); empty for
    #: policies that do not select functions
    choices: list[list[str]] = field(default_factory=list)
    #: the extra rules in force, in words ("" when none), and the cells they forbid at the
    #: start, per piece (``A``, ``B``, ``C``, ``evader``)
    rules: str = ""
    forbidden: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def stage_choices(agent: Any) -> list[str]:
    """The functions an LD-style policy chose for its last decision, one line per stage
    (``[]`` for other policies)."""
    decisions = getattr(agent, "last_decisions", None)
    if not decisions:
        return []
    return [
        f"{d.stage}: {d.chosen} (p={max(d.probs()):.2f}){'' if d.ok else ' FAILED'}"
        for d in decisions[0]
    ]


def caption_frame(frame: np.ndarray, lines: Sequence[str], font_size: int = 14) -> np.ndarray:
    """The frame with a text panel below it (one line per entry), for GIFs."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    height = 8 + (font_size + 4) * max(len(lines), 1)
    img = Image.new("RGB", (frame.shape[1], frame.shape[0] + height), (255, 255, 255))
    img.paste(Image.fromarray(frame), (0, 0))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((6, frame.shape[0] + 4 + i * (font_size + 4)), line, fill=(20, 20, 20), font=font)
    return np.asarray(img)


def play_episode(
    env_id: str,
    policy: PolicySpec | str,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    episode: int | None = None,
    sweep_seed: int = 0,
    seed: int = 0,
    render: bool = False,
) -> EpisodeTrace:
    """Play one pursuit episode and return its trace.

    ``preset`` (e.g. ``"figure5"``) sets the start, the env reset with ``seed``; or
    ``episode`` replays episode ``i`` of a sweep seeded ``sweep_seed`` (the same start,
    evader and policy seeds as the sweep's non-batching rollout). ``render`` keeps the
    ``rgb_array`` frames for :func:`save_gif`.
    """
    spec = policy if isinstance(policy, PolicySpec) else PolicySpec(policy)
    env_kwargs = dict(env_kwargs or {})
    if game_hooks(env_id).opponent_key != "evader":
        raise InvalidArgument(f"trajectories are drawn for the pursuit envs, not {env_id}")
    if preset is not None and episode is not None:
        raise InvalidArgument("give a preset start or a sweep episode, not both")
    agent = build_policy(spec, env_id, env_kwargs)
    env = build_env(
        env_id,
        env_kwargs,
        build_opponent(env_id, env_kwargs),
        render_mode="rgb_array" if render else None,
    )
    try:
        if episode is not None:
            obs, info = env.reset(seed=episode_seed(sweep_seed, episode))
            agent.reset(seed=policy_seed(sweep_seed, episode))
        else:
            options = {"preset": preset} if preset else None
            obs, info = env.reset(seed=seed, options=options)
            agent.reset(seed=seed)
        u = env.unwrapped
        rules = u.rules_text()
        forbidden = {k: sorted(v) for k, v in u.forbidden_now().items() if v} if rules else {}
        frames = [env.render()] if render else []
        choices: list[list[str]] = []
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            done = terminated or truncated
            chosen = stage_choices(agent)
            if chosen:
                choices.append(chosen)
            if render:
                frames.append(env.render())
        if render and choices:  # caption each frame with the functions behind its move
            width = max(len(c) for c in choices)
            blank = [""] * width
            frames = [
                caption_frame(f, [f"step {t}", *((choices[t - 1] if t else []) + blank)[:width]])
                for t, f in enumerate(frames)
            ]
        return EpisodeTrace(
            env_id=env_id,
            policy=spec.label,
            history=[([tuple(p) for p in ps], tuple(e)) for ps, e in u.history],
            size=u.size,
            area=None if u.area is None else tuple(u.area),
            outcome=info.get("outcome"),
            steps=int(info.get("steps", 0)),
            violations=int(info.get("violations", 0)),
            frames=frames,
            choices=choices,
            rules=rules,
            forbidden=forbidden,
        )
    finally:
        env.close()


# ---------------------------------------------------------------------------- figure 5


def plot_trajectories(trace: EpisodeTrace, path: Path | str, title: str | None = None) -> Path:
    """The paper's Figure 5 for one episode (see the module docstring); returns the path."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    plt = pyplot()
    n = trace.size
    fig, ax = plt.subplots(figsize=(6.4, 6.8))
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(0, n, 2 if n > 12 else 1))
    ax.set_yticks(range(0, n, 2 if n > 12 else 1))
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="#e4e4e0", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("x")
    ax.set_ylabel("y")

    if trace.area is not None:
        x0, y0, x1, y1 = trace.area
        ax.add_patch(
            Rectangle(
                (x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                facecolor=AREA_FACE, edgecolor=AREA_COLOUR, hatch="//", linewidth=1.2,
                label="restricted area", zorder=1,
            )
        )  # fmt: skip

    _draw_forbidden(ax, trace.forbidden)
    paths = [[ps[i] for ps, _ in trace.history] for i in range(3)]
    evader_path = [e for _, e in trace.history]
    # shading: each piece's visited cells, alpha growing with the number of passages
    pieces = [*zip(paths, PURSUER_COLOURS, strict=True), (evader_path, EVADER_COLOUR)]
    for cells, colour in pieces:
        counts = Counter(cells)
        top = max(counts.values())
        for (x, y), c in counts.items():
            alpha = 0.12 + 0.5 * (c / top if top > 1 else 0.0)
            ax.add_patch(
                Rectangle(
                    (x - 0.5, y - 0.5), 1, 1, facecolor=to_rgba(colour, alpha),
                    edgecolor="none", zorder=2,
                )
            )  # fmt: skip
    for i, (cells, colour) in enumerate(zip(paths, PURSUER_COLOURS, strict=True)):
        xs, ys = zip(*cells, strict=True)
        ax.plot(xs, ys, linestyle="--", color=colour, linewidth=2.0, zorder=4,
                label=f"pursuer {'ABC'[i]}")  # fmt: skip
        ax.scatter([xs[0]], [ys[0]], s=70, color=START_COLOUR, edgecolor="white", zorder=6)
        ax.annotate("ABC"[i], (xs[0], ys[0]), xytext=(5, 5), textcoords="offset points",
                    fontsize=9, color=colour, weight="bold", zorder=7)  # fmt: skip
        ax.scatter([xs[-1]], [ys[-1]], s=60, marker="X", color=colour, edgecolor="black",
                   linewidth=0.6, zorder=6)  # fmt: skip
    exs, eys = zip(*evader_path, strict=True)
    ax.plot(exs, eys, linestyle="-", color=EVADER_COLOUR, linewidth=1.6, zorder=4, label="evader")
    ax.scatter([exs[0]], [eys[0]], s=80, color=EVADER_COLOUR, edgecolor="white", zorder=6)
    # the evader's end as a ring under the pursuers' crosses (a pursuer may share its cell)
    ax.scatter([exs[-1]], [eys[-1]], s=260, marker="o", facecolor="none",
               edgecolor=EVADER_COLOUR, linewidth=2.2, zorder=5)  # fmt: skip
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=5, fontsize=7.5, frameon=False)
    outcome = (trace.outcome or "running").replace("_", " ")
    fig.suptitle(
        title
        or f"{trace.env_id}, {trace.policy}: {outcome} in {trace.steps} steps"
        f"{f', {trace.violations} violations' if trace.violations else ''}",
        fontsize=10,
    )
    note = (
        "dots: starts; crosses (pursuers) and ring (evader): ends; darker cells: passed more often"
    )
    if trace.rules:
        note = f"rules: {trace.rules}\n{note}"
    ax.set_title(note, fontsize=7.5, color="#555555", wrap=True)
    fig.tight_layout()
    return save_figure(fig, path)


def _draw_forbidden(ax: Any, forbidden: Mapping[str, Sequence[tuple[int, int]]]) -> None:
    """Cross-hatch the cells the extra rules forbid at the start: grey where every piece is
    barred, in a piece's colour where only some are (pieces A, B, C, evader)."""
    from matplotlib.patches import Rectangle

    colours = dict(zip(("A", "B", "C", "evader"), (*PURSUER_COLOURS, EVADER_COLOUR), strict=True))
    barred: dict[tuple[int, int], list[str]] = {}
    for piece, cells in forbidden.items():
        for cell in cells:
            barred.setdefault(tuple(cell), []).append(piece)
    labelled = set()
    for (x, y), pieces in sorted(barred.items()):
        every = len(pieces) == len(colours)
        colour = AREA_COLOUR if every else colours.get(pieces[0], AREA_COLOUR)
        label = "forbidden (every piece)" if every else f"forbidden to {', '.join(pieces)}"
        ax.add_patch(
            Rectangle(
                (x - 0.5, y - 0.5), 1, 1, facecolor="none", edgecolor=colour, hatch="xx",
                linewidth=0, zorder=1, label=None if label in labelled else label,
            )
        )  # fmt: skip
        labelled.add(label)


# ---------------------------------------------------------------------------- GIF


def save_gif(frames: Sequence[np.ndarray], path: Path | str, fps: float = 4.0) -> Path:
    """Write ``rgb_array`` frames as a looping GIF (the last frame held a little longer)."""
    import imageio.v3 as iio

    if not frames:
        raise InvalidArgument("no frames to write; play the episode with render=True")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    step_ms = 1000.0 / fps
    durations = [step_ms] * (len(frames) - 1) + [step_ms * 4]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".gif", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=durations, loop=0)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------------------- bars


def plot_table_bars(
    manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]], path: Path | str
) -> Path:
    """A sweep's table as bar charts with 95% error bars; returns the path.

    Pursuit: outcome rates per policy (Wilson intervals) and average steps of success
    (Student-t intervals) with the mean lower bound as a marker. 21 points: victory / loss
    / draw rates and mean reward, with the exact optimum's expected reward as a line.
    """
    from ld_agents.base import game_of

    plt = pyplot()
    policies = [p["label"] for p in manifest["policies"]]
    groups = {p: [r for r in records if r["policy"] == p] for p in policies}
    policies = [p for p in policies if groups[p]]
    if not policies:
        raise InvalidArgument("no finished episodes to plot")
    game = game_of(manifest["env_id"])
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(4.0 + 1.6 * len(policies), 4.2), gridspec_kw={"width_ratios": [2, 1]}
    )
    x = np.arange(len(policies))
    if game == "pursuit":
        rows = [pursuit_row(p, groups[p]) for p in policies]
        metrics = [
            ("success", "success"),
            ("failure_without_violation", "fail w/o violation"),
            ("failure_with_violation", "fail w/ violation"),
        ]
        second = [r.steps_success for r in rows]
        second_label = "average steps of success"
        bounds = [r.lower_bound_success.value for r in rows]
    else:
        rows = [twentyone_row(p, groups[p], None) for p in policies]
        metrics = [("win", "victory"), ("loss", "loss"), ("draw", "draw")]
        second = [r.reward for r in rows]
        second_label = "mean reward"
        bounds = []
    width = 0.8 / len(metrics)
    for k, (attr, label) in enumerate(metrics):
        ests = [getattr(r, attr) for r in rows]
        vals = np.array([100 * e.value for e in ests])
        err = np.array([[100 * (e.value - e.lo), 100 * (e.hi - e.value)] for e in ests]).T
        ax1.bar(x + (k - 1) * width, vals, width, yerr=err, capsize=3, label=label,
                color=BAR_COLOURS[attr], edgecolor="black", linewidth=0.5)  # fmt: skip
    ax1.set_xticks(x, policies, rotation=20 if len(policies) > 3 else 0)
    ax1.set_ylim(0, 105)
    ax1.set_ylabel("% of episodes (95% Wilson interval)")
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    ax1.set_title(f"{manifest['env_id']}: outcomes", fontsize=10)

    vals = np.array([0.0 if math.isnan(e.value) else e.value for e in second])
    err = np.array(
        [[0.0, 0.0] if math.isnan(e.lo) else [e.value - e.lo, e.hi - e.value] for e in second]
    ).T
    ax2.bar(x, vals, 0.6, yerr=err, capsize=3, color="#9ecae1", edgecolor="black", linewidth=0.5)
    if bounds:
        ok = [i for i, b in enumerate(bounds) if not math.isnan(b)]
        if ok:
            ax2.scatter(x[ok], [bounds[i] for i in ok], marker="_", s=400, color="black",
                        zorder=5, label="mean lower bound")  # fmt: skip
            ax2.legend(fontsize=8)
    if game != "pursuit":
        ax2.axhline(0, color="black", linewidth=0.6)
        opt = exact_optimum(manifest.get("env_kwargs", {}))
        if opt is not None:
            ax2.axhline(opt.expected_reward, color="#2ca02c", linestyle="--",
                        label=f"optimum (exact) {opt.expected_reward:+.3f}")  # fmt: skip
            ax2.legend(fontsize=8)
    for i, e in enumerate(second):
        if math.isnan(e.value):
            ax2.text(x[i], 0, "n/a", ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(x, policies, rotation=20 if len(policies) > 3 else 0)
    ax2.set_title(second_label + " (95%)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- a sweep folder


def plot_sweep(
    folder: Path | str,
    out: Path | str | None = None,
    *,
    policies: Sequence[str] | None = None,
    preset: str | None = None,
    episode: int | None = None,
    gif: bool = False,
    bars: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Every figure of a sweep folder, from its manifest; returns the files written.

    The bar chart of its table (unless ``bars`` is off) and, for pursuit, each policy's
    trajectory (``policies``: labels, default all) from ``preset`` (default ``figure5``)
    or from the sweep's ``episode``, with ``gif`` an animated GIF of it too. Files go to
    ``out`` (default ``folder/plots``). Every choice and output file is checked before the
    first figure is drawn: a file that an earlier ``plot`` did not write (or that changed
    since) is replaced only with ``overwrite`` (:func:`ld_agents.files.check_output_folder`).
    """
    from benchmarks.sweep import load_sweep

    folder = Path(folder)
    result = load_sweep(folder)
    manifest = result.manifest
    out = folder / "plots" if out is None else output_path(out)
    env_id = manifest["env_id"]
    pursuit = game_hooks(env_id).opponent_key == "evader"
    if not pursuit and (gif or episode is not None or preset is not None):
        raise InvalidArgument(f"trajectories, presets and GIFs are drawn for pursuit, not {env_id}")
    specs = {
        p["label"]: PolicySpec(p["name"], p["kwargs"], p["label"]) for p in manifest["policies"]
    }
    wanted = list(specs) if policies is None else list(policies)
    for label in wanted:
        if label not in specs:
            hint = did_you_mean(label, specs)
            raise InvalidArgument(
                f"no policy {label!r} in {folder}{hint} known: {', '.join(specs)}"
            )
    if episode is not None and not 0 <= episode < manifest["episodes"]:
        raise InvalidArgument(
            f"--episode must lie in [0, {manifest['episodes'] - 1}], got {episode}"
        )
    start = None if episode is not None else (preset or "figure5")
    if start is not None and start not in PRESETS:
        raise unknown_name("preset", start, PRESETS)
    tag = f"episode{episode}" if episode is not None else start
    if not pursuit:
        wanted = []
    names = ["bars.png"] if bars else []
    for label in wanted:
        names.append(f"trajectory_{tag}_{label}.png")
        names += [f"episode_{tag}_{label}.gif"] if gif else []
    check_output_folder(out, names, overwrite=overwrite)
    written = []
    if bars:
        written.append(plot_table_bars(manifest, result.records, out / "bars.png"))
        mark_made(written[-1:])
    for label in wanted:
        trace = play_episode(
            env_id,
            specs[label],
            manifest["env_kwargs"],
            preset=start,
            episode=episode,
            sweep_seed=manifest["seed"],
            seed=manifest["seed"],
            render=gif,
        )
        # each file is recorded as made as soon as it is written, so that a rerun after an
        # interruption (the GIF takes longest) may make it again
        written.append(plot_trajectories(trace, out / f"trajectory_{tag}_{label}.png"))
        mark_made(written[-1:])
        if gif:
            written.append(save_gif(trace.frames, out / f"episode_{tag}_{label}.gif"))
            mark_made(written[-1:])
    return written
