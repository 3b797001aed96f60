"""Test prerequisites: in CI a missing tool is a failure, on a developer's machine a skip."""

from __future__ import annotations

import os
import shutil

import pytest


def require(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (./scripts/install installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must not skip: {message}")
    pytest.skip(message)
