"""The one model resolver (targets -> local Hugging Face folders): what it accepts and how
it refuses; no model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from ld_agents.llm.models import resolve_model
from ld_envs.errors import InvalidArgument


@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_a_model_folder_is_itself(hf_folder):
    """A folder holding config.json resolves to itself (str or Path)."""
    assert resolve_model(str(hf_folder)) == hf_folder
    assert resolve_model(hf_folder, gguf=False, scheme="vllm") == hf_folder


def test_home_folder_is_expanded(hf_folder, monkeypatch):
    """``~`` in a target is the home folder."""
    monkeypatch.setenv("HOME", str(hf_folder.parent))
    assert resolve_model("~/model") == hf_folder


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: str(p / "nope"), "model path .* does not exist"),
        (lambda p: str(p / "nope.gguf"), "GGUF file .* does not exist"),
        (lambda p: "no-such-model", "unknown hf target 'no-such-model'.*never downloaded"),
    ],
)
def test_missing_targets_are_named(tmp_path, make, match):
    """A target that names nothing here fails saying what is accepted."""
    with pytest.raises(InvalidArgument, match=match):
        resolve_model(make(tmp_path))


def test_folder_without_config_is_refused(tmp_path):
    """A folder that is not a Hugging Face model folder is refused, with how to make one."""
    with pytest.raises(InvalidArgument, match=r"no config\.json.*save_pretrained"):
        resolve_model(str(tmp_path))


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    """A plain file is neither a folder nor a GGUF file."""
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="is a file but not a model folder"):
        resolve_model(str(tmp_path / "weights.bin"))


def test_gguf_refused_where_not_readable(tmp_path):
    """A reader that needs a folder refuses a GGUF file with the de-quantizing fix."""
    (tmp_path / "m.gguf").write_bytes(b"")
    with pytest.raises(InvalidArgument, match=r"vllm cannot load .*dequantized_dir"):
        resolve_model(str(tmp_path / "m.gguf"), gguf=False, scheme="vllm")
    with pytest.raises(InvalidArgument, match=r"unknown vllm target .*vllm:embedded"):
        resolve_model("nothing", gguf=False, scheme="vllm")
