"""The paper's reported figures (``assets/paper_results.json``), for a column beside ours.

``paper_results.json`` transcribes Tables 1-3 as printed. :func:`paper_column` picks the
rows of one env's table for one model family: our ``teacher``/``raw``/``kd``/``ld`` rows
match its Large/Small/-KD/-LD rows. :mod:`benchmarks.tables` sets them beside our figures,
labelled with the paper's model name and kept apart from ours.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ld_agents.files import assets_dir
from ld_envs.errors import unknown_name

logger = logging.getLogger(__name__)

PAPER_FILE = assets_dir() / "paper_results.json"
DEFAULT_FAMILY = "GLM4"


@lru_cache(maxsize=4)
def _paper_doc(path: str) -> dict[str, Any] | None:
    p = Path(path)
    if not p.exists():
        logger.warning("paper figures not found at %s; the paper column is left out", p)
        return None
    doc: dict[str, Any] = json.loads(p.read_text())
    return doc


def paper_families(path: Path | str = PAPER_FILE) -> list[str]:
    """The model families the paper reports (GLM4, LLaMA3, Qwen2.5)."""
    doc = _paper_doc(str(path))
    return sorted(doc["families"]) if doc else []


@dataclass(frozen=True)
class PaperColumn:
    """The paper's figures for one env and model family, ready to sit beside ours."""

    header: str
    table: str
    metrics: list[str]
    #: role (teacher/raw/kd/ld) -> the paper's row
    rows: dict[str, dict[str, Any]]
    #: policy registry name -> role
    policy_roles: dict[str, str]
    notes: list[str]

    def row_for(self, name: str) -> dict[str, Any] | None:
        role = self.policy_roles.get(name)
        return None if role is None else self.rows.get(role)


def paper_column(
    env_id: str, family: str = DEFAULT_FAMILY, path: Path | str = PAPER_FILE
) -> PaperColumn | None:
    """The paper's rows of ``env_id``'s table for a model family (``None`` if it has none,
    or for the family ``none``: no paper column)."""
    doc = _paper_doc(str(path))
    if doc is None or family.lower() == "none":
        return None
    families = doc["families"]
    if family not in families:
        raise unknown_name("paper model family", family, [*families, "none"])
    table = doc["tables"].get(env_id)
    if table is None:
        return None
    rows = {r["role"]: r for r in table["rows"] if r["family"] == family}
    if not rows:
        return None
    return PaperColumn(
        header=f"paper ({families[family]['small']})",
        table=table["table"],
        metrics=list(table["metrics"]),
        rows=rows,
        policy_roles=dict(doc["policy_roles"]),
        notes=list(table.get("notes", [])),
    )
