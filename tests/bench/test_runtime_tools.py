"""bench/runtime_tools.py's pure parts: reading the suite's TAP and listing where barque-runtime
fails and runc passes. Nothing is built or run here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
_spec = importlib.util.spec_from_file_location("bench_runtime_tools", BENCH / "runtime_tools.py")
assert _spec is not None and _spec.loader is not None
rt = importlib.util.module_from_spec(_spec)
sys.modules["bench_runtime_tools"] = rt  # its dataclasses look their module up there
_spec.loader.exec_module(rt)

TAP = """TAP version 13
ok 1 - has expected hostname
  ---
  {"actual": "x"}
  ...
not ok 2 - has expected working directory
ok 3 # SKIP linux.uidMappings not set
ok 4 - root filesystem # skip not set
1..4
"""


def test_parse_tap_counts_pass_fail_skip() -> None:
    result = rt.parse_tap(TAP)
    assert (result.count("pass"), result.count("fail"), result.count("skip")) == (1, 1, 2)
    assert result.status["2 has expected working directory"] == "fail"
    assert result.error == ""


def test_a_program_that_ends_without_a_plan_is_an_error() -> None:
    result = rt.parse_tap("TAP version 13\nok 1 - something\n")
    assert result.error.startswith("no TAP plan")


def test_regressions_list_only_what_the_reference_passes() -> None:
    ours = {"a": rt.parse_tap(TAP), "b": rt.parse_tap("not ok 1 - x\n1..1\n"),
            "c": rt.FileResult(error="timed out after 180 s")}
    ref = {"a": rt.parse_tap(TAP.replace("not ok 2", "ok 2")),
           "b": rt.parse_tap("not ok 1 - x\n1..1\n"), "c": rt.parse_tap("ok 1 - y\n1..1\n")}
    assert rt.regressions(ours, ref) == ["a #2 has expected working directory",
                                         "c: timed out after 180 s"]
