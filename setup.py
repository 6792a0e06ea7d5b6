"""Install-time build step: compile rp2040_sim's native cycle counter (rp2040_sim/native/cycles.c).

Everything else about the package is in pyproject.toml. The library is a plain C shared object loaded with ctypes
(not a Python extension); it is compiled into the cache the emulator loads from (rp2040_sim/native/__init__.py),
keyed by the source's hash, so editable installs pick up source changes too. No C compiler: the install stops
with a message saying what to install.
"""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NATIVE = Path(__file__).resolve().parent / "rp2040_sim" / "native" / "__init__.py"


def build_native():
    spec = importlib.util.spec_from_file_location("_rp2040_sim_native", NATIVE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(f"rp2040_sim: native cycle counter at {module.build()}")


class BuildPyWithNative(build_py):
    def run(self):
        build_native()
        super().run()


setup(cmdclass={"build_py": BuildPyWithNative})
