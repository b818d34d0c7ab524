"""Train sb3-contrib ``MaskablePPO`` on the ld-gym envs: :func:`train` and its run artefacts.

Reads top to bottom: the config (:class:`~ld_agents.rl.config.RLConfig`), the vector of
training envs (:func:`~ld_agents.rl.envs.make_vec_env`), the model, ``MaskablePPO.learn``
with an evaluation callback (:func:`~ld_agents.rl.evaluation.evaluate` on fixed seeds, a
row of ``eval.csv`` each, early stops), CSV + TensorBoard logs and a progress bar; then
the model zip, its config JSON and the training-curve PNG
(:func:`~ld_agents.rl.curve.plot_curve`).

No RL algorithm is written here: PPO, the masked distributions, the rollout buffer and
the optimiser are sb3-contrib's. The config, envs, evaluation and curve names stay
importable from here, as before the package was split.

>>> from ld_agents.rl.train import RLConfig, train                     # doctest: +SKIP
>>> result = train(RLConfig("Pursuit-v0", total_timesteps=2_000_000), "runs/pursuit")
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym

from ld_agents.rl.config import VEC_ENVS, RLConfig
from ld_agents.rl.curve import optimum_reference, plot_curve
from ld_agents.rl.envs import check_env, make_env, make_vec_env
from ld_agents.rl.evaluation import evaluate, summarize
from ld_agents.rl.policy import RLPolicy
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)


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
    ``<model_name>_curve.png``. The config is checked first (:func:`check_run`); an
    attempt that fails before saving any weights removes the log files it wrote.
    """

    check_run(config)  # bad env kwargs or init model: refused before any file is written
    out = Path(out_dir)
    made_folder = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    try:
        return _train(config, out, model_name, plot)
    except BaseException:
        _remove_unsaved_attempt(out, before, made_folder)
        raise


def check_run(config: RLConfig) -> None:
    """Refuse a run that would fail at its start, building one env and reading the init
    model's spaces only (no training, no file written): ``env_kwargs`` the env does not
    take, and an ``init_model`` whose observation or action space differs from the env's
    (e.g. a 21-points model for pursuit)."""
    obs_space, action_space = check_env(config)
    if config.init_model is None:
        return
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        data, _, _ = load_from_zip_file(config.init_model, device="cpu", load_data=True)
    except Exception as exc:
        raise InvalidArgument(
            f"init_model {config.init_model!r} is not a readable MaskablePPO .zip: {exc}"
        ) from None
    data = data or {}
    for what, ours in (("observation", obs_space), ("action", action_space)):
        theirs = data.get(f"{what}_space")
        if theirs != ours:
            raise InvalidArgument(
                f"init_model {config.init_model!r} was trained on another {what} space "
                f"({_space_text(theirs)}) than {config.env_id} with env_kwargs "
                f"{config.env_kwargs} gives ({_space_text(ours)}); fine-tune a model of "
                "this game and board"
            )


def _space_text(space: Any) -> str:
    shape = getattr(space, "shape", None)
    return f"{type(space).__name__} {tuple(shape)}" if shape is not None else repr(space)


#: what an attempt writes before its first checkpoint (removed when it fails then)
_ATTEMPT_FILES = ("progress.csv", "eval.csv", "events.out.tfevents.*")


def _remove_unsaved_attempt(out: Path, before: set[Path], made_folder: bool) -> None:
    """After a failed attempt that saved no weights (no checkpoint or model zip of its
    own), remove the log files it made, so that they do not block a rerun; nothing that
    was there before, and nothing of a run that saved weights, is removed."""
    new = set(out.iterdir()) - before
    if any(p.suffix == ".zip" for p in new):
        return  # weights saved: keep everything
    for path in new:
        if path.is_file() and any(path.match(pattern) for pattern in _ATTEMPT_FILES):
            path.unlink(missing_ok=True)
    if made_folder and not any(out.iterdir()):
        out.rmdir()


def _train(config: RLConfig, out: Path, model_name: str, plot: bool) -> TrainResult:
    import sb3_contrib
    import stable_baselines3
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import configure

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

    from ld_agents.files import git_commit, write_json_atomic

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
    write_json_atomic(config_path, _finite(meta))  # no bare NaN: strict JSON readers refuse it
    curve_path: Path | None = out / f"{model_name}_curve.png" if plot else None
    if curve_path is not None:
        try:
            title = f"MaskablePPO on {config.env_id}"
            plot_curve(out, curve_path, title=title, reference=optimum_reference(config))
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


def _finite(value: Any) -> Any:
    """A copy of JSON data with NaN and infinities as ``None`` (e.g. the mean steps of
    successes when an evaluation had none)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = [
    "VEC_ENVS",
    "RLConfig",
    "TrainResult",
    "check_run",
    "evaluate",
    "make_env",
    "make_vec_env",
    "plot_curve",
    "run_name",
    "summarize",
    "train",
]
