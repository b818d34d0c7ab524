"""The ``rl`` policy: a trained sb3-contrib ``MaskablePPO`` model behind ``act(obs)``.

:class:`RLPolicy`, registered for both games (``ld_agents.make("rl", "Pursuit-v0",
path=...)``; the default path is the model shipped in ``assets/models/``), and where the
models live (:func:`default_model_path`, :func:`load_model_config`). It reads the very
features training wrapped the env with (:mod:`ld_agents.rl.features`), and
:func:`~ld_agents.rl.wrappers.area_blind` for a model trained with ``AreaBlindMask``.

The features and wrappers stay importable from here, as before the package was split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ld_agents.base import Policy, register
from ld_agents.llm.embedded import file_sha256
from ld_agents.lora.adapters import RunMismatch
from ld_agents.rl.features import (
    FEATURES,
    N_PURSUIT_FEATURES,
    N_TWENTYONE_FEATURES,
    NEAR,
    PURSUIT_FEATURES,
    TWENTYONE_FEATURES,
    Obs,
    pursuit_features,
    twentyone_features,
)
from ld_agents.rl.wrappers import (
    AreaBlindMask,
    FeatureObservation,
    PursuitShaping,
    action_masks_of,
    area_blind,
    game_of_env,
)
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import pursuer_action_mask

logger = logging.getLogger(__name__)


def models_dir() -> Path:
    """``assets/models/`` (``LD_GYM_ASSETS`` moves ``assets/``)."""
    from ld_agents.files import assets_dir

    return assets_dir() / "models"


#: the model each game's ``rl`` policy loads by default
DEFAULT_MODELS: dict[str, str] = {
    "pursuit": "rl_pursuit.zip",
    "twentyone": "rl_twentyone.zip",
}


def default_model_path(game: str) -> Path:
    """The shipped model of ``game`` in ``assets/models/``."""
    if game not in DEFAULT_MODELS:
        raise InvalidArgument(f"unknown game {game!r}; known: {', '.join(DEFAULT_MODELS)}")
    return models_dir() / DEFAULT_MODELS[game]


def check_model_pin(path: Path, pin: str | None) -> None:
    """Refuse a model file whose content differs from ``pin`` (``None``: no pin): a sweep
    that pinned it would otherwise mix two models' episodes when it resumes."""
    if pin is not None and (got := file_sha256(path)) != pin:
        raise RunMismatch(
            f"RL model {path} has content fingerprint {got}, but {pin} was asked for (the "
            "model was retrained or replaced since the run that pinned it): rerun into "
            "another output folder, or restore the pinned model"
        )


class RLPolicy(Policy):
    """A saved ``MaskablePPO`` model behind ``act(obs)``.

    ``act`` turns the env's ``Dict`` observation into the model's features (the same
    function as training's :class:`FeatureObservation`) and calls
    ``model.predict(features, action_masks=mask, deterministic=...)`` with the legal-move
    mask read from the observation (pursuit: ``obs["action_mask"]`` flattened to (42,);
    TwentyOne: all moves legal). ``deterministic=True`` (the default) takes the most
    probable legal action; ``False`` samples from the masked distribution with the
    policy's own generator (``seed`` / ``reset(seed=)``), never torch's global one.

    ``size`` must be the board the model was trained on unless the model's config says
    otherwise (read from the JSON beside the zip when there is one); so does
    ``mask_area`` (``False`` for a model trained with :class:`AreaBlindMask`: the area's
    cells are then left in its mask, as in its training). ``model_sha256`` pins the model
    file's content (its sha256): another file is refused (``ld-gym bench`` pins
    it, so a resumed sweep never mixes two models' episodes).
    """

    def __init__(
        self,
        game: str,
        path: str | Path | None = None,
        deterministic: bool = True,
        size: int | None = None,
        seed: int | None = None,
        device: str = "cpu",
        model: Any = None,
        mask_area: bool | None = None,
        rule_mask: str = "env",
        model_sha256: str | None = None,
    ) -> None:
        super().__init__(seed)
        for name, value in (("deterministic", deterministic), ("mask_area", mask_area)):
            if not isinstance(value, (bool, np.bool_)) and value is not None:
                raise InvalidArgument(f"{name} must be True or False, got {value!r}")
        if rule_mask not in ("env", "base"):
            raise InvalidArgument(f"rule_mask must be 'env' or 'base', got {rule_mask!r}")
        #: "env": the env's mask (new rules included: the rule is given for free);
        #: "base": the base game's mask, the new rules unknown (as to the LLMs, told only text)
        self.rule_mask = rule_mask
        self.game = game
        self.config: dict[str, Any] = {}
        if model is None:
            try:
                from sb3_contrib import MaskablePPO
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ImportError(
                    "the rl policy needs stable-baselines3 and sb3-contrib: "
                    "pip install 'ld-gym[rl]'"
                ) from exc
            self.path: Path | None = Path(path) if path is not None else default_model_path(game)
            if not self.path.is_file():
                raise InvalidArgument(
                    f"no RL model at {self.path}; train one with `ld-gym train-rl --game "
                    f"{game}` or pass path= to a MaskablePPO .zip"
                )
            check_model_pin(self.path, model_sha256)
            model = MaskablePPO.load(str(self.path), device=device)
            self.config = load_model_config(self.path)
        else:
            self.path = None
        self.model = model
        self.deterministic = bool(deterministic)
        trained_size = int(self.config.get("size", 0) or 0)
        self.size = int(size if size is not None else trained_size or 21)
        #: False: act as trained with AreaBlindMask (the area's cells are not masked)
        self.mask_area = bool(
            self.config.get("mask_area", True) if mask_area is None else mask_area
        )
        self._features, n_features = FEATURES[game]
        dim = int(np.prod(self.model.observation_space.shape))
        if dim != n_features:
            raise InvalidArgument(
                f"model {self.path or type(model).__name__} reads {dim} features; {game} "
                f"features are {n_features}: it was not trained by ld_agents.rl.train"
            )

    def _sample(self, feats: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Sample from the masked policy with the policy's own generator (not torch's)."""
        import torch

        obs_t, _ = self.model.policy.obs_to_tensor(feats)
        with torch.no_grad():
            dist = self.model.policy.get_distribution(obs_t, action_masks=masks)
        # MultiCategorical keeps one Categorical per pursuer in .distributions
        cats = getattr(dist, "distributions", None) or [dist.distribution]
        probs = [c.probs.cpu().numpy().astype(np.float64) for c in cats]
        out = np.empty((len(feats), len(probs)), dtype=np.int64)
        for j, p in enumerate(probs):
            for i in range(len(feats)):
                row = p[i] / p[i].sum()
                out[i, j] = int(self.np_random.choice(len(row), p=row))
        return out if self.game == "pursuit" else out[:, 0]

    def action_probs(self, obs: Obs) -> tuple[float, ...]:
        """Probabilities of each action in ``obs`` (TwentyOne: ``(p_stand, p_hit)``).

        Deterministic policies put 1 on the action ``act`` returns. This is what
        ``ld_agents.baselines.optimal.evaluate`` reads to compute a policy's exact win / loss / draw
        probabilities against a known opponent.
        """
        if self.game != "twentyone":
            raise InvalidArgument("action_probs is defined for TwentyOne policies only")
        if self.deterministic:
            a = self.act(obs)
            return tuple(float(k == a) for k in range(2))
        import torch

        feats = self._features(obs, self.size)[None, :]
        obs_t, _ = self.model.policy.obs_to_tensor(feats)
        with torch.no_grad():
            dist = self.model.policy.get_distribution(obs_t, action_masks=self._mask(obs)[None])
        probs = dist.distribution.probs[0].cpu().numpy().astype(float)
        return tuple(float(p) for p in probs / probs.sum())

    def _base_game_view(self, obs: Obs) -> Obs:
        """The observation as the base game shows it: the new rules' cells left out of the
        mask (features and masking then know nothing of them)."""
        area = tuple(obs["restricted"].tolist()) if "restricted" in obs else None
        cells = [tuple(p) for p in np.asarray(obs["pursuers"]).tolist()]
        view = {k: v for k, v in obs.items() if k != "forbidden"}
        view["action_mask"] = pursuer_action_mask(cells, self.size, area)
        return view

    def _mask(self, obs: Obs) -> np.ndarray:
        if self.game == "pursuit":
            return np.asarray(obs["action_mask"], dtype=bool).reshape(-1)
        n = int(self.model.action_space.n)  # type: ignore[attr-defined]
        if "action_mask" in obs:
            return np.asarray(obs["action_mask"], dtype=bool).reshape(-1)
        return np.ones(n, dtype=bool)

    def act(self, obs: Obs) -> Any:
        return self.act_batch([obs])[0]

    def act_batch(self, observations: Sequence[Obs]) -> list[Any]:
        """One batched forward pass for several observations."""
        if not observations:
            return []
        if self.game == "pursuit" and self.rule_mask == "base":
            observations = [self._base_game_view(o) for o in observations]
        if self.game == "pursuit" and not self.mask_area:
            observations = [area_blind(o, self.size) for o in observations]
        feats = np.stack([self._features(o, self.size) for o in observations])
        masks = np.stack([self._mask(o) for o in observations])
        if self.deterministic:
            actions, _ = self.model.predict(feats, action_masks=masks, deterministic=True)
        else:
            actions = self._sample(feats, masks)
        if self.game == "pursuit":
            return [np.asarray(a, dtype=np.int64) for a in actions]
        return [int(a) for a in actions]


def load_model_config(path: Path) -> dict[str, Any]:
    """The training config saved beside a model (``<stem>.json``), or ``{}``."""
    import json

    cfg = path.with_suffix(".json")
    if not cfg.is_file():
        return {}
    data = json.loads(cfg.read_text(encoding="utf-8"))
    return dict(data.get("config", data))


@register("rl", "pursuit")
def _rl_pursuit(
    env_id: str,
    path: str | Path | None = None,
    deterministic: bool = True,
    size: int | None = None,
    seed: int | None = None,
    side: str = "pursuers",
    mask_area: bool | None = None,
    rule_mask: str = "env",
    model_sha256: str | None = None,
) -> RLPolicy:
    if side != "pursuers":
        raise InvalidArgument("the rl policy plays the pursuers; for the evader use 'greedy'")
    return RLPolicy(
        "pursuit",
        path,
        deterministic=deterministic,
        size=size,
        seed=seed,
        mask_area=mask_area,
        rule_mask=rule_mask,
        model_sha256=model_sha256,
    )


@register("rl", "twentyone")
def _rl_twentyone(
    env_id: str,
    path: str | Path | None = None,
    deterministic: bool = True,
    seed: int | None = None,
    model_sha256: str | None = None,
) -> RLPolicy:
    return RLPolicy(
        "twentyone", path, deterministic=deterministic, seed=seed, model_sha256=model_sha256
    )


__all__ = [
    "DEFAULT_MODELS",
    "FEATURES",
    "NEAR",
    "N_PURSUIT_FEATURES",
    "N_TWENTYONE_FEATURES",
    "PURSUIT_FEATURES",
    "TWENTYONE_FEATURES",
    "AreaBlindMask",
    "FeatureObservation",
    "PursuitShaping",
    "RLPolicy",
    "action_masks_of",
    "area_blind",
    "check_model_pin",
    "default_model_path",
    "game_of_env",
    "load_model_config",
    "models_dir",
    "pursuit_features",
    "twentyone_features",
]
