"""LoRA adapter folders: their run record, the fingerprints in it, and the checks on load.

A run folder (and the adapter inside it) holds ``ld_gym_run.json`` (:data:`RUN_FILE`): the
config, data and base-model fingerprints, the loss curve and steps per second.
:func:`check_adapter` refuses an adapter trained on another base model;
:func:`adapter_sha256` fingerprints an adapter's content and :func:`check_adapter_pin`
refuses one that differs from a pinned fingerprint (a sweep of a retrained adapter);
:func:`ship_adapter` copies an adapter with its record where the policies find it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ld_agents.files import write_json_atomic
from ld_envs.errors import InvalidArgument, LdGymError

logger = logging.getLogger(__name__)

RUN_FILE = "ld_gym_run.json"
ADAPTER_DIR = "adapter"
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")


class RunMismatch(LdGymError, ValueError):
    """An output or adapter folder belongs to another run or another base model."""


def short_sha(text: str) -> str:
    """First 16 hex digits of the sha256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def data_fingerprint(examples: Sequence[dict[str, Any]]) -> str:
    """Order-sensitive hash of the examples (recorded with every adapter)."""
    h = hashlib.sha256()
    for row in examples:
        last = row["answer"] if "answer" in row else row["branches"]
        h.update(json.dumps([row["prompt"], last]).encode("utf-8"))
    return h.hexdigest()[:16]


#: config.json keys that name the library that wrote the folder, not the model
WRITER_KEYS = ("transformers_version",)


def model_fingerprint(model_dir: str | Path) -> str:
    """Identity of a base model folder: hash of its config and weight file sizes.

    The config's writer keys (:data:`WRITER_KEYS`) are left out, so the same weights
    de-quantized by another transformers release keep their fingerprint.
    """
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise InvalidArgument(f"{model_dir} is not a Hugging Face model folder (no config.json)")
    fields = {k: v for k, v in json.loads(config.read_text()).items() if k not in WRITER_KEYS}
    parts = [json.dumps(fields, sort_keys=True)]
    for f in sorted(model_dir.glob("*.safetensors")):
        parts.append(f"{f.name}:{f.stat().st_size}")
    return short_sha("\n".join(parts))


def read_run(output_dir: Path) -> dict[str, Any] | None:
    """The run record in ``output_dir``, or None."""
    path = output_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_run(path: Path, record: dict[str, Any]) -> None:
    """Write a run record atomically (:func:`ld_agents.files.write_json_atomic`)."""
    write_json_atomic(path, record)


def check_adapter(adapter_dir: str | Path, model_dir: str | Path) -> None:
    """Refuse an adapter trained on another base model (clear error naming both)."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InvalidArgument(
            f"{adapter_dir} is not a peft adapter folder (no adapter_config.json)"
        )
    record = read_run(adapter_dir) or read_run(adapter_dir.parent)
    if record is None:
        logger.warning(
            "adapter %s has no ld-gym run record; its base model is not checked", adapter_dir
        )
        return
    expected, got = record["base_model"], model_fingerprint(model_dir)
    if expected != got:
        raise RunMismatch(
            f"adapter {adapter_dir} was trained on base model {expected} "
            f"({record.get('base_model_dir')}), not on {model_dir} ({got}); "
            "load it on its own base model or train a new one"
        )


def adapter_sha256(adapter_dir: str | Path) -> str:
    """Content fingerprint of an adapter folder (its config and weights, 16 hex digits):
    what a sweep pins so that rows of a retrained adapter are never mixed with old ones."""
    adapter_dir = Path(adapter_dir)
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        f = adapter_dir / name
        if not f.is_file():
            raise InvalidArgument(f"{adapter_dir} is not a peft adapter folder (no {name})")
        h.update(name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def check_adapter_pin(adapter_dir: str | Path, pin: str | None) -> None:
    """Refuse an adapter whose content differs from ``pin`` (``None``: no pin)."""
    if pin is None:
        return
    got = adapter_sha256(adapter_dir)
    if got != pin:
        raise RunMismatch(
            f"adapter {adapter_dir} has content fingerprint {got}, but {pin} was asked for "
            "(the adapter was retrained since the run that pinned it): rerun with the new "
            "fingerprint in another output folder, or restore the pinned adapter"
        )


def ship_adapter(adapter: str | Path, record: dict[str, Any], ship: str | Path) -> Path:
    """Copy an adapter's files to ``ship/adapter`` and its run record beside them and to
    ``ship`` (what ``assets/adapters/*`` hold); return the shipped adapter folder."""
    adapter, ship = Path(adapter), Path(ship)
    dest = ship / ADAPTER_DIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in _ADAPTER_FILES:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, dest / name)
    write_run(dest / RUN_FILE, record)
    write_run(ship / RUN_FILE, record)
    return dest
