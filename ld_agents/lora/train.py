"""The LoRA trainer: transformers' ``Trainer`` with the loss and the output layer on the
answer tokens only, and :func:`train_lora`, one resumable run with its record."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.llm.models import resolve_model
from ld_agents.lora.adapters import (
    ADAPTER_DIR,
    RUN_FILE,
    RunMismatch,
    adapter_sha256,
    check_adapter,
    data_fingerprint,
    model_fingerprint,
    read_run,
    short_sha,
    write_run,
)
from ld_agents.lora.data import LeftPadCollator, check_examples, tokenize_examples
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)


@dataclass
class LoraTrainConfig:
    """Configuration of one LoRA run (validated on creation)."""

    output_dir: str
    """Folder for checkpoints, the final adapter and the run record."""
    r: int = 8
    """LoRA rank."""
    alpha: int = 16
    """LoRA scaling numerator (effective scale alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA branch."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Linear layers that get adapters."""
    learning_rate: float = 2e-4
    """Peak learning rate (linear decay, warmup_ratio of the steps)."""
    warmup_ratio: float = 0.05
    """Fraction of steps spent warming up."""
    epochs: float = 1.0
    """Passes over the data (ignored when max_steps > 0)."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: use epochs)."""
    batch_size: int = 8
    """Examples per step on each device."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    max_length: int = 768
    """Longest prompt + answer in tokens; longer examples are refused."""
    seed: int = 0
    """Seed of initialisation, data order and dropout."""
    save_steps: int = 50
    """Checkpoint every this many steps (resume picks up the last one)."""
    logging_steps: int = 5
    """Record the loss every this many steps."""
    dtype: str = "float32"
    """Weights dtype for training: float32 or bfloat16."""
    progress: bool = True
    """Show a progress bar (off automatically when CI is set)."""
    init_adapter: str | None = None
    """Start from this trained adapter folder (same r and modules) instead of a fresh one:
    a continued run; its content fingerprint is recorded."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes recorded with the run (e.g. what the data is)."""

    def __post_init__(self) -> None:
        checks = [
            ("r", self.r >= 1, "an int >= 1"),
            ("alpha", self.alpha >= 1, "an int >= 1"),
            ("dropout", 0.0 <= self.dropout < 1.0, "in [0, 1)"),
            ("learning_rate", 0.0 < self.learning_rate < 1.0, "in (0, 1)"),
            ("warmup_ratio", 0.0 <= self.warmup_ratio < 1.0, "in [0, 1)"),
            ("epochs", self.epochs > 0, "> 0"),
            ("max_steps", self.max_steps == -1 or self.max_steps >= 1, "-1 or >= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("grad_accum", self.grad_accum >= 1, ">= 1"),
            ("max_length", self.max_length >= 8, ">= 8"),
            ("save_steps", self.save_steps >= 1, ">= 1"),
            ("logging_steps", self.logging_steps >= 1, ">= 1"),
            ("dtype", self.dtype in ("float32", "bfloat16"), "'float32' or 'bfloat16'"),
            (
                "target_modules",
                len(self.target_modules) > 0
                and all(isinstance(m, str) and m.strip() for m in self.target_modules),
                "a non-empty list of module names",
            ),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InvalidArgument(
                    f"LoraTrainConfig.{name} must be {expected}, got {getattr(self, name)!r}"
                )
        self.target_modules = tuple(m.strip() for m in self.target_modules)
        if self.init_adapter is not None:
            self._check_init_adapter()

    def _check_init_adapter(self) -> None:
        """The adapter to continue must exist and have this config's rank and modules."""
        path = Path(self.init_adapter or "") / "adapter_config.json"
        if not path.is_file():
            raise InvalidArgument(
                f"LoraTrainConfig.init_adapter {self.init_adapter!r} is not an adapter folder "
                "(no adapter_config.json)"
            )
        found = json.loads(path.read_text())
        if found.get("r") != self.r or set(found.get("target_modules") or []) != set(
            self.target_modules
        ):
            raise InvalidArgument(
                f"LoraTrainConfig.init_adapter {self.init_adapter!r} has r={found.get('r')} "
                f"and modules {sorted(found.get('target_modules') or [])}; this run asks for "
                f"r={self.r} and {sorted(self.target_modules)}"
            )

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not output_dir or progress)."""
        d = asdict(self)
        if self.init_adapter is not None:
            d["init_adapter"] = adapter_sha256(self.init_adapter)
        for k in ("output_dir", "progress", "save_steps", "logging_steps"):
            d.pop(k)
        return short_sha(json.dumps(d, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _module_names(config_file: str, mtime: float) -> tuple[frozenset[str], tuple[str, ...]]:
    """(every module's dotted name, the adaptable layers' last names) of the model whose
    ``config.json`` is ``config_file``: the architecture built on the meta device from its
    config, no weights read (``mtime`` keys the cache)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(Path(config_file).parent))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)
    names = frozenset(n for n, _ in model.named_modules() if n)
    layers = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, kinds)}
    )
    return names, tuple(layers)


def check_target_modules(model_dir: str | Path, target_modules: Iterable[str]) -> None:
    """Refuse LoRA target modules the base model in ``model_dir`` (a Hugging Face folder)
    does not have, before any weight is loaded; the error lists the valid names. A target
    matches as peft matches it: a module's full dotted name or its last part(s)."""
    config_file = Path(model_dir) / "config.json"
    if not config_file.is_file():
        raise InvalidArgument(f"{model_dir} is not a Hugging Face model folder (no config.json)")
    names, layers = _module_names(str(config_file), config_file.stat().st_mtime)
    targets = list(target_modules)
    unknown = [t for t in targets if not t or not any(n == t or n.endswith("." + t) for n in names)]
    if unknown or not targets:
        raise InvalidArgument(
            f"unknown LoRA target module(s) {', '.join(repr(t) for t in unknown) or '(none)'} "
            f"for the base model {model_dir}; valid names: {','.join(layers)}"
        )


def _answer_only_trainer_class() -> type:
    from transformers import Trainer

    class AnswerOnlyTrainer(Trainer):
        """``Trainer`` whose loss covers the answer tokens and computes only their logits."""

        loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides by GA steps

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            import torch.nn.functional as F

            labels = inputs.pop("labels")
            predicts = labels.new_zeros(labels.shape, dtype=bool)
            predicts[:, :-1] = labels[:, 1:] != -100  # position t predicts token t + 1
            outputs = model(**inputs, logits_to_keep=predicts)
            logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])
            targets = labels[:, 1:][predicts[:, :-1]]
            loss = F.cross_entropy(logits.float(), targets)
            return (loss, outputs) if return_outputs else loss

    return AnswerOnlyTrainer


def train_lora(
    model_dir: str | Path, examples: Iterable[Any], config: LoraTrainConfig
) -> dict[str, Any]:
    """Fine-tune LoRA adapters on a base model; return the run record.

    ``model_dir`` is a Hugging Face folder or any model target
    (:func:`ld_agents.llm.models.resolve_model`: ``embedded``, a ``.gguf`` file). Resumes
    from the newest checkpoint in ``config.output_dir`` when the run there is the same
    (config, data, base model); refuses a folder from another run, unless that run saved
    nothing (:func:`never_saved`: it failed before its first checkpoint), which is replaced.
    The target modules are checked against the base model before anything is written.
    """
    model_dir = resolve_model(model_dir)
    rows = check_examples(examples)
    check_target_modules(model_dir, config.target_modules)
    out = Path(config.output_dir)
    identity = {
        "config": config.fingerprint(),
        "data": data_fingerprint(rows),
        "base_model": model_fingerprint(model_dir),
    }
    previous = read_run(out) if out.is_dir() else None
    if previous is not None:
        diff = [k for k in identity if previous.get(k) != identity[k]]
        if diff and not never_saved(out, previous):
            raise RunMismatch(
                f"{out} holds another run (its {', '.join(diff)} fingerprint differs); "
                "use a new output_dir or delete that folder"
            )
        if diff:  # that run failed before saving anything: nothing is lost by replacing it
            logger.info(
                "%s: replacing a run that saved nothing (status %r)", out, previous.get("status")
            )
            previous = None
    out.mkdir(parents=True, exist_ok=True)
    if (
        previous is not None
        and previous.get("status") == "done"
        and (out / ADAPTER_DIR / "adapter_config.json").is_file()
    ):
        # a finished run is not trained again: resuming from its last checkpoint can take
        # one more optimizer step (seen on a run stopped mid-epoch by max_steps)
        logger.info(
            "%s: this run is done (%s steps); not trained again", out, previous.get("global_step")
        )
        return previous
    record: dict[str, Any] = {
        **identity,
        "base_model_dir": str(model_dir),
        "train_config": asdict(config),
        "examples": len(rows),
        "status": "running",
    }
    write_run(out / RUN_FILE, record)
    try:
        return _train(model_dir, rows, config, out, record)
    except BaseException as exc:
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        write_run(out / RUN_FILE, record)
        raise


def never_saved(out: Path, record: dict[str, Any]) -> bool:
    """Did the run in ``out`` (its record ``record``) stop before saving anything: not
    done, no checkpoint, no adapter? Such a run may be replaced by another one."""
    return (
        record.get("status") != "done"
        and not any(out.glob("checkpoint-*"))
        and not (out / ADAPTER_DIR).exists()
    )


def _train(
    model_dir: Path, rows: list[Any], config: LoraTrainConfig, out: Path, record: dict[str, Any]
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments, set_seed

    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    if config.init_adapter is not None:
        from peft import PeftModel

        check_adapter(config.init_adapter, model_dir)
        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        record["init_adapter"] = {
            "path": str(config.init_adapter),
            "adapter_sha256": adapter_sha256(config.init_adapter),
        }
    else:
        model = get_peft_model(
            model,
            LoraConfig(
                r=config.r,
                lora_alpha=config.alpha,
                lora_dropout=config.dropout,
                target_modules=list(config.target_modules),
                task_type="CAUSAL_LM",
            ),
        )
    data = tokenize_examples(tokenizer, rows, config.max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    show_bar = config.progress and not os.environ.get("CI")
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        warmup_steps=max(0, math.ceil(config.warmup_ratio * _planned_steps(len(data), config))),
        lr_scheduler_type="linear",
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        disable_tqdm=not show_bar,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        bf16=config.dtype == "bfloat16",
    )
    trainer = _answer_only_trainer_class()(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=LeftPadCollator(pad, model.config, dtype),
    )
    has_checkpoint = any(out.glob("checkpoint-*"))
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    wall = time.perf_counter() - start
    model.save_pretrained(out / ADAPTER_DIR)
    tokenizer.save_pretrained(out / ADAPTER_DIR)
    steps_done = trainer.state.global_step
    record.update(
        status="done",
        resumed=has_checkpoint,
        global_step=steps_done,
        train_loss=result.training_loss,
        wall_seconds=wall,
        steps_per_second=steps_done / wall if wall > 0 else None,
        loss_curve=[
            {"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h
        ],
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    write_run(out / RUN_FILE, record)
    write_run(out / ADAPTER_DIR / RUN_FILE, record)
    logger.info("LoRA run done: %d steps in %.1f s -> %s", steps_done, wall, out / ADAPTER_DIR)
    return record


def _planned_steps(n_examples: int, config: LoraTrainConfig) -> int:
    if config.max_steps > 0:
        return config.max_steps
    per_epoch = math.ceil(n_examples / (config.batch_size * config.grad_accum))
    return max(1, math.ceil(per_epoch * config.epochs))
