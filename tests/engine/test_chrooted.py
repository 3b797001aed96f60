"""The confined child `cp` works in: its root, its capabilities, and no imports from the
container's files."""

from __future__ import annotations

import os

import pytest

from barque.engine import chrooted
from barque.linux import capabilities as caps

pytestmark = [pytest.mark.root]


def _run(root: str, work) -> list[dict]:  # type: ignore[no-untyped-def]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        pid, data, status_fd = chrooted.spawn(fd, work, chrooted.READ_CAPS)
    finally:
        os.close(fd)
    os.close(data)
    status = chrooted.Status(status_fd)
    seen = []
    try:
        while (line := status.next()) is not None:
            seen.append(line)
    finally:
        status.close()
        os.waitpid(pid, 0)
    return seen


def test_the_child_sees_only_the_root_with_one_capability(tmp_path: str) -> None:
    root = str(tmp_path)
    open(os.path.join(root, "inside"), "w").close()

    def work(data: int, status: int) -> None:
        effective, permitted, inheritable = caps.capget()
        chrooted.report(status, {"ls": sorted(os.listdir("/")), "eff": effective,
                                 "perm": permitted, "inh": inheritable})

    [seen] = _run(root, work)
    assert seen["ls"] == ["inside"]
    want = caps.mask([caps.NUMBERS["CAP_DAC_READ_SEARCH"]])
    assert (seen["eff"], seen["perm"], seen["inh"]) == (want, want, 0)


def test_the_child_imports_nothing_from_the_root(tmp_path: str) -> None:
    # A module planted where a path finder would look: the child must not run it.
    root = str(tmp_path)
    marker = os.path.join(root, "ran")
    for base in ("", "usr/lib/python3", "usr/local/lib/python3"):
        os.makedirs(os.path.join(root, base), exist_ok=True)
        with open(os.path.join(root, base, "planted_module.py"), "w") as f:
            f.write("open('/ran', 'w').close()\n")

    def work(data: int, status: int) -> None:
        import sys

        sys.path[:] = ["/", "/usr/lib/python3", "/usr/local/lib/python3"]
        __import__("planted_module")

    with pytest.raises(chrooted.ChildError) as caught:
        _run(root, work)
    assert caught.value.kind == "ModuleNotFoundError"
    assert not os.path.exists(marker)
