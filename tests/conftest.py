"""Shared fixtures. MNIST is fetched once through the same cache users get (`$PICOZOO_DATA`)."""

import os
import shutil

import pytest

from zoo import data


def require_tool(program: str):
    """Skip locally when a tool is missing, but fail in CI, where `make test` installs everything."""
    if shutil.which(program) is None:
        message = f"{program} is not installed (make setup installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def mnist():
    return data.load("mnist")
