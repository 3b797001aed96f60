"""What pyproject.toml cannot say: the build backend compiles the C programs in monitor/
(barque-monitor, barque-sealexec, barque-runtime-fast) and ships them as scripts, so that a
wheel, `pip install .` or `pipx install` puts them beside bin/barque and bin/barque-runtime,
where the engine (barque/engine/programs.py) and the launcher look for them. Machine code makes the wheel
specific to a platform, though not to a Python version or ABI (py3-none-linux_*)."""

from __future__ import annotations

import os
import subprocess

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel

# distutils' command, as setuptools vendors it (setuptools.command has no build_scripts)
build_scripts = Distribution().get_command_class("build_scripts")

HERE = os.path.dirname(os.path.abspath(__file__))
MONITOR = os.path.join(HERE, "monitor")
PROGRAMS = ("barque-monitor", "barque-sealexec", "barque-runtime-fast")  # monitor/Makefile's PROGRAMS


class BuildScripts(build_scripts):  # type: ignore[misc,valid-type]
    """bin/* as setuptools copies them, plus the programs monitor/Makefile builds (with the
    environment's CC, CFLAGS and LDFLAGS, as `make` takes them)."""

    def run(self) -> None:
        super().run()
        subprocess.run(["make", "-s", "-C", MONITOR], check=True)
        self.mkpath(self.build_dir)
        for name in PROGRAMS:
            # Copied as they are: build_scripts would look for a #! line to rewrite.
            self.copy_file(os.path.join(MONITOR, "build", name),
                           os.path.join(self.build_dir, name))


class BdistWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False  # the platform tag: the wheel holds machine code

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform  # the programs use no Python ABI


setup(cmdclass={"build_scripts": BuildScripts, "bdist_wheel": BdistWheel})
