"""The configuration of one MaskablePPO run: :class:`RLConfig`.

A dataclass with one help text per field (``RLConfig.help()``) and validation in
``__post_init__`` that names the field and its allowed range; saved as JSON beside the
model (``to_json`` / ``from_json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ld_envs
from ld_agents.base import game_of
from ld_envs.errors import InvalidArgument

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
        self._check_types()
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
        if not self.net_arch or any(w < 1 for w in self.net_arch):
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

    def _check_types(self) -> None:
        """Each field's type (a ``--set`` value parsed as JSON can be anything): one clear
        error naming the field, before any range check."""

        def number(v: Any) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        def integer(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        expected: list[tuple[str, bool, str]] = [
            ("env_id", isinstance(self.env_id, str), "a string"),
            ("env_kwargs", isinstance(self.env_kwargs, dict), 'a JSON object, e.g. {"size": 9}'),
            ("vec_env", isinstance(self.vec_env, str), f"one of {VEC_ENVS}"),
            (
                "net_arch",
                isinstance(self.net_arch, (list, tuple)) and all(integer(w) for w in self.net_arch),
                "a list of int widths, e.g. [64, 64]",
            ),
            (
                "stop_success",
                self.stop_success is None or number(self.stop_success),
                "a number or null",
            ),
            ("max_wall_s", self.max_wall_s is None or number(self.max_wall_s), "a number or null"),
            (
                "init_model",
                self.init_model is None or isinstance(self.init_model, (str, Path)),
                "a path or null",
            ),
        ]
        for name in (
            "learning_rate",
            "gamma",
            "gae_lambda",
            "clip_range",
            "ent_coef",
            "vf_coef",
            "shaping_coef",
            "shaping_gamma",
        ):
            expected.append((name, number(getattr(self, name)), "a number"))
        for name in ("mask_area", "progress_bar", "tensorboard"):
            expected.append((name, isinstance(getattr(self, name), bool), "true or false"))
        for name, ok, what in expected:
            if not ok:
                raise InvalidArgument(f"{name} must be {what}, got {getattr(self, name)!r}")
        if isinstance(self.init_model, Path):
            self.init_model = str(self.init_model)

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
