"""The table of known differences is one table: every entry names a case, has a reason, and
README.md shows exactly it (scripts/compat-differences renders it)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.compat.cases import CASES
from tests.compat.differences import DIFFERENCES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_difference_names_a_case_and_a_reason() -> None:
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES), "case ids must be unique"
    assert not set(DIFFERENCES) - ids
    assert all(reason.strip() for reason in DIFFERENCES.values())


def test_readme_shows_the_table() -> None:
    script = os.path.join(ROOT, "scripts", "compat-differences")
    result = subprocess.run([sys.executable, script, "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
