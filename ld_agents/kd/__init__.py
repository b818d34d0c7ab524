"""Knowledge distillation (the paper's KD rows): teacher traces -> LoRA student.

1. :mod:`ld_agents.kd.traces`: :func:`collect_traces` plays a teacher on seeded starts
   kept apart from the benchmark starts and records (prompt, answer) pairs: the raw prompt
   the student will see, and the teacher's answer. An LLM teacher's answer is its own
   generated text; a non-LLM teacher (e.g. ``scripted``) has its action rendered as the
   answer text and is labelled a *stand-in teacher* in the trace metadata and everywhere
   the traces are used.
2. :mod:`ld_agents.kd.train`: :func:`train_kd` fine-tunes LoRA adapters on the traces
   (:mod:`ld_agents.lora`).
3. :mod:`ld_agents.kd.policy`: the ``kd`` policy is the raw policy (same prompts, same
   lenient parsing, free generation) on the base model with the adapter merged.

The paper used 221 starts and 103,355 teacher outputs for pursuit; here the scale is a
parameter (``n_starts``) and the shipped adapters record what they used.
"""

from ld_agents.kd.policy import default_adapter, kd_backend_spec
from ld_agents.kd.traces import (
    TRACE_SEED_KEY,
    TraceSet,
    _benchmark_starts,  # benchmarks.studies.kd_agreement and its tests import it from here
    _start_key,  # likewise
    collect_traces,
    default_traces_dir,
    pursuers_answer_text,
    stand_in_exchange,
    trace_seed,
    write_traces,
)
from ld_agents.kd.train import default_kd_dir, train_kd

__all__ = [  # noqa: RUF022  (the private helpers last)
    "TRACE_SEED_KEY",
    "TraceSet",
    "collect_traces",
    "default_adapter",
    "default_kd_dir",
    "default_traces_dir",
    "kd_backend_spec",
    "pursuers_answer_text",
    "stand_in_exchange",
    "trace_seed",
    "train_kd",
    "write_traces",
    "_benchmark_starts",
    "_start_key",
]
