"""Escape 6 of issue 8: descriptors the runtime's caller had open must not reach the
container (runc closes all but stdio and --preserve-fds), in run, create + start and exec."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.support.bundles import Runtime
from tests.support.fds import is_file, leaking, listed_fds

pytestmark = pytest.mark.root

LIST = ["ls", "-l", "/proc/self/fd/"]


@pytest.fixture
def secret(tmp_path: object) -> str:
    path = os.path.join(str(tmp_path), "host-secret")
    with open(path, "w") as f:
        f.write("host secret\n")
    return path


def leaky(runtime: Runtime, secret: str, *args: str, preserved: int = 0
          ) -> subprocess.CompletedProcess:
    """barque-runtime ARGS with the leaked fds open (stdout, stderr captured in files)."""
    return runtime.cmd(*args, close_fds=False, preexec_fn=leaking(secret, preserved))


def assert_stdio_only(out: bytes, secret: str, extra: tuple[int, ...] = ()) -> None:
    fds = listed_fds(out.decode())
    assert sorted(fds) == [0, 1, 2, *extra], out.decode()
    for fd in (0, 1, 2):
        assert not is_file(fds[fd], secret)


def test_run_closes_inherited_fds(runtime: Runtime, secret: str) -> None:
    bundle = runtime.bundle(runtime.spec(LIST))
    proc = leaky(runtime, secret, "run", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert_stdio_only(proc.stdout, secret)


def test_run_preserve_fds_keeps_exactly_those(runtime: Runtime, secret: str) -> None:
    bundle = runtime.bundle(runtime.spec(["sh", "-c", "head -c 4 <&3; " + " ".join(LIST)]))
    proc = leaky(runtime, secret, "run", "--preserve-fds", "2", "--bundle", bundle,
                 runtime.new_id(), preserved=2)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"host")
    fds = listed_fds(proc.stdout.decode()[4:])
    assert sorted(fds) == [0, 1, 2, 3, 4], proc.stdout
    assert is_file(fds[3], secret) and is_file(fds[4], secret)


def test_create_start_closes_inherited_fds(runtime: Runtime, secret: str) -> None:
    cid = runtime.new_id()
    bundle = runtime.bundle(runtime.spec(["sh", "-c", " ".join(LIST) + " > /fds"]))
    proc = leaky(runtime, secret, "create", "--bundle", bundle, cid)
    assert proc.returncode == 0, proc.stderr
    proc = leaky(runtime, secret, "start", cid)
    assert proc.returncode == 0, proc.stderr
    out = os.path.join(bundle, "rootfs", "fds")
    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(out, "rb") as f:
        listing = f.read()
    # fd 1 is the /fds the shell redirected to; the init's stdout (runtime.cmd's file) is 1
    # no longer; anything else came from the caller.
    fds = listed_fds(listing.decode())
    assert sorted(fds) == [0, 1, 2], listing
    assert not any(is_file(t, secret) for t in fds.values())


def test_exec_closes_inherited_fds(runtime: Runtime, secret: str) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    proc = leaky(runtime, secret, "exec", cid, *LIST)
    assert proc.returncode == 0, proc.stderr
    assert_stdio_only(proc.stdout, secret)
    proc = leaky(runtime, secret, "exec", "--preserve-fds", "2", cid, *LIST, preserved=2)
    assert proc.returncode == 0, proc.stderr
    fds = listed_fds(proc.stdout.decode())
    assert sorted(fds) == [0, 1, 2, 3, 4], proc.stdout
    assert is_file(fds[3], secret) and is_file(fds[4], secret), proc.stdout


def test_runc_agrees(runtime: Runtime, secret: str) -> None:
    """The oracle: runc, given the same descriptors, shows the container only its stdio."""
    from tests.support.tools import require

    require("runc")
    bundle = runtime.bundle(runtime.spec(LIST))
    root = os.path.join(runtime.tmp, "runc-state")
    proc = subprocess.run(["runc", "--root", root, "run", "--bundle", bundle,
                           runtime.new_id()], capture_output=True, timeout=60,
                          close_fds=False, preexec_fn=leaking(secret))
    assert proc.returncode == 0, proc.stderr
    assert_stdio_only(proc.stdout, secret)


def test_run_passes_socket_activation_fds(runtime: Runtime, secret: str) -> None:
    """LISTEN_FDS meant for the runtime (LISTEN_PID its pid) go on at 3.., as with runc, then
    --preserve-fds; the rest stays closed."""
    bundle = runtime.bundle(runtime.spec(
        ["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; " + " ".join(LIST)]))
    proc = subprocess.run(
        ["sh", "-c", 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"', "sh", runtime.binary,
         "--root", runtime.state_root, "run", "--preserve-fds", "1", "--bundle", bundle,
         runtime.new_id()], capture_output=True, timeout=60, close_fds=False,
        preexec_fn=leaking(secret, preserved=2))
    assert proc.returncode == 0, proc.stderr
    first, _, listing = proc.stdout.decode().partition("\n")
    assert first == "1 1"
    fds = listed_fds(listing)
    assert sorted(fds) == [0, 1, 2, 3, 4], proc.stdout
    assert is_file(fds[3], secret) and is_file(fds[4], secret), proc.stdout
