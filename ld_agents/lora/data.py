"""LoRA training data: rows checked, tokenised with labels on the answers only, and
left-padded into batches.

A row is ``{"prompt", "answer"}`` (one answer after the prompt, then EOS) or
``{"prompt", "branches": [[cue, answer], ...]}``: several independent continuations of one
prompt packed into one sequence. Each branch sees the prompt and itself, never another
branch, and its positions continue from the prompt's end, so the model sees exactly what
it would see in ``prompt + cue + answer`` alone (the LD student's stages after one
state); the prompt runs once for all of them. Packed rows get a 4D attention mask per
attention kind (full and sliding window), built by :class:`LeftPadCollator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ld_agents.llm.prefix_cache import MASKABLE_KINDS, additive_mask, attention_kinds
from ld_envs.errors import InvalidArgument


def _check_branches(i: int, branches: Any) -> list[list[str]]:
    ok = (
        isinstance(branches, list)
        and branches
        and all(
            isinstance(b, list | tuple)
            and len(b) == 2
            and all(isinstance(x, str) for x in b)
            and b[1].strip()
            for b in branches
        )
    )
    if not ok:
        raise InvalidArgument(
            f"training row {i}: 'branches' must be a non-empty list of [cue, answer] string "
            "pairs with non-empty answers"
        )
    return [[str(b[0]), str(b[1])] for b in branches]


def check_examples(examples: Iterable[Any]) -> list[dict[str, Any]]:
    """Validate training rows; raise naming the first bad row."""
    rows = list(examples)
    if not rows:
        raise InvalidArgument(
            "the training data is empty: expected rows with 'prompt' and 'answer' (or 'branches')"
        )
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if (
            not isinstance(row, dict)
            or "prompt" not in row
            or not (("answer" in row) ^ ("branches" in row))
        ):
            keys = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise InvalidArgument(
                f"training row {i} must be a mapping with a 'prompt' string and either an "
                f"'answer' string or 'branches', got {keys}"
            )
        prompt = row["prompt"]
        if not isinstance(prompt, str):
            raise InvalidArgument(f"training row {i}: 'prompt' must be a string")
        if "branches" in row:
            out.append({"prompt": prompt, "branches": _check_branches(i, row["branches"])})
            continue
        answer = row["answer"]
        if not isinstance(answer, str) or not answer.strip():
            raise InvalidArgument(
                f"training row {i}: 'prompt' must be a string and 'answer' a non-empty string"
            )
        out.append({"prompt": prompt, "answer": answer})
    return out


def _tokenize_branches(tokenizer: Any, i: int, row: dict[str, Any]) -> dict[str, list[int]]:
    """One packed row: the prompt, then each branch's cue and answer (labels on answers)."""
    prompt = tokenizer(row["prompt"], add_special_tokens=True)["input_ids"]
    ids, labels = list(prompt), [-100] * len(prompt)
    segments, positions = [0] * len(prompt), list(range(len(prompt)))
    for b, (cue, answer) in enumerate(row["branches"], 1):
        cue_ids = tokenizer(cue, add_special_tokens=False)["input_ids"]
        ans_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        whole = tokenizer(row["prompt"] + cue + answer, add_special_tokens=True)["input_ids"]
        if whole != prompt + cue_ids + ans_ids:
            raise InvalidArgument(
                f"training row {i}, branch {b}: the prompt, cue and answer do not tokenise "
                "apart as they do together; end the prompt and the cue at a token boundary "
                "(a newline, or a space before the answer)"
            )
        n = len(cue_ids) + len(ans_ids)
        ids += cue_ids + ans_ids
        labels += [-100] * len(cue_ids) + ans_ids
        segments += [b] * n
        positions += list(range(len(prompt), len(prompt) + n))
    return {"input_ids": ids, "labels": labels, "segments": segments, "positions": positions}


def tokenize_examples(
    tokenizer: Any, examples: Sequence[dict[str, Any]], max_length: int
) -> list[dict[str, list[int]]]:
    """Token ids with labels only on the answers: ``prompt + answer (+ EOS)``, or a packed
    row (``segments``: 0 for the prompt, ``b`` for branch ``b``; ``positions``: each
    token's position in its own unpacked sequence)."""
    out = []
    for i, row in enumerate(examples):
        if "branches" in row:
            item = _tokenize_branches(tokenizer, i, row)
        else:
            prompt = tokenizer(row["prompt"], add_special_tokens=True)["input_ids"]
            answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [
                tokenizer.eos_token_id
            ]
            item = {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}
        if len(item["input_ids"]) > max_length:
            raise InvalidArgument(
                f"training row {i} is {len(item['input_ids'])} tokens, over "
                f"max_length={max_length}; shorten the prompt or raise LoraTrainConfig.max_length"
            )
        out.append(item)
    return out


def packed_masks(
    rows: Sequence[dict[str, list[int]]], width: int, kinds: Sequence[str], window: int, dtype: Any
) -> dict[str, Any]:
    """Additive 4D attention masks ``(batch, 1, width, width)`` per attention kind for
    left-padded packed rows: a token sees earlier tokens of the prompt and of its own
    branch; a sliding-window layer also only those less than ``window`` positions back."""
    import torch

    batch = len(rows)
    allowed = torch.zeros((batch, width, width), dtype=torch.bool)
    pos = torch.zeros((batch, width), dtype=torch.long)
    for r, row in enumerate(rows):
        n = len(row["input_ids"])
        pad = width - n
        seg = torch.tensor(row.get("segments") or [0] * n)
        p = torch.tensor(row.get("positions") or list(range(n)))
        causal = torch.ones((n, n), dtype=torch.bool).tril()
        same = (seg[None, :] == 0) | (seg[None, :] == seg[:, None])
        allowed[r, pad:, pad:] = causal & same
        pos[r, pad:] = p
        idx = torch.arange(pad)
        allowed[r, idx, idx] = True  # padding sees itself (no empty softmax row)
    masks = {}
    for kind in kinds:
        vis = allowed
        if kind == "sliding_attention":
            vis = allowed & (pos[:, None, :] > pos[:, :, None] - window)
        masks[kind] = additive_mask(vis, dtype)[:, None]
    return {"masks": masks, "positions": pos}


class LeftPadCollator:
    """Left-pads a batch so every row ends at the last position; exact position ids.
    Batches with packed rows get :func:`packed_masks` (needs the model's ``config``)."""

    def __init__(self, pad_id: int, config: Any = None, dtype: Any = None) -> None:
        self.pad_id = pad_id
        self.config = config
        self.dtype = dtype

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
        if any("segments" in r for r in rows):
            if self.config is None:
                raise InvalidArgument("packed rows need the model's config in LeftPadCollator")
            kinds, window = attention_kinds(self.config)
            if not kinds:
                raise InvalidArgument(
                    "packed rows need a model whose layers use full or sliding-window "
                    f"attention ({', '.join(MASKABLE_KINDS)})"
                )
            packed = packed_masks(rows, width, kinds, window, self.dtype or torch.float32)
            masks = packed["masks"]
            return {
                "input_ids": torch.tensor(ids),
                "labels": torch.tensor(labels),
                "attention_mask": masks if len(masks) > 1 else next(iter(masks.values())),
                "position_ids": packed["positions"],
            }
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": attention,
            "position_ids": (attention.cumsum(-1) - 1).clamp(min=0),
        }
