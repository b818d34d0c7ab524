"""Training the MaskablePPO baselines: the shipped models' configs, a run, shipping it.

Reads top to bottom: the game's default config (:data:`PRESETS`, overridable field by
field), then :func:`ld_agents.rl.train.train` (vector envs, MaskablePPO, evaluation
callback, CSV and TensorBoard logs, progress bar), then the model zip, config JSON and
curve PNG in the run folder; :func:`ship` copies them to ``assets/models/rl_<game>.zip`` /
``.json`` / ``_curve.png``, which the ``rl`` policy loads by default, only when asked.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ld_agents.files import check_output_file, check_output_folder
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

#: the shipped models' configs (see benchmarks/results/rl/README.md for the budgets)
PRESETS: dict[str, dict[str, Any]] = {
    "pursuit": {
        "env_id": "Pursuit-v0",
        "total_timesteps": 3_000_000,
        "n_envs": 8,
        "n_steps": 256,
        "batch_size": 512,
        "learning_rate": 5e-4,
        "gamma": 0.98,
        "ent_coef": 0.005,
        "shaping_coef": 1.0,
        "shaping_gamma": 1.0,
        "eval_freq": 100_000,
        "eval_episodes": 100,
        "max_wall_s": 2400.0,
    },
    "twentyone": {
        "env_id": "TwentyOne-v0",
        "total_timesteps": 400_000,
        "n_envs": 8,
        "n_steps": 128,
        "batch_size": 256,
        "learning_rate": 3e-4,
        "ent_coef": 0.01,
        "gamma": 1.0,
        "gae_lambda": 1.0,
        "eval_freq": 25_000,
        "eval_episodes": 2000,
        "net_arch": [64, 64],
        "max_wall_s": 1200.0,
    },
}


#: RLConfig fields that only the pursuit envs use
PURSUIT_ONLY = ("shaping_coef", "shaping_gamma", "mask_area")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_config(game: str, overrides: list[str], **fields: Any) -> Any:
    """The game's preset with ``field=value`` overrides (values parsed as JSON); an env id
    of another game is refused (:func:`check_env_of_game`)."""
    from ld_agents.rl.train import RLConfig

    if game not in PRESETS:
        raise InvalidArgument(f"unknown game {game!r}; known: {', '.join(PRESETS)}")
    data = dict(PRESETS[game])
    known = set(RLConfig.help())
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            raise InvalidArgument(
                f"--set wants field=value with a field of RLConfig ({', '.join(sorted(known))}); "
                f"got {item!r}"
            )
        data[key] = _parse_value(value)
    data.update({k: v for k, v in fields.items() if v is not None})
    check_env_of_game(data.get("env_id"), game)
    pursuit_only = [k for k in PURSUIT_ONLY if k in data and k not in PRESETS[game]]
    if game != "pursuit" and pursuit_only:
        raise InvalidArgument(
            f"--set {', '.join(pursuit_only)}: pursuit only (the {game} envs have no "
            "shaping or restricted area)"
        )
    return RLConfig(**data)


def check_env_of_game(env_id: object, game: str) -> None:
    """Refuse an env id (``--env-id`` or ``--set env_id=...``) of another game than
    ``game``: its preset (network, budget, reward shaping) was made for that game."""
    from ld_agents.base import game_of
    from ld_envs import GAME_OF_ENV

    if not isinstance(env_id, str):
        raise InvalidArgument(f"env id must be a string such as {PRESETS[game]['env_id']!r}")
    found = game_of(env_id)  # an unknown id fails here, naming the known ones
    if found != game:
        same = sorted(e for e, g in GAME_OF_ENV.items() if g == game)
        raise InvalidArgument(
            f"env id {env_id!r} is a {found} env, not a {game} one; give --env-id one of "
            f"{', '.join(same)}, or --game {found} to train on {env_id}"
        )


#: what :func:`ld_agents.rl.train.train` writes in its run folder
RUN_OUTPUTS = ("model.zip", "model.json", "model_curve.png", "eval.csv", "progress.csv")


def ship_paths(game: str) -> list[Path]:
    """Where :func:`ship` copies a run: ``assets/models/rl_<game>.zip`` / ``.json`` /
    ``_curve.png``."""
    from ld_agents.rl.policy import default_model_path

    dest = default_model_path(game)
    return [dest, dest.with_suffix(".json"), dest.with_name(dest.stem + "_curve.png")]


def check_outputs(out: Path | str, ship_game: str | None, overwrite: bool = False) -> Path:
    """May a training run write to ``out`` (none of a run's files there) and ship to
    ``assets/models/`` (no model there), unless ``overwrite``? Checked before training."""
    folder = check_output_folder(out, RUN_OUTPUTS, overwrite=overwrite, replaceable=False)
    if ship_game is not None:
        for path in ship_paths(ship_game):
            check_output_file(path, overwrite=overwrite, option="--ship", replaceable=False)
    return folder


def ship(result: Any, game: str) -> list[Path]:
    """Copy a run's model, config and curve to ``assets/models/rl_<game>.*``."""
    dest, config_dest, curve_dest = ship_paths(game)
    dest.parent.mkdir(parents=True, exist_ok=True)
    pairs = [(result.model_path, dest), (result.config_path, config_dest)]
    if result.curve_path is not None:
        pairs.append((result.curve_path, curve_dest))
    for src, dst in pairs:
        shutil.copyfile(src, dst)
    size_mb = dest.stat().st_size / 2**20
    if size_mb > 5:
        logger.warning("%s is %.1f MB (over the 5 MB the assets aim for)", dest, size_mb)
    return [d for _, d in pairs]


def default_out(config: Any) -> Path:
    """The run folder when none is named: ``runs/rl/<run name>`` under the current directory."""
    from ld_agents.rl.train import run_name

    return Path("runs") / "rl" / run_name(config)


def train_run(
    config: Any,
    out: Path | str | None = None,
    ship_game: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train with ``config`` into ``out`` (default :func:`default_out`) and return a summary
    (model path, timesteps, wall time, stop reason, last evaluation); with ``ship_game``
    also copy the result into ``assets/models/`` (:func:`ship`). The folders are checked
    first (:func:`check_outputs`): nothing there is replaced unless ``overwrite``."""
    from ld_agents.rl.train import train

    out = check_outputs(default_out(config) if out is None else out, ship_game, overwrite)
    logger.info("training %s -> %s", config.env_id, out)
    result = train(config, out)
    summary: dict[str, Any] = {
        "model": str(result.model_path),
        "timesteps": result.timesteps,
        "wall_s": round(result.wall_s, 1),
        "stop_reason": result.stop_reason,
        "final_eval": result.evals[-1] if result.evals else None,
    }
    if ship_game is not None:
        summary["shipped"] = [str(p) for p in ship(result, ship_game)]
    return summary
