"""Train the MaskablePPO baselines and (with ``--ship``) put them in ``assets/models/``.

    ld-gym train-rl --game pursuit --ship
    ld-gym train-rl --game twentyone --timesteps 300000 --ship
    ld-gym train-rl --game pursuit --set n_envs=4 --set ent_coef=0.005

Reads top to bottom: the game's default config (:data:`PRESETS`, overridable with
``--set field=value``; ``--help-config`` lists every field with its help), then
:func:`ld_agents.rl.train.train` (vector envs, MaskablePPO, evaluation callback, CSV and
TensorBoard logs, progress bar), then the model zip, config JSON and curve PNG; ``--ship``
copies them to ``assets/models/rl_<game>.zip`` / ``.json`` / ``_curve.png``, which the
``rl`` policy loads by default.

Also an ``ld-gym`` subcommand module (``HELP``, ``configure``, ``run``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

HELP = "train the MaskablePPO baselines (pursuit, 21 points) and ship them to assets/models/"

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


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_config(game: str, overrides: list[str], **fields: Any) -> Any:
    """The game's preset with ``field=value`` overrides (values parsed as JSON)."""
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
    return RLConfig(**data)


def ship(result: Any, game: str) -> list[Path]:
    """Copy a run's model, config and curve to ``assets/models/rl_<game>.*``."""
    from ld_agents.rl.policy import default_model_path

    dest = default_model_path(game)
    dest.parent.mkdir(parents=True, exist_ok=True)
    pairs = [
        (result.model_path, dest),
        (result.config_path, dest.with_suffix(".json")),
    ]
    if result.curve_path is not None:
        pairs.append((result.curve_path, dest.with_name(dest.stem + "_curve.png")))
    for src, dst in pairs:
        shutil.copyfile(src, dst)
    size_mb = dest.stat().st_size / 2**20
    if size_mb > 5:
        logger.warning("%s is %.1f MB (over the 5 MB the assets aim for)", dest, size_mb)
    return [d for _, d in pairs]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--game", choices=sorted(PRESETS), help="which game to train on (required to train)"
    )
    parser.add_argument("--timesteps", type=int, help="total env steps (overrides the preset)")
    parser.add_argument("--max-wall-s", type=float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, help="training seed (preset: 0)")
    parser.add_argument("--init-model", help="fine-tune this MaskablePPO .zip")
    parser.add_argument("--env-id", help="train on another env id of the game")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a field"
    )
    parser.add_argument("--out", help="run folder (default runs/rl/<run name>)")
    parser.add_argument("--ship", action="store_true", help="copy the result to assets/models/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--help-config", action="store_true", help="list RLConfig's fields with their help, exit"
    )


def run(args: argparse.Namespace) -> int:
    from ld_agents.rl.train import RLConfig, run_name, train

    if args.help_config:
        for name, text in RLConfig.help().items():
            sys.stdout.write(f"{name:18s} {text}\n")
        return 0

    config = build_config(
        args.game,
        args.set,
        total_timesteps=args.timesteps,
        max_wall_s=args.max_wall_s,
        seed=args.seed,
        init_model=args.init_model,
        env_id=args.env_id,
        progress_bar=False if args.no_progress else None,
    )
    out = Path(args.out) if args.out else Path("runs") / "rl" / run_name(config)
    logger.info("training %s -> %s", config.env_id, out)
    result = train(config, out)
    summary = {
        "model": str(result.model_path),
        "timesteps": result.timesteps,
        "wall_s": round(result.wall_s, 1),
        "stop_reason": result.stop_reason,
        "final_eval": result.evals[-1] if result.evals else None,
    }
    if args.ship:
        summary["shipped"] = [str(p) for p in ship(result, args.game)]
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0
