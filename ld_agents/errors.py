"""Errors raised by the agents layer (backends, the sandbox).

The input errors every layer shares (:class:`~ld_envs.errors.InvalidArgument`,
:class:`~ld_envs.errors.UnknownName`, ...) live in :mod:`ld_envs.errors`; each error here is
also an :class:`~ld_envs.errors.LdGymError` and subclasses the builtin that matches it.
"""

from __future__ import annotations

from ld_envs.errors import LdGymError


class BackendError(LdGymError, RuntimeError):
    """An LLM backend failed (endpoint down, no log-probs, prompt too long...)."""


class SandboxError(LdGymError, RuntimeError):
    """Generated code was refused or failed in the sandbox."""
