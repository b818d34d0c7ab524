"""RL baselines: features, wrappers, config, training, the ``rl`` policy and its masks."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("sb3_contrib")

import ld_agents
import ld_envs  # noqa: F401
from ld_agents.baselines.pursuit import RandomPursuers
from ld_agents.rl.policy import (
    N_PURSUIT_FEATURES,
    N_TWENTYONE_FEATURES,
    FeatureObservation,
    PursuitShaping,
    RLPolicy,
    default_model_path,
    pursuit_features,
)
from ld_agents.rl.train import RLConfig, evaluate, summarize, train
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import N_PURSUER_ACTIONS, NO_CHOICE, manhattan

SMALL = {"size": 8}


def _tiny_config(env_id: str, **kw: object) -> RLConfig:
    base = {
        "total_timesteps": 256,
        "n_envs": 2,
        "n_steps": 128,
        "batch_size": 128,
        "n_epochs": 1,
        "eval_freq": 0,
        "progress_bar": False,
        "tensorboard": False,
        "net_arch": [32],
    }
    base.update(kw)
    return RLConfig(env_id, **base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_pursuit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barely trained pursuit model (nearly uniform: it tests the masks hard)."""
    out = tmp_path_factory.mktemp("rl_pursuit")
    return train(_tiny_config("Pursuit-v0", env_kwargs=SMALL), out, plot=False).model_path


@pytest.fixture(scope="module")
def tiny_twentyone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barely trained TwentyOne model."""
    out = tmp_path_factory.mktemp("rl_21")
    return train(_tiny_config("TwentyOne-v0"), out, plot=False).model_path


def _pursuit_observations(env_id: str, n: int, seed: int = 0) -> list[dict]:
    env = gym.make(env_id, **SMALL)
    policy = RandomPursuers(seed=seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(policy.act(obs))
        if term or trunc:
            obs, _ = env.reset()
    return out


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("env_id", ["Pursuit-v0", "PursuitRestricted-v0"])
def test_pursuit_features_shape_and_range(env_id: str) -> None:
    """114 float32 values in [-1, 1]; the area block is zero without an area."""
    for obs in _pursuit_observations(env_id, 200):
        f = pursuit_features(obs, SMALL["size"])
        assert f.shape == (N_PURSUIT_FEATURES,) and f.dtype == np.float32
        assert np.all(f >= -1) and np.all(f <= 1)
        assert (f[64] == 1.0) == (env_id == "PursuitRestricted-v0")
        assert f[17:59].tolist() == obs["action_mask"].reshape(-1).tolist()


def test_twentyone_features_shape_and_range() -> None:
    """21 float32 values in [-1, 1] through the wrapper, whose mask allows both moves."""
    env = FeatureObservation(gym.make("TwentyOne-v0"))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (N_TWENTYONE_FEATURES,) and env.observation_space.contains(obs)
    assert env.action_masks().tolist() == [1, 1]


def test_feature_wrapper_passes_the_env_mask() -> None:
    """The wrapper's action_masks() is the unwrapped env's flattened (42,) int8 mask."""
    env = FeatureObservation(gym.make("PursuitRestricted-v0"))
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    mask = env.action_masks()
    assert mask.dtype == np.int8 and mask.shape == (3 * N_PURSUER_ACTIONS,)
    assert mask.tolist() == env.unwrapped.action_masks().tolist()


def test_area_blind_mask_leaves_the_area_legal() -> None:
    """AreaBlindMask (mask_area=False) masks the board and pursuers, not the area."""
    from ld_agents.rl.policy import AreaBlindMask
    from ld_envs.pursuit import pursuer_action_mask

    env = FeatureObservation(AreaBlindMask(gym.make("PursuitRestricted-v0")))
    obs, _ = env.reset(seed=5)
    base = env.unwrapped
    blind = pursuer_action_mask(base.pursuers, base.size, None).reshape(-1)
    assert env.action_masks().tolist() == blind.tolist()
    assert obs[17:59].tolist() == blind.tolist()  # the mask block of the features
    assert obs[64] == 1.0  # the area's coordinates are still shown


def test_shaping_is_potential_based_and_keeps_the_env_reward() -> None:
    """Shaped reward = env reward + gamma * phi(s') - phi(s); env reward kept in info."""
    env = PursuitShaping(FeatureObservation(gym.make("Pursuit-v0")), coef=1.0, gamma=0.9)
    env.reset(seed=2)
    base = env.unwrapped

    def phi() -> float:
        d = [manhattan(p, base.evader_cell) for p in base.pursuers]
        return -(sum(d) + max(d)) / base.size

    policy = RandomPursuers(seed=0)
    for _ in range(30):
        before = phi()
        action = policy.act(base._obs(base._pursuer_mask()))
        _, shaped, term, trunc, info = env.step(action)
        assert shaped == pytest.approx(info["env_reward"] + 0.9 * phi() - before)
        if term or trunc:
            assert "is_success" in info
            break


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("env_id", "CartPole-v1"),
        ("n_envs", 0),
        ("gamma", 1.5),
        ("learning_rate", 0.0),
        ("vec_env", "threads"),
        ("net_arch", []),
        ("shaping_coef", -1.0),
        ("init_model", "/no/such/model.zip"),
    ],
)
def test_config_validation_names_the_field(field: str, value: object) -> None:
    """A bad config field raises InvalidArgument naming that field."""
    with pytest.raises(InvalidArgument, match=field):
        RLConfig(**{field: value})  # type: ignore[arg-type]


def test_config_has_help_for_every_field_and_round_trips() -> None:
    """Every field has help text; to_json/from_json round-trips."""
    assert all(RLConfig.help().values())
    cfg = RLConfig("TwentyOne-v0", total_timesteps=1000, net_arch=[16, 16])
    assert RLConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


# --------------------------------------------------------------------------- training


def test_short_training_beats_random_on_a_small_board(tmp_path: Path) -> None:
    """A short real MaskablePPO run on an 8x8 board gets a higher mean env reward than random."""
    cfg = RLConfig(
        "Pursuit-v0",
        env_kwargs=SMALL,
        total_timesteps=8192,
        n_envs=4,
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        net_arch=[64, 64],
        eval_freq=0,
        progress_bar=False,
        tensorboard=False,
        seed=0,
    )
    result = train(cfg, tmp_path)
    seeds = range(500, 540)
    trained = summarize(
        evaluate(RLPolicy("pursuit", result.model_path), "Pursuit-v0", SMALL, seeds)
    )
    random = summarize(evaluate(RandomPursuers(seed=0), "Pursuit-v0", SMALL, seeds))
    assert trained["mean_reward"] > random["mean_reward"] + 0.1, (trained, random)
    for name in ("model.json", "progress.csv", "model_curve.png"):
        assert (tmp_path / name).is_file(), name
    json.loads((tmp_path / "model.json").read_text(), parse_constant=pytest.fail)  # strict


def test_run_records_hold_no_bare_nan() -> None:
    """An evaluation without successes has no mean steps: recorded as null, not NaN."""
    from ld_agents.rl.train import _finite

    row = {"mean_steps_success": float("nan"), "rows": [1.5, float("inf")], "ok": 2}
    assert _finite(row) == {"mean_steps_success": None, "rows": [1.5, None], "ok": 2}


def test_subproc_vec_env_reads_masks_from_the_env(tmp_path: Path) -> None:
    """A SubprocVecEnv run trains: action_masks() is reachable in the worker processes."""
    cfg = _tiny_config("Pursuit-v0", env_kwargs=SMALL, vec_env="subproc", n_envs=2)
    result = train(cfg, tmp_path, plot=False)
    assert result.timesteps >= 256


def test_saved_model_reloads_and_acts_identically(tiny_pursuit: Path) -> None:
    """make('rl', path=...) on the saved zip acts as the in-memory model did."""
    from sb3_contrib import MaskablePPO

    live = RLPolicy("pursuit", model=MaskablePPO.load(str(tiny_pursuit)), size=SMALL["size"])
    loaded = ld_agents.make("rl", "Pursuit-v0", path=tiny_pursuit)
    assert loaded.size == SMALL["size"]  # read from the config saved beside the zip
    observations = _pursuit_observations("Pursuit-v0", 100)
    a = np.stack(live.act_batch(observations))
    b = np.stack([loaded.act(o) for o in observations])
    assert np.array_equal(a, b)
    sampler1 = ld_agents.make("rl", "Pursuit-v0", path=tiny_pursuit, deterministic=False, seed=3)
    sampler2 = ld_agents.make("rl", "Pursuit-v0", path=tiny_pursuit, deterministic=False, seed=3)
    assert np.array_equal(
        np.stack(sampler1.act_batch(observations)), np.stack(sampler2.act_batch(observations))
    )


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("env_id", ["Pursuit-v0", "PursuitRestricted-v0"])
def test_masks_are_honoured(tiny_pursuit: Path, env_id: str, deterministic: bool) -> None:
    """No pursuer move outside its mask (nor NO_CHOICE) in 1,500 steps of a masked policy."""
    policy = RLPolicy("pursuit", tiny_pursuit, deterministic=deterministic, seed=0)
    env = gym.make(env_id, **SMALL)
    obs, _ = env.reset(seed=0)
    for _ in range(1500):
        action = policy.act(obs)
        for i in range(3):
            assert action[i] != NO_CHOICE and obs["action_mask"][i, action[i]] == 1
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            obs, _ = env.reset()


def test_twentyone_policy_plays(tiny_twentyone: Path) -> None:
    """The rl policy returns 0/1 on TwentyOne and its games end with win/loss/draw."""
    policy = ld_agents.make("rl", "TwentyOne-v0", path=tiny_twentyone, deterministic=False, seed=0)
    records = evaluate(policy, "TwentyOne-v0", {}, range(40))
    assert {r["result"] for r in records} <= {"win", "loss", "draw"}
    assert abs(sum(summarize(records)[k] for k in ("win", "loss", "draw")) - 1) < 1e-9


@pytest.mark.parametrize("option", ["deterministic", "mask_area"])
def test_boolean_options_refuse_strings(option: str) -> None:
    """ "false" is not False (bool("false") is True): refused, naming the option."""
    with pytest.raises(InvalidArgument, match=f"{option} must be True or False"):
        ld_agents.make("rl", "Pursuit-v0", **{option: "false"})


def test_a_resumed_bench_never_mixes_two_models(tmp_path: Path, tiny_twentyone: Path) -> None:
    """bench pins the RL model's content in the sweep's manifest: after the file changes
    (retrained, or replaced by --ship --overwrite), resuming the folder is refused rather
    than mixing the two models' episodes."""
    import shutil

    from benchmarks.bench import bench_spec
    from benchmarks.sweep import RunOptions, SweepMismatch, run_sweep
    from ld_agents.llm.embedded import file_sha256
    from ld_agents.lora.adapters import RunMismatch

    model = tmp_path / "m.zip"
    shutil.copy(tiny_twentyone, model)
    out = tmp_path / "sweep"
    kwargs = {"path": str(model)}
    spec = bench_spec("TwentyOne-v0", ["rl"], out, episodes=4, policy_kwargs=kwargs)
    assert spec.policies[0].kwargs["model_sha256"] == file_sha256(model)
    run_sweep(spec, out, RunOptions(progress=False))
    shutil.copy(default_model_path("twentyone"), model)  # another model, same path
    again = bench_spec("TwentyOne-v0", ["rl"], out, episodes=4, policy_kwargs=kwargs)
    with pytest.raises(SweepMismatch, match="model_sha256"):
        run_sweep(again, out, RunOptions(progress=False))
    with pytest.raises(RunMismatch, match="content fingerprint"):
        ld_agents.make(
            "rl", "TwentyOne-v0", path=model, model_sha256=spec.policies[0].kwargs["model_sha256"]
        )


def test_a_bench_folder_recorded_without_pins_still_resumes(tmp_path: Path) -> None:
    """A row recorded before bench pinned files (no model_sha256) resumes as recorded,
    not refused as another sweep."""
    from benchmarks.bench import bench_spec
    from benchmarks.sweep import PolicySpec, RunOptions, SweepSpec, check_resume, run_sweep

    out = tmp_path / "old"
    old = SweepSpec("TwentyOne-v0", [PolicySpec("rl")], 4, 0)
    run_sweep(old, out, RunOptions(progress=False))
    again = bench_spec("TwentyOne-v0", ["rl"], out, episodes=4)
    assert "model_sha256" not in again.policies[0].kwargs
    check_resume(again, out)
    fresh = bench_spec("TwentyOne-v0", ["rl"], tmp_path / "new", episodes=4)
    assert "model_sha256" in fresh.policies[0].kwargs


def test_missing_model_fails_with_the_fix(tmp_path: Path) -> None:
    """A missing model path names the training command."""
    with pytest.raises(InvalidArgument, match=r"ld-gym train-rl --game"):
        ld_agents.make("rl", "Pursuit-v0", path=tmp_path / "none.zip")


@pytest.mark.parametrize("game", ["pursuit", "twentyone"])
def test_shipped_model_is_small_and_documented(game: str) -> None:
    """The shipped model is under 5 MB, with its config JSON and curve PNG beside it."""
    path = default_model_path(game)
    if not path.is_file():
        pytest.skip(f"no shipped model at {path}")
    assert path.stat().st_size < 5 * 2**20
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["game"] == game and meta["timesteps"] > 0
    assert path.with_name(path.stem + "_curve.png").is_file()
    env_id = "Pursuit-v0" if game == "pursuit" else "TwentyOne-v0"
    policy = ld_agents.make("rl", env_id)
    assert summarize(evaluate(policy, env_id, {}, range(5)))["episodes"] == 5


def test_rule_blind_view_hides_the_area() -> None:
    """The new-rule experiment's rule-blind view drops the area and its mask entries."""
    from benchmarks.studies.rl_new_rule import RuleBlind
    from ld_envs.pursuit import pursuer_action_mask

    seen: list[dict] = []

    class Spy:
        def act_batch(self, observations: list[dict]) -> list[np.ndarray]:
            seen.extend(observations)
            return [np.zeros(3, dtype=np.int64) for _ in observations]

    env = gym.make("PursuitRestricted-v0")
    obs, _ = env.reset(seed=4)
    RuleBlind(Spy()).act_batch([obs])
    pursuers = [tuple(p) for p in obs["pursuers"].tolist()]
    assert "restricted" not in seen[0]
    assert seen[0]["action_mask"].tolist() == pursuer_action_mask(pursuers, 21, None).tolist()
