"""Ships ``assets/`` inside the installed package (as ``ld_agents/_assets``).

Everything else is in pyproject.toml. A non-editable ``pip install .`` copies the repository's
``assets/`` folder (prompts, function bases, adapters, RL models, the paper's figures) into
the wheel, where :func:`ld_agents.files.assets_dir` finds it; an editable install reads the
checkout's ``assets/`` directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithAssets(build_py):
    """``build_py`` that also copies ``assets/`` to ``ld_agents/_assets`` in the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ld_agents" / "_assets"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(Path(__file__).parent / "assets", target)


setup(cmdclass={"build_py": BuildPyWithAssets})
