"""The fuzz/ harnesses run as a user runs them (`python fuzz/NAME.py --iterations N`), briefly,
so that they never rot between long fuzzing runs: each must fuzz and report no crash."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESSES = ["tar_unpack", "image_import", "archive_load", "reference", "run_flags",
             "oci_config", "dns_query", "dockerfile"]


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_fuzzes_without_a_crash(name: str, tmp_path: object) -> None:
    proc = subprocess.run(
        [sys.executable, os.path.join("fuzz", f"{name}.py"), "--iterations", "300",
         "--seed", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "300 inputs fuzzed" in proc.stdout and "0 distinct crash(es)" in proc.stdout, \
        proc.stdout
