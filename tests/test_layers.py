"""The layers point one way: ``ld_envs`` <- ``ld_agents`` <- the benchmark library <- the
``python -m`` studies <- the command line (``benchmarks.cli``).

Every module's imports are read from its syntax tree, function-level imports included, so a
lazy upward import fails as loudly as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ld_envs", "ld_agents", "benchmarks")

#: (module prefix, layer): the longest matching prefix decides; higher may import lower
LAYERS = (
    ("ld_envs", 0),
    ("ld_agents", 1),
    ("benchmarks", 2),
    ("benchmarks.studies", 3),
    ("benchmarks.cli", 4),
)


def layer_of(module: str) -> int | None:
    """The layer of a dotted module name (``None``: not a project module)."""
    best: tuple[int, int] | None = None
    for prefix, layer in LAYERS:
        inside = module == prefix or module.startswith(prefix + ".")
        if inside and (best is None or len(prefix) > best[0]):
            best = (len(prefix), layer)
    return None if best is None else best[1]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the tree, relative ones resolved."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # "from pkg import mod" imports pkg.mod when mod is a module
            out += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return out


def upward_imports(root: Path = ROOT) -> list[str]:
    problems = []
    for package in PACKAGES:  # in layer order
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            mine = layer_of(module)
            tree = ast.parse(path.read_text(), filename=str(path))
            for target, line in imported(tree, module, path.name == "__init__.py"):
                theirs = layer_of(target)
                if mine is not None and theirs is not None and theirs > mine:
                    problems.append(
                        f"{path.relative_to(root)}:{line}: {module} (layer {mine}) imports "
                        f"{target} (layer {theirs})"
                    )
    return problems


def test_no_module_imports_a_higher_layer():
    problems = upward_imports()
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_the_check_names_an_upward_import(tmp_path):
    """The checker itself: a lazy upward import inside a function is found, with its line."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "ld_envs" / "bad.py").write_text(
        "import numpy\n\n\ndef f():\n    from ld_agents import base\n    return base\n"
    )
    (tmp_path / "ld_agents" / "ok.py").write_text("from ld_envs import pursuit\n")
    (tmp_path / "benchmarks" / "lib.py").write_text("from .cli import main\n")
    problems = upward_imports(tmp_path)
    assert len(problems) == 2
    assert problems[0] == "ld_envs/bad.py:5: ld_envs.bad (layer 0) imports ld_agents.base (layer 1)"
    assert problems[1].startswith("benchmarks/lib.py:1: benchmarks.lib (layer 2) imports")
    assert "benchmarks.cli.main (layer 4)" in problems[1]


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("ld_envs.pursuit", 0),
        ("ld_agents.ld.sandbox", 1),
        ("benchmarks.sweep", 2),
        ("benchmarks.studies.llm_speed", 3),
        ("benchmarks.cli.bench", 4),
        ("numpy", None),
        ("benchmarks_extra", None),
    ],
)
def test_layer_of(module, layer):
    assert layer_of(module) == layer
