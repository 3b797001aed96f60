"""barque.network.netns: persistent network namespaces on real kernel objects."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from barque.network import netns
from tests.support.netns import ip, mounts_at, netns_dir

pytestmark = pytest.mark.root


@pytest.fixture
def nsdir(run_prefix: str) -> Iterator[str]:
    with netns_dir(run_prefix) as path:
        yield path


def _own_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def _peer_group(path: str) -> str | None:
    """The shared:N tag of the mount `path` is on (the last mount covering it)."""
    real, best, tag = os.path.realpath(path), "", None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            if real == point or real.startswith(point.rstrip("/") + "/"):
                if len(point) >= len(best):
                    best = point
                    tag = next((x for x in fields[6:fields.index("-")]
                                if x.startswith("shared:")), None)
    return tag


def _ino(path: str) -> int:
    return os.stat(path).st_ino


def test_create_makes_a_namespace_with_lo_up(nsdir: str) -> None:
    path = os.path.join(nsdir, "a")
    before = _own_netns()
    netns.create(path)
    assert _own_netns() == before
    assert _ino(path) != os.stat("/proc/self/ns/net").st_ino
    links = ip("link", "show", netns=path)
    assert [link["ifname"] for link in links] == ["lo"]
    assert "UP" in links[0]["flags"]
    # Its directory became a mount of its own, once, in a peer group of its own.
    assert mounts_at(nsdir) == 1
    group = _peer_group(nsdir)
    assert group is not None and group != _peer_group(os.path.dirname(nsdir))
    netns.create(os.path.join(nsdir, "b"))
    assert mounts_at(nsdir) == 1
    assert _ino(os.path.join(nsdir, "b")) != _ino(path)


def test_create_refuses_an_existing_path_and_keeps_it(nsdir: str) -> None:
    path = os.path.join(nsdir, "a")
    with open(path, "w") as f:
        f.write("mine")
    with pytest.raises(FileExistsError):
        netns.create(path)
    with open(path) as f:
        assert f.read() == "mine"
    assert mounts_at(path) == 0


def test_failed_create_leaves_nothing(nsdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bind mount of the namespace fails (our wrapper refuses): no file, no mount, and the
    # thread is back in its own namespace.
    real_mount = netns.mnt.mount

    def refuse_ns_bind(source: str | None, target: str, *args: object) -> None:
        if source == "/proc/thread-self/ns/net":
            raise OSError(1, "refused by the test")
        real_mount(source, target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(netns.mnt, "mount", refuse_ns_bind)
    before = _own_netns()
    path = os.path.join(nsdir, "a")
    with pytest.raises(OSError, match="refused by the test"):
        netns.create(path)
    assert _own_netns() == before
    assert not os.path.exists(path)
    assert mounts_at(path) == 0


def test_remove_unmounts_and_deletes_and_is_idempotent(nsdir: str) -> None:
    path = os.path.join(nsdir, "a")
    netns.create(path)
    netns.remove(path)
    assert not os.path.exists(path)
    assert mounts_at(path) == 0
    netns.remove(path)  # missing: fine
    # A file that is not (or no longer) a mount point goes too.
    open(path, "w").close()
    netns.remove(path)
    assert not os.path.exists(path)


def test_entered_switches_the_calling_thread_only(nsdir: str) -> None:
    path = os.path.join(nsdir, "a")
    netns.create(path)
    before = _own_netns()
    seen: list[str] = []
    go = threading.Event()

    def look() -> None:
        go.wait(10)
        seen.append(_own_netns())

    t = threading.Thread(target=look)  # started outside: a thread inherits its creator's
    t.start()
    with netns.entered(path):
        assert os.stat("/proc/thread-self/ns/net").st_ino == _ino(path)
        go.set()
        t.join()
    assert seen == [before]  # other threads stay where they are
    assert _own_netns() == before


def test_entered_comes_back_when_the_block_raises(nsdir: str) -> None:
    path = os.path.join(nsdir, "a")
    netns.create(path)
    before = _own_netns()
    with pytest.raises(RuntimeError):
        with netns.entered(path):
            raise RuntimeError("boom")
    assert _own_netns() == before
    with pytest.raises(FileNotFoundError):
        with netns.entered(os.path.join(nsdir, "missing")):
            pass
    assert _own_netns() == before


def test_namespaces_made_in_parallel_share_one_directory_mount(nsdir: str) -> None:
    code = ("import sys; from barque.network import netns; sys.stdin.read(); "
            "netns.create(sys.argv[1])")
    read, write = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", code, os.path.join(nsdir, f"n{i}")],
                              stdin=read) for i in range(4)]
    os.close(read)
    os.close(write)  # all start at once
    assert [p.wait(timeout=30) for p in procs] == [0] * 4
    assert mounts_at(nsdir) == 1
    assert len({_ino(os.path.join(nsdir, f"n{i}")) for i in range(4)}) == 4
