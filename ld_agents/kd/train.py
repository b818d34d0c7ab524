"""KD training: LoRA-fine-tune the base model on teacher traces (:mod:`ld_agents.lora`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ld_agents.files import check_output_folder
from ld_agents.kd.traces import TraceSet
from ld_agents.llm.models import EMBEDDED, local_target, resolve_model
from ld_agents.lora import (
    ADAPTER_DIR,
    RUN_FILE,
    LoraTrainConfig,
    check_target_modules,
    ship_adapter,
    train_lora,
)
from ld_envs.errors import InvalidArgument

#: what a LoRA run writes in its folder (its record, the adapter, checkpoints)
RUN_OUTPUTS = (RUN_FILE, ADAPTER_DIR, "checkpoint-*")
#: what shipping an adapter writes in the ship folder
SHIP_OUTPUTS = (RUN_FILE, ADAPTER_DIR)


def check_lora_outputs(
    output_dir: str | Path | None,
    ship: str | Path | None = None,
    *,
    overwrite: bool = False,
    option: str = "--out",
) -> Path | None:
    """May a LoRA run (KD or LD) write to ``output_dir`` and ship to ``ship``? Checked before
    training: a run folder holding its record is the run's own (resumed; another run's is
    refused by :func:`ld_agents.lora.train_lora`), any other folder may hold none of what a
    run writes; a ship folder may hold no adapter, unless ``overwrite``. Returns the run
    folder (``output_dir=None``: only ``ship`` is checked, for shipping a checkpoint)."""
    folder = None
    if output_dir is not None:
        folder = check_output_folder(
            output_dir,
            RUN_OUTPUTS,
            overwrite=overwrite,
            option=option,
            resume=RUN_FILE,
            replaceable=False,
        )
    if ship is not None:
        check_output_folder(
            ship, SHIP_OUTPUTS, overwrite=overwrite, option="--ship", replaceable=False
        )
    return folder


def local_model_target(model: str | Path) -> str | Path:
    """The local model target of ``model`` for training (``hf:TARGET`` is ``TARGET``,
    :func:`ld_agents.llm.models.local_target`); another backend's spec (``openai:URL``,
    ``vllm:...``) or one with options is refused: training needs a local model."""
    if isinstance(model, Path):
        return model
    target = local_target(model)
    if target is None:
        raise InvalidArgument(
            f"--model {model!r} is not a local model; training (LoRA) needs a local model: "
            "'embedded' (or 'hf:embedded'), a Hugging Face folder or a .gguf file, without "
            "options"
        )
    return target


def default_kd_dir(traces_dir: str | Path) -> Path:
    """Where ``ld-gym train-kd`` writes by default: ``runs/kd-<name>`` under the current
    folder, ``<name>`` the traces folder's name without its ``traces-`` prefix."""
    return Path("runs") / f"kd-{Path(traces_dir).name.removeprefix('traces-')}"


def train_kd(
    traces: TraceSet | str | Path,
    output_dir: str | Path,
    model: str = EMBEDDED,
    *,
    limit: int | None = None,
    ship: str | Path | None = None,
    overwrite: bool = False,
    **config: Any,
) -> dict[str, Any]:
    """LoRA-fine-tune the base model on the traces; return the run record.

    ``traces`` is a :class:`TraceSet` or a folder written by :meth:`TraceSet.save`; ``limit``
    keeps its first rows only; ``model`` is a model target
    (:func:`ld_agents.llm.models.resolve_model`); ``config`` holds
    :class:`ld_agents.lora.LoraTrainConfig` fields. The adapter lands in
    ``output_dir/adapter``; ``ship`` also copies it with its run record there (what
    ``assets/adapters/kd-<game>`` holds, where the kd policy finds it). Both folders are
    checked before training (:func:`check_lora_outputs`; ``overwrite`` allows replacing).
    """
    check_lora_outputs(output_dir, ship, overwrite=overwrite)
    model = local_model_target(model)
    if not isinstance(traces, TraceSet):
        traces = TraceSet.load(traces)
    if limit is not None:
        traces = TraceSet(traces.rows[:limit], traces.meta)
    model_dir = resolve_model(model)
    if "target_modules" in config:  # before any file or weight; the error lists the names
        check_target_modules(model_dir, [str(m).strip() for m in config["target_modules"]])
    cfg = LoraTrainConfig(output_dir=str(output_dir), extra={"traces": traces.meta}, **config)
    record = train_lora(model_dir, traces.rows, cfg)
    if ship is not None:
        ship_adapter(Path(output_dir) / ADAPTER_DIR, record, ship)
    return record


__all__ = [
    "RUN_OUTPUTS",
    "SHIP_OUTPUTS",
    "check_lora_outputs",
    "default_kd_dir",
    "local_model_target",
    "train_kd",
]
