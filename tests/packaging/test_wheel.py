"""A real package: `python -m build` makes an sdist and, from it, a wheel holding barque-monitor,
barque-sealexec and barque-runtime-fast compiled by the build backend (setup.py); a fresh venv
with only that wheel installed runs a container, with no scripts/install, no make and no
checkout on its PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator

import pytest

from tests.cli.conftest import new_barque, remove_everything
from tests.support.marks import needs_busybox
from tests.support.tools import require

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = ("barque", "barque-runtime", "barque-monitor", "barque-sealexec", "barque-runtime-fast")

pytestmark = [pytest.mark.slow, pytest.mark.root]


def _require_build() -> None:
    import importlib.util

    if importlib.util.find_spec("build") is None:
        message = "python -m build is not installed (./scripts/install installs it: .[test])"
        if os.environ.get("CI"):
            pytest.fail(f"CI must not skip: {message}")
        pytest.skip(message)


def _tracked_copy(dest: str) -> None:
    """The files git tracks, nothing a build or a venv left in the checkout."""
    listed = subprocess.run(["git", "-C", REPO, "ls-files", "-z"], capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


@pytest.fixture(scope="module")
def wheel(run_prefix: str) -> Iterator[str]:
    _require_build()
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-wheel-")
    try:
        src = os.path.join(work, "src")
        _tracked_copy(src)
        # Build isolation takes setuptools from pip's index, as scripts/install's pip does.
        proc = subprocess.run([sys.executable, "-m", "build", "-o", os.path.join(work, "dist"),
                               src], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        [name] = [n for n in os.listdir(os.path.join(work, "dist")) if n.endswith(".whl")]
        yield os.path.join(work, "dist", name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_wheel_is_platform_specific_and_ships_the_programs_and_data(wheel: str) -> None:
    assert os.path.basename(wheel).startswith("barque-0.1.0-py3-none-linux_")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        scripts = {n.rsplit("/", 1)[1]: z.getinfo(n) for n in names if "/scripts/" in n}
        assert set(scripts) == set(PROGRAMS)
        for prog in ("barque-monitor", "barque-sealexec", "barque-runtime-fast"):
            assert z.read(scripts[prog])[:4] == b"\x7fELF"
            assert scripts[prog].external_attr >> 16 & 0o111, f"{prog} is not executable"
        # Every file of the package that is not Python is package data (the seccomp profile).
        listed = subprocess.run(["git", "-C", REPO, "ls-files", "barque"], capture_output=True,
                                text=True, check=True).stdout.split()
        data = [f for f in listed if not f.endswith(".py")]
        assert "barque/engine/profiles/seccomp-default.json" in data
        assert [f for f in data if not any(n.endswith(f"/{f}") or n == f for n in names)] == []


def _imported_from(barque: str, env: dict[str, str], work: str) -> str:
    """Where the CLI's launcher imported barque from (the system's site-packages may hold an
    editable Barque of a checkout, which a venv with --system-site-packages also sees)."""
    require("strace")
    trace = os.path.join(work, "trace")
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", trace, barque,
                    "--version"], check=True, env=env, capture_output=True, timeout=60)
    with open(trace) as f:
        paths = {line.split('"')[1] for line in f if line.count('"') >= 2}
    dirs = {p.split("/barque/cli/")[0] for p in paths if "/barque/cli/" in p}
    assert len(dirs) == 1, dirs
    return dirs.pop()


@needs_busybox
def test_fresh_venv_with_the_wheel_runs_a_container(wheel: str, run_prefix: str,
                                                    if_prefix: str) -> None:
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-venv-")
    b = new_barque(os.path.join(work, "root"), os.path.join(work, "run"), if_prefix)
    try:
        venv = os.path.join(work, "venv")
        # The dependencies come from the system's site-packages: offline, no index.
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                       check=True, timeout=120)
        bindir = os.path.join(venv, "bin")
        proc = subprocess.run([os.path.join(bindir, "python"), "-m", "pip", "install", "-q",
                               "--no-index", "--disable-pip-version-check", wheel],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for prog in PROGRAMS:
            assert os.access(os.path.join(bindir, prog), os.X_OK), prog
        # Nothing of a checkout's or the system's within reach: no other barque-monitor on
        # PATH (the engine finds the one beside the venv's python).
        env = {"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        proc = subprocess.run([os.path.join(bindir, "barque"), "--root", b.root, "--runroot",
                               b.runroot, "run", "--rm", "busybox", "echo", "ok"],
                              capture_output=True, text=True, env=env, timeout=120,
                              stdin=subprocess.DEVNULL)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")
        assert _imported_from(os.path.join(bindir, "barque"), env, work) == os.path.join(
            venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
        # pipx's layout: the launchers linked into a directory on PATH, the venv not on it.
        links = os.path.join(work, "links")
        os.mkdir(links)
        for prog in ("barque", "barque-runtime"):
            os.symlink(os.path.join(bindir, prog), os.path.join(links, prog))
        env["PATH"] = f"{links}:/usr/sbin:/usr/bin:/sbin:/bin"
        proc = subprocess.run(["barque", "--root", b.root, "--runroot", b.runroot, "run",
                               "--rm", "busybox", "echo", "linked"], capture_output=True,
                              text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "linked\n", "")
    finally:
        remove_everything(b, work)
        shutil.rmtree(work, ignore_errors=True)
