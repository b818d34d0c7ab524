"""LoRA fine-tuning of a causal LM on (prompt, answer) pairs, shared by KD and the LD student.

One trainer, used as transformers' ``Trainer`` is meant to be used (its loop, schedulers,
checkpoints, resume and progress bar), with one change: the loss is taken on the answer
tokens only, and the output layer is applied only at the positions that predict them
(``logits_to_keep`` with a boolean mask). For the embedded model the 262k-row output layer
dominates a step when it runs on every position; here it runs on a handful. (TRL's
``SFTTrainer`` computes every position's logits, hence not used.)

    from ld_agents.lora import LoraTrainConfig, train_lora
    summary = train_lora("embedded", [{"prompt": ..., "answer": ...}, ...],
                         LoraTrainConfig(output_dir="runs/kd-pursuit"))

The output folder holds ``checkpoint-*/`` (resumable), ``adapter/`` (the final peft
adapter) and ``ld_gym_run.json`` (config, data and base-model fingerprints, loss curve,
steps per second). Re-running with the same config and data resumes from the last
checkpoint; a folder from another run (other data, config or base model) is refused.

Modules: :mod:`~ld_agents.lora.data` (rows checked, tokenised, batched),
:mod:`~ld_agents.lora.train` (config, trainer, :func:`train_lora`),
:mod:`~ld_agents.lora.adapters` (run records, fingerprints, the checks made on load).
"""

from ld_agents.lora.adapters import (
    ADAPTER_DIR,
    RUN_FILE,
    WRITER_KEYS,
    RunMismatch,
    adapter_sha256,
    check_adapter,
    check_adapter_pin,
    data_fingerprint,
    model_fingerprint,
    ship_adapter,
)
from ld_agents.lora.data import LeftPadCollator, check_examples, tokenize_examples
from ld_agents.lora.train import LoraTrainConfig, check_target_modules, never_saved, train_lora

__all__ = [
    "ADAPTER_DIR",
    "RUN_FILE",
    "WRITER_KEYS",
    "LeftPadCollator",
    "LoraTrainConfig",
    "RunMismatch",
    "adapter_sha256",
    "check_adapter",
    "check_adapter_pin",
    "check_examples",
    "check_target_modules",
    "data_fingerprint",
    "model_fingerprint",
    "never_saved",
    "ship_adapter",
    "tokenize_examples",
    "train_lora",
]
