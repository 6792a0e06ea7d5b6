"""Shared fixtures. MNIST is fetched once through the same cache users get (`$PICOZOO_DATA`)."""

import os
import shutil

import pytest

from zoo import data


def require_tool(*programs: str):
    """Skip locally when a tool is missing, but fail in CI, where `make test` installs everything."""
    missing = [program for program in programs if shutil.which(program) is None]
    if missing:
        message = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed (make setup installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def mnist():
    return data.load("mnist")
