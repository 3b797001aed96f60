"""Fixtures shared by the whole suite: a busybox rootfs, OCI bundles, the runtime binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.support.bundles import Runtime, make_busybox_rootfs

RUN_PREFIX = f"bqt{os.getpid()}{uuid.uuid4().hex[:4]}"
# Interface names have at most 15 characters: links, bridges and nft tables a run makes carry
# this shorter mark instead (a letter no Barque default name starts with, then 5 hex digits).
IF_PREFIX = f"q{uuid.uuid4().hex[:5]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def run_prefix() -> str:
    return RUN_PREFIX


@pytest.fixture(scope="session")
def if_prefix() -> str:
    """A run's mark for interface and nft table names (RUN_PREFIX is too long for them)."""
    return IF_PREFIX


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not shutil.which("busybox") and not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("rootfs") / "rootfs"))


@pytest.fixture
def runtime(tmp_path: os.PathLike, busybox_rootfs: str) -> Iterator[Runtime]:
    rt = Runtime(str(tmp_path), busybox_rootfs, RUN_PREFIX)
    yield rt
    rt.cleanup()


def runtime_binary() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "barque-runtime")
    if os.path.exists(path):
        return path
    found = shutil.which("barque-runtime")
    assert found, "barque-runtime is not installed: pip install -e ."
    return found


@pytest.fixture(scope="session")
def runtime_bin() -> str:
    return runtime_binary()


_PARENTS = ("barque",)  # cgroup parents the engine creates; removed if this run made them
_existing_parents: set[str] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    import glob

    for name in _PARENTS:
        _existing_parents.update(glob.glob(f"/sys/fs/cgroup/{name}") +
                                 glob.glob(f"/sys/fs/cgroup/*/{name}"))


def _cgroup_dirs(pattern: str) -> list[str]:
    import glob

    return [p for p in glob.glob(f"/sys/fs/cgroup/{pattern}") +
            glob.glob(f"/sys/fs/cgroup/*/{pattern}") if os.path.isdir(p)]


def _remove_parents() -> None:
    """Empty parent cgroups this run created (rmdir refuses one that is in use)."""
    for path in _cgroup_dirs(RUN_PREFIX + "*") + [
            p for name in _PARENTS for p in _cgroup_dirs(name) if p not in _existing_parents]:
        try:
            os.rmdir(path)
        except OSError:
            pass


def _nft_tables() -> list[str]:
    import shutil

    if not shutil.which("nft"):
        return []
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table")]


_EXISTING_TABLES = set(_nft_tables())  # a root without daemon.json names its own "barque_…"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything it made is still mounted, running or in a cgroup."""
    import glob

    _remove_parents()
    leaks = []
    base = str(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    with open("/proc/self/mountinfo") as f:
        leaks += [f"mount {line.split()[4]}" for line in f
                  if RUN_PREFIX in line or base in line.split()[4]]
    leaks += [f"cgroup {p}" for p in _cgroup_dirs(f"*{RUN_PREFIX}*") +
              _cgroup_dirs(f"*/*{RUN_PREFIX}*")]
    leaks += [f"netns {n}" for n in glob.glob(f"/var/run/netns/{RUN_PREFIX}*")]
    leaks += [f"link {n}" for n in os.listdir("/sys/class/net") if IF_PREFIX in n]
    leaks += [f"nft table {t}" for t in _nft_tables()
              if IF_PREFIX in t or "barque" in t and t not in _EXISTING_TABLES]
    import tempfile

    leaks += [f"directory {d}" for d in glob.glob(os.path.join(tempfile.gettempdir(),
                                                                f"{RUN_PREFIX}*"))]
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    leaks += [f"process {line.strip()}" for line in out.splitlines()
              if RUN_PREFIX in line and "pytest" not in line]
    if leaks:
        sys.stderr.write(f"\nLEAKED by this test run ({RUN_PREFIX}):\n  " + "\n  ".join(leaks)
                         + "\n")
        session.exitstatus = 1


@pytest.fixture(scope="module")
def escape_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory holding the static escape program (tests/support/escape.c), for escape
    tests to bind-mount read-only at /x."""
    from tests.support import escape

    path = tmp_path_factory.mktemp("escape")
    escape.build(str(path))
    return str(path)


@pytest.fixture
def host_dir(run_prefix: str) -> Iterator[str]:
    """A host directory with a marker file a container must never reach."""
    import tempfile

    path = tempfile.mkdtemp(prefix=f"{run_prefix}-escape-")
    with open(os.path.join(path, "marker"), "w") as f:
        f.write("host secret\n")
    yield path
    shutil.rmtree(path, ignore_errors=True)
