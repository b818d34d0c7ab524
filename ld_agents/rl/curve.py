"""The training curve of a run: :func:`plot_curve` reads ``eval.csv`` and sb3's
``progress.csv`` and draws a PNG; :func:`optimum_reference` gives the exact optimum's line
for a 21-points run."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np

from ld_agents.rl.config import RLConfig

logger = logging.getLogger(__name__)


def optimum_reference(config: RLConfig) -> dict[str, float] | None:
    """21 points against a built-in opponent: the exact optimum's expected reward."""
    opponent = config.env_kwargs.get("opponent", "dealer")
    if config.game != "twentyone" or not isinstance(opponent, str):
        return None
    try:
        from ld_agents.baselines.optimal import solve

        best = solve(opponent, bool(config.env_kwargs.get("open_cards", False)))
    except Exception as exc:  # the solver is optional for a plot
        logger.warning("no optimum reference line: %s", exc)
        return None
    return {f"exact optimum vs {opponent} ({best.expected_reward:+.4f})": best.expected_reward}


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _column(rows: list[dict[str, str]], x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        try:
            xv, yv = float(r.get(x, "")), float(r.get(y, ""))
        except ValueError:
            continue
        if math.isfinite(xv) and math.isfinite(yv):
            xs.append(xv)
            ys.append(yv)
    return xs, ys


def plot_curve(
    run_dir: str | Path,
    png: str | Path,
    title: str = "",
    reference: dict[str, float] | None = None,
) -> Path:
    """Plot a run's training curve from ``eval.csv`` and sb3's ``progress.csv``.

    Pursuit: left, the success rate of the deterministic policy on the fixed evaluation
    starts and of the training episodes (sampled actions, sb3's last-100 window); right,
    the evaluation's mean steps of successful episodes beside the steps lower bound of the
    same episodes, and its mean violations. 21 points: left, the evaluation's win / loss /
    draw rates; right, its mean reward, the training episodes' mean reward (smoothed), and
    ``reference`` lines (label -> value, e.g. the exact optimum's expected reward). The x
    axis is env steps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir)
    ev = _read_csv(run / "eval.csv")
    pr = _read_csv(run / "progress.csv")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    pursuit = bool(ev) and "success" in ev[0]
    if pursuit:
        left.plot(*_column(ev, "timesteps", "success"), "o-", label="eval success (fixed starts)")
        left.plot(
            *_column(pr, "time/total_timesteps", "rollout/success_rate"),
            label="training episodes success (sampled, last 100)",
        )
        left.set_ylabel("success rate")
        left.set_ylim(-0.02, 1.02)
        right.plot(
            *_column(ev, "timesteps", "mean_steps_success"), "o-", label="eval mean steps (success)"
        )
        right.plot(
            *_column(ev, "timesteps", "mean_lower_bound_success"),
            "--",
            label="steps lower bound (same starts)",
        )
        right.plot(*_column(ev, "timesteps", "mean_violations"), "s-", label="eval mean violations")
        right.set_ylabel("steps / violations per episode")
    else:
        left.plot(*_column(ev, "timesteps", "win"), "o-", label="eval win rate")
        left.plot(*_column(ev, "timesteps", "loss"), "o-", label="eval loss rate")
        left.plot(*_column(ev, "timesteps", "draw"), "o-", label="eval draw rate")
        left.set_ylabel("rate")
        left.set_ylim(-0.02, 1.02)
        n_eval = int(float(ev[0].get("episodes", 0))) if ev else 0
        right.plot(
            *_column(ev, "timesteps", "mean_reward"),
            "o-",
            label=f"eval mean reward ({n_eval} fixed deals, s.e. ~{1 / max(n_eval, 1) ** 0.5:.2f})",
        )
        xs, ys = _column(pr, "time/total_timesteps", "rollout/ep_rew_mean")
        if ys:
            k = max(1, len(ys) // 25)
            smooth = np.convolve(ys, np.ones(k) / k, mode="valid")
            right.plot(
                xs[k - 1 :], smooth, alpha=0.6, label=f"training mean reward (smoothed x{k})"
            )
        for label, value in (reference or {}).items():
            right.axhline(value, color="k", ls="--", lw=1, label=label)
        right.set_ylabel("mean reward per game")
    from matplotlib.ticker import EngFormatter

    for ax in (left, right):
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(png)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
