"""LoRA fine-tuning of a causal LM on (prompt, answer) pairs, shared by KD and the LD student.

One trainer, used as transformers' ``Trainer`` is meant to be used (its loop, schedulers,
checkpoints, resume and progress bar), with one change: the loss is taken on the answer
tokens only, and the output layer is applied only at the positions that predict them
(``logits_to_keep`` with a boolean mask). For the embedded model the 262k-row output layer
dominates a step when it runs on every position; here it runs on a handful.

    from ld_agents.lora import LoraTrainConfig, train_lora
    summary = train_lora(model_dir, [{"prompt": ..., "answer": ...}, ...],
                         LoraTrainConfig(output_dir="runs/kd-pursuit"))

The output folder holds ``checkpoint-*/`` (resumable), ``adapter/`` (the final peft
adapter) and ``ld_gym_run.json`` (config, data and base-model fingerprints, loss curve,
steps per second). Re-running with the same config and data resumes from the last
checkpoint; a folder from another run (other data, config or base model) is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ld_envs.errors import InvalidArgument, LdGymError

logger = logging.getLogger(__name__)

RUN_FILE = "ld_gym_run.json"
ADAPTER_DIR = "adapter"


class RunMismatch(LdGymError, ValueError):
    """An output or adapter folder belongs to another run or another base model."""


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
            ("target_modules", len(self.target_modules) > 0, "a non-empty list"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InvalidArgument(
                    f"LoraTrainConfig.{name} must be {expected}, got {getattr(self, name)!r}"
                )
        self.target_modules = tuple(self.target_modules)

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not output_dir or progress)."""
        d = asdict(self)
        for k in ("output_dir", "progress", "save_steps", "logging_steps"):
            d.pop(k)
        return _sha(json.dumps(d, sort_keys=True))


# --------------------------------------------------------------------------- data


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_examples(examples: Iterable[Any]) -> list[dict[str, str]]:
    """Validate (prompt, answer) examples; raise naming the first bad row."""
    rows = list(examples)
    if not rows:
        raise InvalidArgument(
            "the training data is empty: expected rows with 'prompt' and 'answer'"
        )
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"prompt", "answer"} <= set(row):
            keys = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise InvalidArgument(
                f"training row {i} must be a mapping with 'prompt' and 'answer' strings, got {keys}"
            )
        prompt, answer = row["prompt"], row["answer"]
        if not isinstance(prompt, str) or not isinstance(answer, str) or not answer.strip():
            raise InvalidArgument(
                f"training row {i}: 'prompt' must be a string and 'answer' a non-empty string"
            )
        out.append({"prompt": prompt, "answer": answer})
    return out


def data_fingerprint(examples: Sequence[dict[str, str]]) -> str:
    """Order-sensitive hash of the examples (recorded with every adapter)."""
    h = hashlib.sha256()
    for row in examples:
        h.update(json.dumps([row["prompt"], row["answer"]]).encode("utf-8"))
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
    return _sha("\n".join(parts))


def tokenize_examples(
    tokenizer: Any, examples: Sequence[dict[str, str]], max_length: int
) -> list[dict[str, list[int]]]:
    """Token ids of prompt + answer (+ EOS) with labels only on the answer."""
    out = []
    for i, row in enumerate(examples):
        prompt = tokenizer(row["prompt"], add_special_tokens=True)["input_ids"]
        answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [
            tokenizer.eos_token_id
        ]
        ids = prompt + answer
        if len(ids) > max_length:
            raise InvalidArgument(
                f"training row {i} is {len(ids)} tokens, over max_length={max_length}; "
                "shorten the prompt or raise LoraTrainConfig.max_length"
            )
        out.append({"input_ids": ids, "labels": [-100] * len(prompt) + answer})
    return out


class LeftPadCollator:
    """Left-pads a batch so every answer ends at the last position; exact position ids."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids, labels, mask = [], [], []
        for r in rows:
            pad = width - len(r["input_ids"])
            ids.append([self.pad_id] * pad + r["input_ids"])
            labels.append([-100] * pad + r["labels"])
            mask.append([0] * pad + [1] * len(r["input_ids"]))
        attention = torch.tensor(mask)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": attention,
            "position_ids": (attention.cumsum(-1) - 1).clamp(min=0),
        }


# --------------------------------------------------------------------------- trainer


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


def _read_run(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def check_adapter(adapter_dir: str | Path, model_dir: str | Path) -> None:
    """Refuse an adapter trained on another base model (clear error naming both)."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InvalidArgument(
            f"{adapter_dir} is not a peft adapter folder (no adapter_config.json)"
        )
    record = _read_run(adapter_dir) or _read_run(adapter_dir.parent)
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


def train_lora(
    model_dir: str | Path, examples: Iterable[Any], config: LoraTrainConfig
) -> dict[str, Any]:
    """Fine-tune LoRA adapters on ``model_dir`` (a Hugging Face folder); return the run record.

    Resumes from the newest checkpoint in ``config.output_dir`` when the run there is the
    same (config, data, base model); refuses a folder from another run.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments, set_seed

    rows = check_examples(examples)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = {
        "config": config.fingerprint(),
        "data": data_fingerprint(rows),
        "base_model": model_fingerprint(model_dir),
    }
    previous = _read_run(out)
    if previous is not None:
        diff = [k for k in identity if previous.get(k) != identity[k]]
        if diff:
            raise RunMismatch(
                f"{out} holds another run (its {', '.join(diff)} fingerprint differs); "
                "use a new output_dir or delete that folder"
            )
    record: dict[str, Any] = {
        **identity,
        "base_model_dir": str(model_dir),
        "train_config": asdict(config),
        "examples": len(rows),
        "status": "running",
    }
    _write_json_atomic(out / RUN_FILE, record)

    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
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
        model=model, args=args, train_dataset=data, data_collator=LeftPadCollator(pad)
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
    _write_json_atomic(out / RUN_FILE, record)
    _write_json_atomic(out / ADAPTER_DIR / RUN_FILE, record)
    logger.info("LoRA run done: %d steps in %.1f s -> %s", steps_done, wall, out / ADAPTER_DIR)
    return record


def _planned_steps(n_examples: int, config: LoraTrainConfig) -> int:
    if config.max_steps > 0:
        return config.max_steps
    per_epoch = math.ceil(n_examples / (config.batch_size * config.grad_accum))
    return max(1, math.ceil(per_epoch * config.epochs))


_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")


def ship_adapter(adapter: str | Path, record: dict[str, Any], ship: str | Path) -> Path:
    """Copy an adapter's files to ``ship/adapter`` and its run record beside them and to
    ``ship`` (what ``assets/adapters/*`` hold); return the shipped adapter folder."""
    import shutil

    adapter, ship = Path(adapter), Path(ship)
    dest = ship / ADAPTER_DIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in _ADAPTER_FILES:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, dest / name)
    text = json.dumps(record, indent=2)
    (dest / RUN_FILE).write_text(text)
    (ship / RUN_FILE).write_text(text)
    return dest
