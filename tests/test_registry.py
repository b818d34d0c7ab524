"""The lazy name registry behind policies, LLM backends and commands."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import ld_agents
from ld_agents.llm.base import BACKENDS, make_backend
from ld_agents.registry import Registry, import_modules, unknown_name
from ld_envs.errors import InvalidArgument, UnknownName


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A throwaway package on sys.path: ``regpkg.plugin`` registers into ``regpkg.REG``,
    ``regpkg.command`` registers nothing, ``regpkg.extra`` needs a missing extra."""
    root = tmp_path / "regpkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        textwrap.dedent(
            """
            from ld_agents.registry import Registry
            LOADS = []
            REG = Registry(
                "widget",
                modules=["regpkg.plugin", "regpkg.extra"],
                optional=["no_such_extra_pkg"],
                lazy={"late": "regpkg.late", "cmd": "regpkg.command", "fn": "regpkg.command:run"},
            )
            """
        )
    )
    (root / "plugin.py").write_text(
        "from regpkg import LOADS, REG\nLOADS.append('plugin')\n"
        "@REG.register('optimal')\ndef optimal():\n    return 'optimal'\n"
    )
    (root / "extra.py").write_text(
        "from regpkg import REG\nimport no_such_extra_pkg\nREG.add('extra', 1)\n"
    )
    (root / "late.py").write_text(
        "from regpkg import LOADS, REG\nLOADS.append('late')\nREG.add('late', 'registered')\n"
    )
    (root / "command.py").write_text(
        "from regpkg import LOADS\nLOADS.append('command')\ndef run():\n    return 'ran'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import_modules.cache_clear()  # each test gets a fresh copy of the package
    yield "regpkg"
    for name in [m for m in sys.modules if m == "regpkg" or m.startswith("regpkg.")]:
        del sys.modules[name]


def test_modules_load_on_first_use_only(package):
    """Nothing is imported until a lookup; then the modules fill the registry once."""
    import regpkg

    assert "regpkg.plugin" not in sys.modules and regpkg.LOADS == []
    assert regpkg.REG.get("optimal")() == "optimal"
    regpkg.REG.names()
    assert regpkg.LOADS == ["plugin"]


def test_missing_optional_extra_leaves_its_names_out(package):
    """A module needing a missing optional extra is skipped; its names are unknown."""
    import regpkg

    assert "extra" not in regpkg.REG.names()


def test_missing_required_module_is_not_hidden(tmp_path, monkeypatch):
    """An import error of a dependency that is not optional propagates."""
    (tmp_path / "regbroken.py").write_text("import no_such_required_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[int] = Registry("widget", modules=["regbroken"], optional=["torch"])
    with pytest.raises(ImportError, match="no_such_required_pkg"):
        registry.names()


def test_lazy_names_are_listed_without_import_and_imported_on_get(package):
    """Lazy names are known at once; a lazy module is imported when its name is asked."""
    import regpkg

    assert {"late", "cmd", "fn"} <= set(regpkg.REG.names())
    assert regpkg.REG.names(sort=False)[:3] == ["late", "cmd", "fn"]  # as given (CLI order)
    assert "late" not in regpkg.LOADS
    assert regpkg.REG.get("late") == "registered"  # the module registered the name itself
    assert regpkg.LOADS.count("late") == 1


def test_lazy_module_or_attribute_is_the_value(package):
    """A lazy module that registers nothing is the value (commands), or its attribute."""
    import regpkg

    assert regpkg.REG.get("cmd") is sys.modules["regpkg.command"]
    assert regpkg.REG.get("fn")() == "ran"


def test_unknown_name_suggests_the_closest_and_lists_all(package):
    """An unknown name fails with the closest name and the list of known ones."""
    import regpkg

    with pytest.raises(UnknownName, match=r"unknown widget 'optimla'; did you mean 'optimal'\?"):
        regpkg.REG.get("optimla")
    with pytest.raises(UnknownName, match=r"known: cmd, fn, late, optimal$"):
        regpkg.REG.get("zzzz")
    with pytest.raises(KeyError):  # UnknownName is a KeyError too
        regpkg.REG.get("zzzz")


def test_unknown_name_without_close_match_has_no_hint():
    """No hint when nothing is close; the message keeps the standard form."""
    assert str(unknown_name("policy", "zzz", ["b", "a"])) == "unknown policy 'zzz'; known: a, b"


def test_duplicate_registration_is_refused():
    """Another object under a taken name is refused, naming both."""
    registry: Registry[object] = Registry("widget")

    @registry.register("a")
    def first() -> None: ...

    def second() -> None: ...

    with pytest.raises(InvalidArgument, match=r"widget 'a' is already registered .*first"):
        registry.register("a")(second)
    assert registry.get("a") is first


def test_same_definition_registers_again():
    """The same object, or the same definition run again (a reload), is accepted."""
    registry: Registry[object] = Registry("widget")

    def make() -> object:
        def factory() -> None: ...

        return factory

    one, two = make(), make()
    registry.add("a", one)
    registry.add("a", one)
    registry.add("a", two)  # same module and qualified name: a re-run definition
    assert registry.get("a") is two
    assert registry.remove("a") is two and "a" not in registry


def test_policy_registry_is_per_game_and_suggests():
    """Policies are named per game; a typo names the closest policy of that env."""
    assert "optimal" in ld_agents.known_policies("TwentyOne-v0")
    assert "optimal" not in ld_agents.known_policies("Pursuit-v0")
    with pytest.raises(UnknownName, match=r"policy for TwentyOne-v0 'optimla'; did you mean"):
        ld_agents.make("optimla", "TwentyOne-v0")


def test_policy_registration_refuses_another_factory_for_the_same_game():
    """Registering a taken policy name for the same game again is refused."""
    with pytest.raises(InvalidArgument, match="already registered"):
        ld_agents.register("scripted", "pursuit")(lambda env_id, **_: None)


def test_backend_schemes_are_lazy_and_suggest():
    """Backend schemes are known without importing them; a typo names the closest."""
    assert BACKENDS.names() == ["hf", "openai", "vllm"]
    with pytest.raises(UnknownName, match=r"scheme 'hff'; did you mean 'hf'\? known: hf"):
        make_backend("hff:embedded")
