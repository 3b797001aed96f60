"""`cp CONTAINER:PATH -` writes a tar to stdout (never a directory named `-`); `cp -
CONTAINER:DIR` reads one from stdin, DIR checked first as the docker CLI does."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cp_to_stdout_and_from_stdin(cleanup: Barque, tmp_path: str) -> None:
    b, cwd = cleanup, str(tmp_path)
    ok(b.run("run", "-d", "--name", "cs", "--network", "none", "busybox", "sleep", "300"))
    ok(b.run("exec", "cs", "sh", "-c", "echo data > /tmp/f; ln -s /tmp /lnk"))
    out = subprocess.run(b.argv("cp", "cs:/tmp/f", "-"), cwd=cwd, capture_output=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert os.listdir(cwd) == []  # no directory (or file) named "-"
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        [member] = tar.getmembers()
        assert member.name == "f"
        assert tar.extractfile(member).read() == b"data\n"  # type: ignore[union-attr]
    # In: into a directory, or through a symlink to one.
    for dest in ("cs:/tmp", "cs:/lnk"):
        result = subprocess.run(b.argv("cp", "-", dest), input=_tar("in", dest.encode()),
                                capture_output=True, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
        assert ok(b.run("exec", "cs", "cat", "/tmp/in")) == dest
    # Anything else is refused before reading stdin, in the docker CLI's words.
    for dest in ("cs:/tmp/f", "cs:/nonexist", "cs:/tmp/f/x", "nosuch:/tmp"):
        result = subprocess.run(b.argv("cp", "-", dest), input=_tar("x", b"x"),
                                capture_output=True, timeout=60)
        assert (result.returncode, result.stderr) == (
            1, f'destination "{dest}" must be a directory\n'.encode())
    assert ok(b.run("exec", "cs", "cat", "/tmp/f")) == "data\n"  # left as it was
