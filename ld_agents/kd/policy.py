"""The ``kd`` policy: the raw policy on the base model with a KD adapter merged.

Same prompts, same lenient parsing and free generation as ``raw``
(:mod:`ld_agents.raw`); the adapter is the game's shipped one
(``assets/adapters/kd-<game>/adapter``) unless ``adapter=DIR`` names another, and it is
refused when trained on another base model or when ``adapter_sha256`` pins other content.
"""

from __future__ import annotations

from pathlib import Path

from ld_agents.base import Policy, game_of, register
from ld_agents.files import assets_dir
from ld_agents.llm.base import Backend
from ld_agents.llm.models import EMBEDDED, resolve_model
from ld_agents.lora import check_adapter, check_adapter_pin
from ld_agents.raw import RawPursuers, RawTwentyOne
from ld_envs.errors import InvalidArgument
from ld_envs.pursuit import DEFAULT_SIZE


def default_adapter(env_id: str) -> Path:
    """The shipped KD adapter for a game (``assets/adapters/kd-<game>/adapter``)."""
    return assets_dir() / "adapters" / f"kd-{game_of(env_id)}" / "adapter"


def kd_backend_spec(adapter: str | Path, model: str = EMBEDDED, dtype: str = "float32") -> str:
    """The model spec of the base model with the KD adapter (checked against the base)."""
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise InvalidArgument(
            f"no KD adapter at {adapter}; train one with `ld-gym train-kd` or pass adapter=DIR"
        )
    check_adapter(adapter, resolve_model(model))
    return f"hf:{model}?adapter={adapter}&dtype={dtype}"


@register("kd", "pursuit")
def _kd_pursuit(
    env_id: str,
    adapter: str | Path | None = None,
    model: str | Backend | None = None,
    size: int = DEFAULT_SIZE,
    seed: int | None = None,
    side: str = "pursuers",
    adapter_sha256: str | None = None,
    max_new_tokens: int | None = None,
    rule_text: str | None = None,
    rule_mask: str = "env",
) -> Policy:
    if side != "pursuers":
        raise InvalidArgument("the KD student plays the pursuers; use 'raw' for an LLM evader")
    backend = _kd_backend(env_id, adapter, model, adapter_sha256)
    return RawPursuers(
        model=backend,
        size=size,
        seed=seed,
        max_new_tokens=max_new_tokens,
        rule_text=rule_text,
        rule_mask=rule_mask,
    )


def _kd_backend(
    env_id: str,
    adapter: str | Path | None,
    model: str | Backend | None,
    adapter_sha256: str | None = None,
) -> str | Backend:
    """A given backend as is; otherwise the base model (default: embedded, bf16) with the
    game's shipped adapter or ``adapter`` (refused when ``adapter_sha256`` pins another)."""
    if isinstance(model, Backend):
        return model
    base = "embedded" if model in (None, "hf:embedded") else str(model).removeprefix("hf:")
    path = adapter or default_adapter(env_id)
    check_adapter_pin(path, adapter_sha256)
    return kd_backend_spec(path, base, dtype="bfloat16")


@register("kd", "twentyone")
def _kd_twentyone(
    env_id: str,
    adapter: str | Path | None = None,
    model: str | Backend | None = None,
    seed: int | None = None,
    adapter_sha256: str | None = None,
    max_new_tokens: int | None = None,
) -> Policy:
    backend = _kd_backend(env_id, adapter, model, adapter_sha256)
    return RawTwentyOne(model=backend, seed=seed, max_new_tokens=max_new_tokens)


__all__ = ["default_adapter", "kd_backend_spec"]
