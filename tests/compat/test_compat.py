"""The same command lines against the real Docker and against Barque: stdout, stderr and
exit code compared after normalisation (tests/compat/normalise.py). A known difference is in
differences.py, an xfail that fails once it is fixed (strict), so the table stays true."""

from __future__ import annotations

import difflib
import os
import shlex
import shutil
import subprocess

import pytest

from tests.compat.case import Case, fill
from tests.compat.cases import CASES
from tests.compat.conftest import Engines
from tests.compat.differences import DIFFERENCES
from tests.compat.engines import Engine, Result
from tests.compat.normalise import normalise

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _params() -> list[object]:
    params: list[object] = []
    for case in CASES:
        marks = []
        if case.id in DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=DIFFERENCES[case.id], strict=True))
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_same_as_docker(engines: Engines, case: Case) -> None:
    docker = _play(engines, engines.docker, case)
    assert docker is not None, f"the oracle's set-up failed: {case.setup}"
    barque = _play(engines, engines.barque, case)
    assert barque is not None, f"Barque's set-up failed: {case.setup}"
    if docker != barque:
        pytest.fail(_report(case, docker, barque))


def _play(engines: Engines, engine: Engine, case: Case) -> list[str] | None:
    """The case on one engine, from a clean state: its set-up (None if that fails), then the
    command and the checks, each as normalised stdout, stderr and exit code."""
    tmp = _host_dir(engines, case)
    subst = {"tmp": tmp, "if": engines.if_prefix, "cli": shlex.join(engine.prefix)}
    try:
        for line in case.setup:
            if _step(engine, case, line, subst).code != 0:
                return None
        out = [_show(engines, engine, case, _step(engine, case, case.cmd, subst, case.stdin))]
        for line in case.check:
            out.append(_show(engines, engine, case, _step(engine, case, line, subst)))
        return out
    finally:
        engine.reset(case.kinds())
        shutil.rmtree(tmp, ignore_errors=True)


def _step(engine: Engine, case: Case, line: str, subst: dict[str, str],
          stdin: str | None = None) -> Result:
    """A command line of the engine's CLI, or after "!" a host shell line where {cli} is the
    engine's CLI (for pipes: `cp C:PATH -` into tar)."""
    if not line.startswith("!"):
        return engine.run(case.argv(line, subst), stdin=stdin)
    proc = subprocess.run(["bash", "-c", fill(line[1:], subst)], capture_output=True, text=True,
                          timeout=60, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          env={**os.environ, **engine.env})
    return Result(proc.stdout, proc.stderr, proc.returncode)


def _host_dir(engines: Engines, case: Case) -> str:
    """The case's host directory, made afresh for each engine at the same path."""
    tmp = os.path.join(engines.tmp, case.id)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "d"))
    with open(os.path.join(tmp, "f"), "w") as f:
        f.write("A=data\n")
    with open(os.path.join(tmp, "d", "g"), "w") as f:
        f.write("g\n")
    return tmp


def _show(engines: Engines, engine: Engine, case: Case, result: Result) -> str:
    texts = []
    for text in (result.stdout, result.stderr):
        for path in engines.paths[engine.name]:
            text = text.replace(path, "<root>")
        texts.append(normalise(text, case.names, case.extra))
    if case.unordered:
        end = "\n" if texts[0].endswith("\n") else ""
        texts[0] = "\n".join(sorted(texts[0].splitlines())) + end
    return f"stdout:\n{texts[0]}\nstderr:\n{texts[1]}\nexit code: {result.code}"


def _report(case: Case, docker: list[str], barque: list[str]) -> str:
    lines = [f"{case.cmd!r} differs from Docker (- docker, + barque):"]
    for d, b in zip(docker, barque, strict=True):
        lines += difflib.unified_diff(d.splitlines(), b.splitlines(), "docker", "barque",
                                      lineterm="", n=1)
    return "\n".join(lines)
