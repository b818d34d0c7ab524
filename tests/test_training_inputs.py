"""Bad inputs to the training commands (train-kd, train-ld, train-rl) are refused before any
model loads or any file is written, and a run that failed before saving anything does not
block a corrected rerun. Nothing here loads the LLM or trains."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from ld_envs.errors import InvalidArgument

ROWS = [{"prompt": "p", "answer": "a"}]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face folder with a tiny Llama config (no weights: only its config is read)."""
    pytest.importorskip("transformers")
    from transformers import LlamaConfig

    folder = tmp_path_factory.mktemp("tiny")
    LlamaConfig(
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=32,
    ).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- LoRA targets


def test_unknown_target_module_is_refused_listing_the_valid_names(tiny_model: Path) -> None:
    from ld_agents.lora import check_target_modules

    check_target_modules(tiny_model, ["q_proj", "v_proj", "self_attn.o_proj"])
    for bad in (["foo_proj"], [""], []):
        with pytest.raises(InvalidArgument, match=r"valid names: .*q_proj") as err:
            check_target_modules(tiny_model, bad)
        assert "gate_proj" in str(err.value)


def test_train_lora_with_unknown_targets_writes_nothing(tiny_model: Path, tmp_path: Path) -> None:
    from ld_agents.lora import LoraTrainConfig, train_lora

    out = tmp_path / "run"
    cfg = LoraTrainConfig(output_dir=str(out), target_modules=("foo_proj",))
    with pytest.raises(InvalidArgument, match="foo_proj"):
        train_lora(tiny_model, ROWS, cfg)
    assert not out.exists()


@pytest.mark.parametrize("targets", [("",), (" ",)])
def test_lora_config_refuses_empty_module_names(targets: tuple[str, ...]) -> None:
    from ld_agents.lora import LoraTrainConfig

    with pytest.raises(InvalidArgument, match="target_modules"):
        LoraTrainConfig(output_dir="x", target_modules=targets)


def _fake_train(calls: list[Any], fail: bool = False) -> Any:
    def fake(model_dir: Path, rows: Any, config: Any, out: Path, record: dict[str, Any]) -> Any:
        calls.append(config)
        if fail:
            raise RuntimeError("boom")
        return record

    return fake


def _failed_run(
    tiny_model: Path, out: Path, monkeypatch: pytest.MonkeyPatch, calls: list[Any]
) -> None:
    """A LoRA run (r=4) into ``out`` whose training step fails before saving anything."""
    import ld_agents.lora.train as lora_train
    from ld_agents.lora import LoraTrainConfig, train_lora

    monkeypatch.setattr(lora_train, "_train", _fake_train(calls, fail=True))
    with pytest.raises(RuntimeError):
        train_lora(tiny_model, ROWS, LoraTrainConfig(output_dir=str(out), r=4))


def test_failed_run_is_marked_and_replaced_by_another_config(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ld_agents.lora.train as lora_train
    from ld_agents.lora import RUN_FILE, LoraTrainConfig, train_lora

    out = tmp_path / "run"
    calls: list[Any] = []
    _failed_run(tiny_model, out, monkeypatch, calls)
    record = json.loads((out / RUN_FILE).read_text())
    assert record["status"] == "failed" and "boom" in record["error"]

    # another config (r=8) replaces the run that saved nothing
    monkeypatch.setattr(lora_train, "_train", _fake_train(calls))
    got = train_lora(tiny_model, ROWS, LoraTrainConfig(output_dir=str(out), r=8))
    assert got["train_config"]["r"] == 8 and len(calls) == 2


def test_a_run_that_saved_a_checkpoint_is_never_replaced(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ld_agents.lora import LoraTrainConfig, RunMismatch, train_lora

    out = tmp_path / "run"
    calls: list[Any] = []
    _failed_run(tiny_model, out, monkeypatch, calls)
    (out / "checkpoint-2").mkdir()
    with pytest.raises(RunMismatch, match="another run"):
        train_lora(tiny_model, ROWS, LoraTrainConfig(output_dir=str(out), r=8))
    assert (out / "checkpoint-2").is_dir() and len(calls) == 1


# --------------------------------------------------------------------------- train-kd


def test_kd_model_spec_syntax() -> None:
    from ld_agents.kd.train import local_model_target

    assert local_model_target("hf:embedded") == "embedded"
    assert local_model_target("embedded") == "embedded"
    with pytest.raises(InvalidArgument, match="local model"):
        local_model_target("openai:http://x/v1?model=y")


def test_train_kd_refuses_a_remote_model_before_anything(tmp_path: Path) -> None:
    from ld_agents.kd import train_kd

    out = tmp_path / "kd"
    with pytest.raises(InvalidArgument, match="local model"):
        train_kd(tmp_path / "no-traces", out, model="openai:http://x/v1?model=y")
    assert not out.exists()


def test_train_kd_refuses_unknown_targets_before_loading(tiny_model: Path, tmp_path: Path) -> None:
    from ld_agents.kd import train_kd
    from ld_agents.kd.traces import TraceSet

    traces = TraceSet(list(ROWS), {}).save(tmp_path / "traces")
    out = tmp_path / "kd"
    with pytest.raises(InvalidArgument, match="valid names"):
        train_kd(traces, out, model=str(tiny_model), target_modules=[""])
    assert not out.exists()


# --------------------------------------------------------------------------- train-ld


def _ld_args(*argv: str) -> argparse.Namespace:
    from benchmarks.cli import train_ld

    parser = argparse.ArgumentParser()
    train_ld.configure(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("flag", ["--rule-rows", "--synthetic-rule-rows"])
def test_train_ld_refuses_pursuit_only_options_for_twentyone(flag: str) -> None:
    from benchmarks.cli.train_ld import config_from_args

    with pytest.raises(InvalidArgument, match="pursuit only"):
        config_from_args(_ld_args("--game", "twentyone", flag, "5"))
    assert (
        getattr(
            config_from_args(_ld_args("--game", "pursuit", flag, "5")), flag[2:].replace("-", "_")
        )
        == 5
    )


def test_train_ld_defaults_are_kept() -> None:
    from benchmarks.cli.train_ld import config_from_args
    from ld_agents.ld.train import LDTrainConfig

    cfg = config_from_args(_ld_args("--game", "twentyone"))
    assert cfg == LDTrainConfig(game="twentyone")
    # a twentyone run's recorded command (it repeats the pursuit-only defaults) parses back
    again = config_from_args(_ld_args(*cfg.command().split()[2:]))
    assert again == cfg


# --------------------------------------------------------------------------- train-rl


@pytest.mark.parametrize(
    ("game", "item", "match"),
    [
        ("pursuit", "learning_rate=abc", "learning_rate must be a number"),
        ("pursuit", "net_arch=abc", "net_arch must be a list"),
        ("pursuit", "progress_bar=maybe", "progress_bar must be true or false"),
        ("pursuit", "env_kwargs=[1]", "env_kwargs must be a JSON object"),
        ("twentyone", "shaping_coef=0.5", "pursuit only"),
        ("twentyone", "mask_area=false", "pursuit only"),
    ],
)
def test_rl_set_values_are_checked(game: str, item: str, match: str) -> None:
    from benchmarks.train_rl import build_config

    with pytest.raises(InvalidArgument, match=match):
        build_config(game, [item])


def test_rl_bad_env_kwargs_and_init_model_write_nothing(tmp_path: Path) -> None:
    pytest.importorskip("sb3_contrib")
    from benchmarks.train_rl import build_config
    from ld_agents.rl.train import train

    out = tmp_path / "rl"
    config = build_config("pursuit", ['env_kwargs={"sise": 21}'])
    with pytest.raises(InvalidArgument, match="sise"):
        train(config, out)
    assert not out.exists()
    twentyone = Path(__file__).parent.parent / "assets" / "models" / "rl_twentyone.zip"
    config = build_config("pursuit", [], init_model=str(twentyone))
    with pytest.raises(InvalidArgument, match="observation space"):
        train(config, out)
    assert not out.exists()


def test_rl_failed_attempt_leaves_no_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sb3_contrib")
    import ld_agents.rl.train as rl_train
    from benchmarks.train_rl import build_config, check_outputs

    out = tmp_path / "rl"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def fail(config: Any, folder: Path, *args: Any) -> Any:
        (folder / "progress.csv").write_text("")
        (folder / "events.out.tfevents.1.host").write_text("")
        raise RuntimeError("boom")

    monkeypatch.setattr(rl_train, "_train", fail)
    with pytest.raises(RuntimeError):
        rl_train.train(build_config("twentyone", []), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    check_outputs(out, None)  # a rerun is not refused

    def saved_then_fail(config: Any, folder: Path, *args: Any) -> Any:
        (folder / "progress.csv").write_text("")
        (folder / "checkpoint.zip").write_text("")
        raise RuntimeError("boom")

    monkeypatch.setattr(rl_train, "_train", saved_then_fail)
    with pytest.raises(RuntimeError):
        rl_train.train(build_config("twentyone", []), out)
    assert (out / "progress.csv").is_file() and (out / "checkpoint.zip").is_file()
