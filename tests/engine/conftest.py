"""The engine's tests use the CLI tests' throw-away root dirs."""

from tests.cli.conftest import barque  # noqa: F401  (a fixture, found by pytest here)
