"""LoRA training data: (prompt, answer) rows checked, tokenised with labels on the answer
only, and left-padded into batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ld_envs.errors import InvalidArgument


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
