"""Fixtures for the cgroup tests: a unique cgroup prefix per test, cleaned up afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from cgtest import Harness

from barque.cgroups import open_manager


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique top cgroup for this test, removed with everything below it afterwards."""
    name = f"barque-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    open_manager(f"/{name}", "cleanup").destroy()


@pytest.fixture
def cg(prefix: str) -> Iterator[Harness]:
    h = Harness(prefix)
    try:
        yield h
    finally:
        h.cleanup()
