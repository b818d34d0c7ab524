"""Model targets -> local Hugging Face folders: the one resolver every backend and LoRA use.

A target names a model without a scheme (what follows ``hf:`` or ``vllm:``)::

    embedded                 the embedded Gemma-3-270M, de-quantized once into the cache
    /path/to/folder          a local Hugging Face causal-LM folder (holding config.json)
    /path/to/model.gguf      a GGUF file, de-quantized once into the cache (keyed by its hash)

Nothing is downloaded: a bare name other than ``embedded`` is refused, as is a GGUF file
for a reader that cannot take one (vLLM), with the fix in the message; :func:`offline`
forbids hub downloads in the process (call it before transformers is imported).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ld_envs.errors import InvalidArgument, unknown_keyword

#: the target naming the embedded model
EMBEDDED = "embedded"


def offline() -> None:
    """Forbid Hugging Face hub downloads in this process (unless the variables are set)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_model(target: str | Path, *, gguf: bool = True, scheme: str = "hf") -> Path:
    """The local Hugging Face folder ``target`` names, building cached folders as needed.

    ``gguf=False`` refuses GGUF files (for readers that need a folder), pointing to the
    de-quantized folder; ``scheme`` is the backend named in error messages. Raises
    :class:`InvalidArgument` for a target that is not ``embedded``, an existing folder with
    ``config.json`` or (when allowed) an existing ``.gguf`` file.
    """
    from ld_agents.llm import embedded

    target = str(target)
    if target == EMBEDDED:
        return embedded.embedded_model_dir()
    accepted = (
        "a local Hugging Face folder, a .gguf file, or 'embedded'"
        if gguf
        else f"a local Hugging Face folder or 'embedded' ({scheme}:embedded)"
    )
    path = Path(target).expanduser()
    if target.endswith(".gguf"):
        if not gguf:
            raise InvalidArgument(
                f"{scheme} cannot load the GGUF file {target!r}; de-quantize it first "
                "(ld_agents.llm.embedded.dequantized_dir(path) returns a folder) and pass that "
                "folder, or use 'hf:' which reads GGUF directly"
            )
        if not path.is_file():
            raise InvalidArgument(f"GGUF file {target!r} does not exist; pass {accepted}")
        return embedded.dequantized_dir(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InvalidArgument(
                f"folder {target!r} holds no config.json: not a Hugging Face model folder "
                "(save one with model.save_pretrained(folder))"
            )
        return path
    if path.exists():
        raise InvalidArgument(f"{target!r} is a file but not a model folder; pass {accepted}")
    if os.sep in target or target.startswith((".", "~")):
        raise InvalidArgument(f"model path {target!r} does not exist; pass {accepted}")
    raise InvalidArgument(
        f"unknown {scheme} target {target!r}: expected {accepted} (models are never "
        "downloaded from a hub; save one locally first)"
    )


def local_target(model: str) -> str | None:
    """The local target a base-model argument names (``embedded``, a folder, a ``.gguf``
    file; an ``hf:`` prefix taken off), or ``None`` when it is not one: another backend's
    spec, or a spec with options (``?dtype=...``)."""
    target = str(model).removeprefix("hf:")
    return None if not target or ":" in target or "?" in target else target


def check_local_target(target: str, scheme: str = "hf", gguf: bool = True) -> None:
    """Refuse a model target that cannot load, building nothing: ``embedded`` passes, a
    folder needs ``config.json``, a ``.gguf`` file (where ``gguf``) must be readable."""
    from ld_agents.llm.embedded import check_gguf

    if target == EMBEDDED:
        return
    if target.endswith(".gguf") and gguf:
        check_gguf(Path(target).expanduser())
    else:
        resolve_model(target, gguf=gguf, scheme=scheme)


def check_options(options: Mapping[str, object], known: Sequence[str], scheme: str) -> None:
    """Refuse spec options the backend ``scheme`` does not take (the closest one named)."""
    for key in sorted(set(options) - set(known)):
        raise unknown_keyword(f"the {scheme} backend", key, known, "option")


def check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    """Refuse an option value outside ``allowed``."""
    if value not in allowed:
        raise InvalidArgument(f"option {name} must be one of {', '.join(allowed)}, got {value!r}")


__all__ = [
    "EMBEDDED",
    "check_choice",
    "check_local_target",
    "check_options",
    "local_target",
    "offline",
    "resolve_model",
]
