"""Train sb3-contrib ``MaskablePPO`` on the ld-gym envs: config, envs, training, evaluation.

Reads top to bottom: :class:`RLConfig` (a dataclass, one help text per field, validated
in ``__post_init__``), :func:`make_env` / :func:`make_vec_env` (the feature wrapper of
:mod:`ld_agents.rl.policy`, the training-only shaping wrapper, Stable-Baselines3's ``Monitor``,
a ``DummyVecEnv`` or ``SubprocVecEnv``), :func:`train` (``MaskablePPO.learn`` with an
evaluation callback, CSV + TensorBoard logs and a progress bar; then the model zip, its
config JSON and the training-curve PNG), and :func:`evaluate` (episodes on fixed seeds,
many envs stepped together through one batched ``predict``).

No RL algorithm is written here: PPO, the masked distributions, the rollout buffer and
the optimiser are sb3-contrib's.

>>> from ld_agents.rl.train import RLConfig, train                     # doctest: +SKIP
>>> result = train(RLConfig("Pursuit-v0", total_timesteps=2_000_000), "runs/pursuit")
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import ld_envs
from ld_agents.base import game_of
from ld_agents.rl.policy import (
    AreaBlindMask,
    FeatureObservation,
    PursuitShaping,
    RLPolicy,
    action_masks_of,
)
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import steps_lower_bound

logger = logging.getLogger(__name__)

VEC_ENVS = ("dummy", "subproc")


def _help(text: str, default: Any = None) -> Any:
    """A dataclass field carrying its help text in ``metadata["help"]``."""
    return field(default=default, metadata={"help": text})


@dataclass
class RLConfig:
    """Everything one MaskablePPO run depends on (saved as JSON beside the model)."""

    env_id: str = _help(
        "Gymnasium id: Pursuit-v0, PursuitRestricted-v0 or TwentyOne-v0.", "Pursuit-v0"
    )
    env_kwargs: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Keyword arguments for gym.make (size, evader; opponent, open_cards)."},
    )
    total_timesteps: int = _help("Env steps to train for (summed over the vector envs).", 1_000_000)
    n_envs: int = _help("Envs stepped together (one process for 'dummy').", 8)
    vec_env: str = _help("'dummy' (one process) or 'subproc' (one process per env).", "dummy")
    seed: int = _help("Seeds torch, the envs (env i gets seed + i) and PPO's sampling.", 0)
    learning_rate: float = _help("Adam learning rate, > 0.", 3e-4)
    n_steps: int = _help("Steps per env per rollout (PPO's n_steps), >= 2.", 256)
    batch_size: int = _help("Minibatch size, >= 2; n_steps * n_envs should be a multiple.", 512)
    n_epochs: int = _help("Passes over each rollout, >= 1.", 10)
    gamma: float = _help("Discount in (0, 1].", 0.99)
    gae_lambda: float = _help("GAE lambda in [0, 1].", 0.95)
    clip_range: float = _help("PPO clip range, > 0.", 0.2)
    ent_coef: float = _help("Entropy bonus, >= 0.", 0.01)
    vf_coef: float = _help("Value loss weight, >= 0.", 0.5)
    net_arch: list[int] = field(
        default_factory=lambda: [128, 128],
        metadata={"help": "Hidden layer widths of the policy and value MLPs."},
    )
    shaping_coef: float = _help(
        "Pursuit only: weight of the potential-based distance term (PursuitShaping); 0 = off.",
        1.0,
    )
    shaping_gamma: float = _help(
        "Pursuit only: the shaping term's own discount in (0, 1]; 1 pays net approach only "
        "(see PursuitShaping for why not the agent's gamma).",
        1.0,
    )
    mask_area: bool = _help(
        "Pursuit only: False leaves the restricted area out of the legal-move mask "
        "(AreaBlindMask): the agent sees the area's coordinates and learns it from violations.",
        True,
    )
    eval_freq: int = _help("Env steps between evaluations on fixed starts; 0 = never.", 50_000)
    eval_episodes: int = _help("Episodes per evaluation, >= 1.", 100)
    eval_seed: int = _help(
        "Evaluation episode i resets with seed eval_seed + i (kept apart from the sweeps').",
        1_000_000,
    )
    stop_success: float | None = _help(
        "Stop once an evaluation's success rate (pursuit) or mean reward (21) reaches this.",
        None,
    )
    max_wall_s: float | None = _help("Stop after this many seconds of training; None = no limit.")
    init_model: str | None = _help("Start from this MaskablePPO .zip (fine-tuning) instead of new.")
    torch_threads: int = _help("torch.set_num_threads for training, >= 1.", 1)
    progress_bar: bool = _help("Show sb3's progress bar (tqdm + rich).", True)
    tensorboard: bool = _help("Also write TensorBoard event files (CSV always).", True)

    def __post_init__(self) -> None:
        if self.env_id not in ld_envs.GAME_OF_ENV:
            raise InvalidArgument(
                f"env_id must be one of {sorted(ld_envs.GAME_OF_ENV)}, got {self.env_id!r}"
            )
        ints = {
            "total_timesteps": 1,
            "n_envs": 1,
            "n_steps": 2,
            "batch_size": 2,
            "n_epochs": 1,
            "eval_episodes": 1,
            "torch_threads": 1,
            "eval_freq": 0,
            "seed": 0,
            "eval_seed": 0,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise InvalidArgument(f"{name} must be an int >= {low}, got {value!r}")
        if self.vec_env not in VEC_ENVS:
            raise InvalidArgument(f"vec_env must be one of {VEC_ENVS}, got {self.vec_env!r}")
        checks: list[tuple[str, bool, str]] = [
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("gamma", 0 < self.gamma <= 1, "in (0, 1]"),
            ("gae_lambda", 0 <= self.gae_lambda <= 1, "in [0, 1]"),
            ("clip_range", self.clip_range > 0, "> 0"),
            ("ent_coef", self.ent_coef >= 0, ">= 0"),
            ("vf_coef", self.vf_coef >= 0, ">= 0"),
            ("shaping_coef", self.shaping_coef >= 0, ">= 0"),
            ("shaping_gamma", 0 < self.shaping_gamma <= 1, "in (0, 1]"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise InvalidArgument(f"{name} must be {allowed}, got {getattr(self, name)!r}")
        if not self.net_arch or any(int(w) < 1 for w in self.net_arch):
            raise InvalidArgument(
                f"net_arch must be a non-empty list of widths >= 1, got {self.net_arch!r}"
            )
        self.net_arch = [int(w) for w in self.net_arch]
        if self.max_wall_s is not None and self.max_wall_s <= 0:
            raise InvalidArgument(f"max_wall_s must be > 0 or None, got {self.max_wall_s!r}")
        if self.init_model is not None and not Path(self.init_model).is_file():
            raise InvalidArgument(
                f"init_model {self.init_model!r} is not a file (a MaskablePPO .zip)"
            )
        self.env_kwargs = dict(self.env_kwargs)

    @property
    def game(self) -> str:
        """``"pursuit"`` or ``"twentyone"``."""
        return game_of(self.env_id)

    @property
    def size(self) -> int:
        """The pursuit board size the model is trained on (0 for TwentyOne)."""
        if self.game != "pursuit":
            return 0
        from ld_envs.pursuit import DEFAULT_SIZE

        return int(self.env_kwargs.get("size", DEFAULT_SIZE))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (with the derived ``game`` and ``size``)."""
        data = dataclasses.asdict(self)
        data["game"] = self.game
        data["size"] = self.size
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RLConfig:
        """Rebuild from :meth:`to_json` output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


# --------------------------------------------------------------------------- envs


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    shaping_coef: float = 0.0,
    shaping_gamma: float = 1.0,
    mask_area: bool = True,
) -> gym.Env:
    """One training env: ``gym.make`` -> (:class:`AreaBlindMask` when ``mask_area`` is
    False) -> :class:`FeatureObservation` -> ``Monitor`` -> :class:`PursuitShaping`
    (pursuit; a ``shaping_coef`` of 0 adds nothing but ``info["is_success"]``).

    ``Monitor`` sits inside the shaping, so the logged episode returns are the env's own.
    """
    from stable_baselines3.common.monitor import Monitor

    env: gym.Env = gym.make(env_id, **env_kwargs)
    if not mask_area and game_of(env_id) == "pursuit":
        env = AreaBlindMask(env)
    env = FeatureObservation(env)
    env = Monitor(env)
    if game_of(env_id) == "pursuit":
        # always add it (coef 0 = no change) so info["is_success"] is logged
        env = PursuitShaping(env, coef=shaping_coef, gamma=shaping_gamma)
    else:
        env = _SuccessInfo(env)
    return env


class _SuccessInfo(gym.Wrapper):
    """Sets ``info["is_success"]`` (a win) at the end of a TwentyOne episode."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = dict(info)
            info["is_success"] = float(reward) > 0
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Pass the wrapped env's mask through."""
        return action_masks_of(self.env)


def _env_fn(config: RLConfig) -> gym.Env:
    return make_env(
        config.env_id,
        config.env_kwargs,
        config.shaping_coef,
        config.shaping_gamma,
        config.mask_area,
    )


def make_vec_env(config: RLConfig) -> Any:
    """``config.n_envs`` training envs in a ``DummyVecEnv`` or ``SubprocVecEnv``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns: list[Callable[[], gym.Env]] = [
        functools.partial(_env_fn, config) for _ in range(config.n_envs)
    ]
    vec = DummyVecEnv(fns) if config.vec_env == "dummy" else SubprocVecEnv(fns)
    vec.seed(config.seed)
    return vec


# --------------------------------------------------------------------------- evaluation


def evaluate(
    policy: Any,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    seeds: Sequence[int] = range(200),
    batch: int = 50,
) -> list[dict[str, Any]]:
    """Play one episode per seed (``env.reset(seed=s)``) and return one record each.

    ``policy`` is any ld-gym policy (``act_batch`` is called on up to ``batch`` envs at
    once). Records: ``seed``, ``outcome`` (pursuit) or ``result`` (21: win/loss/draw),
    ``steps``, ``violations``, ``reward`` (the env's own), and for pursuit ``lower_bound``
    (:func:`ld_envs.pursuit.steps_lower_bound` of the start).
    """
    env_kwargs = dict(env_kwargs or {})
    game = game_of(env_id)
    seeds = list(seeds)
    records: list[dict[str, Any]] = []
    for lo in range(0, len(seeds), batch):
        chunk = seeds[lo : lo + batch]
        envs = [gym.make(env_id, **env_kwargs) for _ in chunk]
        obs = []
        recs: list[dict[str, Any]] = []
        for env, s in zip(envs, chunk, strict=True):
            o, _ = env.reset(seed=int(s))
            obs.append(o)
            rec: dict[str, Any] = {"seed": int(s), "steps": 0, "violations": 0, "reward": 0.0}
            if game == "pursuit":
                base = env.unwrapped
                rec["lower_bound"] = steps_lower_bound(base.pursuers, base.evader_cell)
            recs.append(rec)
        if hasattr(policy, "reset"):
            policy.reset(seed=int(chunk[0]))
        live = list(range(len(chunk)))
        while live:
            actions = policy.act_batch([obs[i] for i in live])
            still = []
            for i, a in zip(live, actions, strict=True):
                o, r, term, trunc, info = envs[i].step(a)
                obs[i] = o
                recs[i]["reward"] += float(r)
                recs[i]["steps"] = int(info.get("steps", recs[i]["steps"] + 1))
                recs[i]["violations"] = int(info.get("violations", 0))
                if term or trunc:
                    if game == "pursuit":
                        recs[i]["outcome"] = info["outcome"]
                    else:
                        rw = recs[i]["reward"]
                        recs[i]["result"] = "win" if rw > 0 else "loss" if rw < 0 else "draw"
                else:
                    still.append(i)
            live = still
        for env in envs:
            env.close()
        records.extend(recs)
    return records


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Rates and means of :func:`evaluate` records (pursuit or 21)."""
    n = len(records)
    if n == 0:
        return {"episodes": 0}
    out: dict[str, float] = {
        "episodes": n,
        "mean_reward": float(np.mean([r["reward"] for r in records])),
    }
    if "outcome" in records[0]:
        wins = [r for r in records if r["outcome"] == "success"]
        out["success"] = len(wins) / n
        out["failure_without_violation"] = (
            sum(r["outcome"] == "failure_without_violation" for r in records) / n
        )
        out["failure_with_violation"] = (
            sum(r["outcome"] == "failure_with_violation" for r in records) / n
        )
        out["mean_steps_success"] = float(np.mean([r["steps"] for r in wins])) if wins else math.nan
        out["mean_lower_bound_success"] = (
            float(np.mean([r["lower_bound"] for r in wins])) if wins else math.nan
        )
        out["mean_violations"] = float(np.mean([r["violations"] for r in records]))
        out["episodes_with_violation"] = sum(r["violations"] > 0 for r in records) / n
    else:
        for k in ("win", "loss", "draw"):
            out[k] = sum(r["result"] == k for r in records) / n
    return out


# --------------------------------------------------------------------------- training


def _eval_callback(config: RLConfig, out_dir: Path, t0: float) -> Any:
    """An sb3 callback: evaluation on fixed seeds, CSV row + logger record, early stops."""
    from stable_baselines3.common.callbacks import BaseCallback

    seeds = range(config.eval_seed, config.eval_seed + config.eval_episodes)
    path = out_dir / "eval.csv"

    class EvalAndStop(BaseCallback):
        """Evaluate every ``eval_freq`` env steps; stop on ``stop_success`` / ``max_wall_s``."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = 0
            self.rows: list[dict[str, Any]] = []
            self.reached_at: dict[str, float] | None = None
            self.stop_reason = "total_timesteps"

        def _evaluate(self) -> bool:
            policy = RLPolicy(
                config.game, model=self.model, size=config.size or None, mask_area=config.mask_area
            )
            summary = summarize(evaluate(policy, config.env_id, config.env_kwargs, seeds))
            row = {"timesteps": int(self.num_timesteps), "wall_s": round(time.time() - t0, 2)}
            row.update({k: round(float(v), 4) for k, v in summary.items()})
            self.rows.append(row)
            self.model.save(str(out_dir / "checkpoint.zip"))  # the latest evaluated weights
            write_header = not path.exists()
            with path.open("a", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                if write_header:
                    writer.writeheader()
                writer.writerow(row)
            for k, v in row.items():
                if k not in ("timesteps", "wall_s", "episodes"):
                    self.logger.record(f"eval/{k}", v)
            logger.info("eval at %d steps: %s", self.num_timesteps, row)
            score = row.get("success", row.get("mean_reward"))
            if (
                config.stop_success is not None
                and score is not None
                and score >= config.stop_success
            ):
                self.reached_at = {"timesteps": row["timesteps"], "wall_s": row["wall_s"]}
                self.stop_reason = f"stop_success {config.stop_success} reached"
                return False
            return True

        def _on_training_start(self) -> None:
            if config.eval_freq:
                self._evaluate()
                self.next_eval = self.num_timesteps + config.eval_freq

        def _on_step(self) -> bool:
            if self.stop_reason != "total_timesteps":
                return False
            if config.max_wall_s is not None and time.time() - t0 > config.max_wall_s:
                self.stop_reason = f"max_wall_s {config.max_wall_s} reached"
                return False
            if config.eval_freq and self.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_freq
                return self._evaluate()
            return True

        def _on_training_end(self) -> None:
            if config.eval_freq and (
                not self.rows or self.rows[-1]["timesteps"] != self.num_timesteps
            ):
                self._evaluate()

    return EvalAndStop()


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model_path: Path
    config_path: Path
    curve_path: Path | None
    timesteps: int
    wall_s: float
    stop_reason: str
    evals: list[dict[str, Any]]
    reached_at: dict[str, float] | None = None


def run_name(config: RLConfig) -> str:
    """``<env>_maskppo_s<seed>_<UTC time>``: env, policy, seed and time."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{config.env_id}_maskppo_s{config.seed}_{stamp}"


def train(
    config: RLConfig, out_dir: str | Path, model_name: str = "model", plot: bool = True
) -> TrainResult:
    """Train (or fine-tune, with ``init_model``) MaskablePPO and save its artefacts.

    ``out_dir`` gets ``<model_name>.zip``, ``<model_name>.json`` (config, git commit,
    versions, timesteps, wall time, stop reason, feature scales), ``progress.csv`` and
    TensorBoard files (sb3's logger), ``eval.csv`` (one row per evaluation),
    ``checkpoint.zip`` (the weights of the latest evaluation) and, with ``plot``,
    ``<model_name>_curve.png``.
    """
    import sb3_contrib
    import stable_baselines3
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import configure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.csv").unlink(missing_ok=True)
    torch.set_num_threads(config.torch_threads)
    vec = make_vec_env(config)
    formats = ["csv", "tensorboard"] if config.tensorboard else ["csv"]
    sb3_logger = configure(str(out), formats)
    t0 = time.time()
    if config.init_model is not None:
        model = MaskablePPO.load(config.init_model, env=vec, device="cpu", seed=config.seed)
        model.learning_rate = config.learning_rate
        model._setup_lr_schedule()
        logger.info("fine-tuning %s on %s", config.init_model, config.env_id)
    else:
        model = MaskablePPO(
            "MlpPolicy",
            vec,
            learning_rate=config.learning_rate,
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            clip_range=config.clip_range,
            ent_coef=config.ent_coef,
            vf_coef=config.vf_coef,
            policy_kwargs={"net_arch": list(config.net_arch)},
            seed=config.seed,
            device="cpu",
            verbose=0,
        )
    model.set_logger(sb3_logger)
    callback = _eval_callback(config, out, t0)
    model.learn(
        total_timesteps=config.total_timesteps,
        callback=callback,
        progress_bar=config.progress_bar,
        reset_num_timesteps=True,
    )
    wall = time.time() - t0
    model_path = out / f"{model_name}.zip"
    model.save(str(model_path))
    vec.close()

    from ld_agents.files import git_commit

    meta = {
        "config": config.to_json(),
        "run_name": run_name(config),
        "timesteps": int(model.num_timesteps),
        "wall_s": round(wall, 1),
        "stop_reason": callback.stop_reason,
        "reached_at": callback.reached_at,
        "final_eval": callback.rows[-1] if callback.rows else None,
        "git_commit": git_commit(),
        "versions": {
            "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__,
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
        },
    }
    config_path = out / f"{model_name}.json"
    config_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    curve_path: Path | None = out / f"{model_name}_curve.png" if plot else None
    if curve_path is not None:
        try:
            title = f"MaskablePPO on {config.env_id}"
            plot_curve(out, curve_path, title=title, reference=_references(config))
        except Exception as exc:  # a plot must never lose a trained model
            logger.warning("could not plot the training curve: %s", exc)
            curve_path = None
    logger.info(
        "saved %s after %d steps in %.0f s (%s)",
        model_path,
        model.num_timesteps,
        wall,
        callback.stop_reason,
    )
    return TrainResult(
        model_path=model_path,
        config_path=config_path,
        curve_path=curve_path,
        timesteps=int(model.num_timesteps),
        wall_s=wall,
        stop_reason=callback.stop_reason,
        evals=callback.rows,
        reached_at=callback.reached_at,
    )


# --------------------------------------------------------------------------- curve


def _references(config: RLConfig) -> dict[str, float] | None:
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
