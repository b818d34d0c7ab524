"""LLM backends behind one protocol: transformers (default), vLLM, OpenAI-compatible HTTP."""

from ld_agents.llm.base import (
    Backend,
    GenerationRequest,
    get_backend,
    make_backend,
    parse_spec,
)

__all__ = ["Backend", "GenerationRequest", "get_backend", "make_backend", "parse_spec"]
