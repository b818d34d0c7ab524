"""Logic Distillation: function bases, the sandbox that runs them, and the LD student.

Package map (one module per responsibility):

- ``schema``: the function-base file format: records (``FunctionEntry``, ``StageSpec``...),
  ``SchemaError``, readers whose errors name the field.
- ``base``: ``FunctionBase`` (stages, functions, the ground-truth labeller, chain runs) and
  loading (``load_function_base``, ``shipped_base``, ``load_source_entry``).
- ``games``: per-game vocabularies (``spec``: the framework; ``pursuit``, ``twenty_one``:
  the two games' value types, predicates and properties; ``sample_states``).
- ``validation``: the sandbox contract tests behind ``ld-gym validate`` (``validate_base``,
  ``validate_function``, ``validate_file``).
- ``sandbox``: the static check and the limited worker process that run generated code;
  ``_sandbox_worker``: the worker script itself (standard library only).
- ``chain``: ``FunctionChainPolicy``, a policy that runs a base's chain (``ld_oracle``).
- ``prompts``: the student's per-stage prompts and answer labels.
- ``policy``: ``LDPolicy`` and ``LDConfig``, the ``ld`` student (selection by scoring).
- ``retriever``: dense retrieval of manual entries (MiniLM) for stages with many functions.
- ``training_data``: labelled stages and the (prompt, answer) rows the student learns from.
- ``train``: ``LDTrainConfig`` and ``train_ld``, the student's LoRA recipe (``ld-gym train-ld``).
- ``emergency``: a new rule as text becomes a validated function (``ld-gym emergency``).
- ``rule_writer``: the small model writes a new rule's function (prompt, data, checks).
- ``teach``: a teacher model writes a function base (``ld-gym teach``).

The main names are importable from here; each loads its module on first use, so importing
``ld_agents.ld`` stays cheap::

    from ld_agents.ld import LDPolicy, shipped_base
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ld_agents.ld.base import FunctionBase, load_function_base, shipped_base
    from ld_agents.ld.policy import LDConfig, LDPolicy
    from ld_agents.ld.train import LDTrainConfig, train_ld

#: public name -> the module that defines it
_EXPORTS = {
    "FunctionBase": "ld_agents.ld.base",
    "load_function_base": "ld_agents.ld.base",
    "shipped_base": "ld_agents.ld.base",
    "LDConfig": "ld_agents.ld.policy",
    "LDPolicy": "ld_agents.ld.policy",
    "LDTrainConfig": "ld_agents.ld.train",
    "train_ld": "ld_agents.ld.train",
}

__all__ = [
    "FunctionBase",
    "LDConfig",
    "LDPolicy",
    "LDTrainConfig",
    "load_function_base",
    "shipped_base",
    "train_ld",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
