"""RL baselines: what a trained sb3-contrib ``MaskablePPO`` model needs at act time.

Training lives in :mod:`ld_agents.rl.train`; this module holds the parts that training and
acting share, so that the ``rl`` policy sees exactly the observations the model was
trained on:

* **feature functions** (pure, numpy only) that flatten a game's ``Dict`` observation into
  one float32 vector: :func:`pursuit_features`, :func:`twentyone_features`;
* **wrappers**: :class:`FeatureObservation` (the feature function as a Gymnasium
  ``ObservationWrapper`` that also offers ``action_masks()`` for sb3-contrib),
  :class:`PursuitShaping` (a difference-of-potentials reward term used in training only;
  the env's own reward and outcome are never changed), :class:`AreaBlindMask` (the
  restricted area left out of the mask, for the new-rule experiment);
* the **``rl`` policy** (:class:`RLPolicy`), registered for both games:
  ``ld_agents.make("rl", "Pursuit-v0", path=...)``; the default path is the model shipped
  in ``assets/models/``.

Pursuit features (``PURSUIT_FEATURES`` names them, 114 values, each in [-1, 1])
-------------------------------------------------------------------------------
With ``s = size - 1`` and the evader at ``(ex, ey)``:

=========================  ====  ==========================================================
block                      size  value
=========================  ====  ==========================================================
evader position            2     ``ex / s, ey / s`` (how close the board's edges are)
pursuer - evader           6     ``(px - ex) / s, (py - ey) / s`` per pursuer A, B, C
pursuer distance           3     Manhattan distance to the evader ``/ (2 s)``
pursuer position           6     ``px / s, py / s`` per pursuer
pursuer action mask        42    the env's (3, 14) int8 mask, flattened (legal moves now)
evader's legal moves       5     ``evader_targets`` of the rules as 0/1 (how trapped it is)
restricted area            5     ``1, (x0 - ex) / s, (y0 - ey) / s, (x1 - ex) / s,
                                 (y1 - ey) / s``; all 0 when there is no area
pursuer - evader, near     6     ``clip(px - ex, -3, 3) / 3``, same for y (detail up close)
move gain                  39    per pursuer and move of ``MOVES``: how much nearer (in
                                 Manhattan distance, over 2) that move takes it to the
                                 evader; the board and the area are in the mask block
=========================  ====  ==========================================================

The move-gain block tells each pursuer's head which of its 13 moves close in (the same
information the LLM policies get as their "selection" list, without the ranking); it
makes the first, approach-the-evader phase quick to learn.

The same 114 values exist with and without the restricted area, so a model trained on
``Pursuit-v0`` can be run (and fine-tuned) on ``PursuitRestricted-v0`` unchanged: that
is the new-rule experiment of ``benchmarks/studies/rl_new_rule.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ld_agents.base import Policy, game_of, register
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import (
    MOVES,
    N_PURSUER_ACTIONS,
    evader_targets,
    manhattan,
    pursuer_action_mask,
)

logger = logging.getLogger(__name__)

Obs = dict[str, np.ndarray]

PURSUIT_FEATURES: list[str] = (
    ["evader_x", "evader_y"]
    + [f"{n}_{a}_rel" for n in "ABC" for a in "xy"]
    + [f"{n}_dist" for n in "ABC"]
    + [f"{n}_{a}" for n in "ABC" for a in "xy"]
    + [f"mask_{n}_{k}" for n in "ABC" for k in range(N_PURSUER_ACTIONS)]
    + [f"evader_move_{k}" for k in range(5)]
    + ["area", "area_x0_rel", "area_y0_rel", "area_x1_rel", "area_y1_rel"]
    + [f"{n}_{a}_near" for n in "ABC" for a in "xy"]
    + [f"gain_{n}_{k}" for n in "ABC" for k in range(len(MOVES))]
)
#: relative offsets are also given clipped at this many cells (fine detail near the evader)
NEAR = 3
N_PURSUIT_FEATURES = len(PURSUIT_FEATURES)


# --------------------------------------------------------------------------- features


def _area_of(obs: Obs) -> tuple[int, int, int, int] | None:
    if "restricted" not in obs:
        return None
    x0, y0, x1, y1 = (int(v) for v in obs["restricted"])
    return (x0, y0, x1, y1)


def pursuit_features(obs: Obs, size: int) -> np.ndarray:
    """Flatten a pursuer-side ``Pursuit`` observation into 114 float32 values in [-1, 1].

    See the module docstring for the layout. The mask block is the env's own
    ``obs["action_mask"]``; the evader block comes from the rule function
    ``evader_targets``, so no rule is copied here.
    """
    s = float(size - 1)
    pursuers = [(int(p[0]), int(p[1])) for p in obs["pursuers"]]
    ex, ey = (int(v) for v in obs["evader"])
    area = _area_of(obs)
    out = np.zeros(N_PURSUIT_FEATURES, dtype=np.float32)
    out[0:2] = (ex / s, ey / s)
    for i, (px, py) in enumerate(pursuers):
        out[2 + 2 * i : 4 + 2 * i] = ((px - ex) / s, (py - ey) / s)
        out[8 + i] = manhattan((px, py), (ex, ey)) / (2 * s)
        out[11 + 2 * i : 13 + 2 * i] = (px / s, py / s)
    out[17:59] = np.asarray(obs["action_mask"], dtype=np.float32).reshape(-1)
    moves = evader_targets((ex, ey), pursuers, size, area)
    out[59:64] = [0.0 if m is None else 1.0 for m in moves]
    if area is not None:
        out[64:69] = (
            1.0,
            (area[0] - ex) / s,
            (area[1] - ey) / s,
            (area[2] - ex) / s,
            (area[3] - ey) / s,
        )
    gains = out[75:114].reshape(3, len(MOVES))
    for i, (px, py) in enumerate(pursuers):
        out[69 + 2 * i : 71 + 2 * i] = (
            max(-NEAR, min(NEAR, px - ex)) / NEAR,
            max(-NEAR, min(NEAR, py - ey)) / NEAR,
        )
        d = abs(px - ex) + abs(py - ey)
        for k, (dx, dy) in enumerate(MOVES):
            gains[i, k] = (d - abs(px + dx - ex) - abs(py + dy - ey)) / 2
    return out


TWENTYONE_FEATURES: list[str] = [
    "own_total",
    "opponent_visible_total",
    "total_gap",
    "own_soft",
    "own_stood",
    "opponent_stood",
    "deck_left",
    "own_cards",
    "opponent_cards",
    "opponent_hidden",
    "bust_probability",
    *[f"unseen_class_{k}" for k in range(10)],
]
N_TWENTYONE_FEATURES = len(TWENTYONE_FEATURES)


def twentyone_features(obs: Obs, size: int = 0) -> np.ndarray:
    """Flatten a ``TwentyOne`` observation into 21 float32 values in [-1, 1].

    Totals (own, the opponent's visible cards, their gap) over 31, whether an ace counts
    11 in the own hand, who has stood, cards left in the deck over 26, hand sizes over 9,
    whether the opponent's first card is face down, the probability that a hit busts
    (the rule function ``bust_probability``), and per value class (ace, 2..9, ten-valued)
    the share of its cards still unseen (``unseen_cards``): the card counting the
    public deck allows. ``size`` is unused (one signature for both games).
    """
    from ld_envs import twenty_one as t21

    own = t21.decode_hand(obs["own"])
    other_visible = t21.decode_hand(obs["opponent"])
    n_other = int(np.sum(np.asarray(obs["opponent"]) != t21.EMPTY))
    hidden = int(np.any(np.asarray(obs["opponent"]) == t21.HIDDEN))
    unseen = t21.unseen_cards(own, other_visible)
    counts = np.zeros(t21.N_CLASSES, dtype=np.float32)
    for c in unseen:
        counts[t21.card_class(c)] += 1
    counts /= np.asarray(t21.CLASS_COUNTS, dtype=np.float32)
    own_total = int(obs["own_total"])
    vis_total = int(obs["opponent_visible_total"])
    stood = np.asarray(obs["stood"]).reshape(-1)
    out = np.array(
        [
            own_total / t21.MAX_TOTAL,
            vis_total / t21.MAX_TOTAL,
            (own_total - vis_total) / t21.MAX_TOTAL,
            float(t21.is_soft(own)),
            float(stood[0]),
            float(stood[1]),
            int(obs["deck_left"]) / t21.N_CARDS,
            len(own) / t21.MAX_HAND,
            n_other / t21.MAX_HAND,
            float(hidden),
            t21.bust_probability(own, unseen),
            *counts,
        ],
        dtype=np.float32,
    )
    return np.clip(out, -1.0, 1.0)


#: game -> (feature function, number of features)
FEATURES: dict[str, tuple[Callable[[Obs, int], np.ndarray], int]] = {
    "pursuit": (pursuit_features, N_PURSUIT_FEATURES),
    "twentyone": (twentyone_features, N_TWENTYONE_FEATURES),
}


# --------------------------------------------------------------------------- wrappers


class FeatureObservation(gym.ObservationWrapper):
    """Turn a game's ``Dict`` observation into the flat float32 vector the model reads.

    Pursuit: :func:`pursuit_features` (114 values); TwentyOne: :func:`twentyone_features`
    (21 values). ``action_masks()`` returns the mask of the wrapped env (pursuit: flattened
    (42,) int8; :class:`AreaBlindMask`'s when it is inside) or all ones when the game has
    none (TwentyOne: both moves are always legal), as sb3-contrib's ``MaskablePPO`` reads
    it through its ``VecEnv``.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.game = game_of_env(env)
        self.size = int(getattr(env.unwrapped, "size", 0))
        self._features, n = FEATURES[self.game]
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)

    def observation(self, observation: Obs) -> np.ndarray:
        return self._features(observation, self.size)

    def action_masks(self) -> np.ndarray:
        """The legal-action mask of the current state, flat int8 (sb3-contrib's format)."""
        return action_masks_of(self.env)


def action_masks_of(env: gym.Env) -> np.ndarray:
    """The mask of the outermost layer of ``env`` (a wrapper or the env) that defines
    ``action_masks()``, or all ones for an env without one."""
    layer: Any = env
    while True:
        if hasattr(type(layer), "action_masks"):
            return np.asarray(layer.action_masks(), dtype=np.int8)
        if not isinstance(layer, gym.Wrapper):
            break
        layer = layer.env
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        return np.ones(int(space.n), dtype=np.int8)
    if isinstance(space, spaces.MultiDiscrete):
        return np.ones(int(np.sum(space.nvec)), dtype=np.int8)
    raise InvalidArgument(f"no action mask for action space {space}")


def game_of_env(env: gym.Env) -> str:
    """``"pursuit"`` or ``"twentyone"`` for a (wrapped) ld-gym env."""
    spec = env.unwrapped.spec
    if spec is not None and spec.id is not None:
        try:
            return game_of(spec.id)
        except KeyError:
            pass
    name = type(env.unwrapped).__name__
    if name == "PursuitEnv":
        return "pursuit"
    if name == "TwentyOneEnv":
        return "twentyone"
    raise InvalidArgument(f"not an ld-gym env: {name} (spec {spec})")


def area_blind(obs: Obs, size: int, keep_area: bool = True) -> Obs:
    """``obs`` with the pursuers' mask recomputed as if there were no restricted area.

    The mask then still honours the board and the other pursuers
    (``pursuer_action_mask(..., area=None)``) but allows moves into the area, which the env
    rejects and counts as violations. ``keep_area=False`` also drops ``obs["restricted"]``
    (the view of a model that was never told about the area).
    """
    out = {k: v for k, v in obs.items() if keep_area or k != "restricted"}
    pursuers = [(int(p[0]), int(p[1])) for p in obs["pursuers"]]
    out["action_mask"] = pursuer_action_mask(pursuers, size, None)
    return out


class AreaBlindMask(gym.ObservationWrapper):
    """Pursuit with the restricted area left out of the legal-move mask (training option).

    The area's coordinates stay in the observation (so in the features), but its cells
    are not masked: a policy learns to avoid them only from the env's violation penalty
    and the episode it loses after 7 of them. ``RLConfig(mask_area=False)`` trains this
    way, and an ``rl`` policy whose saved config says so acts the same way.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.size = int(env.unwrapped.size)

    def observation(self, observation: Obs) -> Obs:
        return area_blind(observation, self.size)

    def action_masks(self) -> np.ndarray:
        """The mask without the area, flattened to (42,)."""
        base = self.env.unwrapped
        return pursuer_action_mask(base.pursuers, self.size, None).reshape(-1)


class PursuitShaping(gym.Wrapper):
    """Training-only reward shaping for pursuit: a difference-of-potentials term.

    ``reward' = reward + gamma * phi(s') - phi(s)`` with
    ``phi(s) = -coef * (sum_i d_i + max_i d_i) / size``, ``d_i`` the Manhattan distance of
    pursuer i to the evader, evaluated on the real next state at every step (the last one
    included, so ending an episode by violations never pays).

    ``gamma`` is the shaping's own discount. The default 1.0 makes the episode's shaping
    sum telescope to ``phi(s_T) - phi(s_0)``: it pays net approach only, and with the
    agent's discount < 1 it favours approaching early (what we want: capture fast).
    ``gamma`` equal to the agent's discount is Ng, Harada & Russell's (1999) exactly
    policy-invariant form, but with ``phi <= 0`` it also pays ``(1 - gamma) |phi|`` per step
    for staying far, which on this game made random wandering out-earn capturing
    (measured: 10.8 vs 4.3 per episode at gamma 0.97) and PPO never learned to close in.

    The env's reward, outcome and ``info`` are untouched; ``info["env_reward"]`` keeps
    the env's own reward and ``info["is_success"]`` (read by Stable-Baselines3's logger)
    is set at the end of an episode. Apply it outside :class:`FeatureObservation`.
    """

    def __init__(self, env: gym.Env, coef: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__(env)
        if coef < 0:
            raise InvalidArgument(f"shaping coef must be >= 0, got {coef}")
        if not 0 < gamma <= 1:
            raise InvalidArgument(f"shaping gamma must be in (0, 1], got {gamma}")
        self.coef = float(coef)
        self.gamma = float(gamma)
        self._phi = 0.0

    def _potential(self) -> float:
        base = self.env.unwrapped
        d = [manhattan(p, base.evader_cell) for p in base.pursuers]
        return -self.coef * (sum(d) + max(d)) / base.size

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._phi = self._potential()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        phi = self._potential()
        info = dict(info)
        info["env_reward"] = float(reward)
        shaped = float(reward) + self.gamma * phi - self._phi
        self._phi = phi
        if terminated or truncated:
            info["is_success"] = info.get("outcome") == "success"
        return obs, shaped, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Pass the wrapped env's mask through."""
        return action_masks_of(self.env)


# --------------------------------------------------------------------------- policy


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
    cells are then left in its mask, as in its training).
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
    ) -> None:
        super().__init__(seed)
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
    **_: Any,
) -> RLPolicy:
    if side != "pursuers":
        raise InvalidArgument("the rl policy plays the pursuers; for the evader use 'greedy'")
    return RLPolicy(
        "pursuit", path, deterministic=deterministic, size=size, seed=seed, mask_area=mask_area
    )


@register("rl", "twentyone")
def _rl_twentyone(
    env_id: str,
    path: str | Path | None = None,
    deterministic: bool = True,
    seed: int | None = None,
    **_: Any,
) -> RLPolicy:
    return RLPolicy("twentyone", path, deterministic=deterministic, seed=seed)
