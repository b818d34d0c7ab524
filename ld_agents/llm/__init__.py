"""LLM backends behind one protocol: transformers (default), vLLM, OpenAI-compatible HTTP."""

from ld_agents.llm.base import Backend, GenerationRequest, make_backend, parse_spec

__all__ = ["Backend", "GenerationRequest", "make_backend", "parse_spec"]
