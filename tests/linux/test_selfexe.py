"""barque.linux.selfexe and barque-sealexec: an executable nobody can write, for real.

The runtime's own attack tests are tests/runtime/test_exe_overwrite.py; these check each way
of sealing (the detached read-only mount as root, the sealed memfd where that is refused)
against the kernel, on a copy of a small binary.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import pytest

from barque.linux import selfexe
from tests.conftest import runtime_binary
from tests.support.tools import require

# Root without CAP_SYS_ADMIN (the capability open_tree(2) needs): the interpreter lives under
# /root, which only root may enter.
NO_ADMIN = ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"]


@pytest.fixture
def program(tmp_path: os.PathLike) -> str:
    path = os.path.join(str(tmp_path), "true")
    shutil.copy2(shutil.which("true") or "/bin/true", path)
    os.chmod(os.path.dirname(path), 0o755)
    return path


def _refuses_writes(fd: int) -> int:
    try:
        os.close(os.open(f"/proc/self/fd/{fd}", os.O_WRONLY))
    except OSError as e:
        return e.errno
    return 0


@pytest.mark.root
def test_detached_readonly_mount(program: str) -> None:
    before = open(program, "rb").read()
    fd = selfexe.sealed_fd(program)
    try:
        assert os.fstatvfs(fd).f_flag & os.ST_RDONLY
        assert os.path.samestat(os.fstat(fd), os.stat(program))  # the file itself, no copy
        assert _refuses_writes(fd) == errno.EROFS
        assert selfexe.is_sealed(f"/proc/self/fd/{fd}")
        with open("/proc/self/mountinfo") as f:
            assert program not in f.read()
        assert subprocess.run([f"/proc/self/fd/{fd}"], pass_fds=[fd]).returncode == 0
    finally:
        os.close(fd)
    assert open(program, "rb").read() == before


def _without_sys_admin(code: str) -> subprocess.CompletedProcess:
    require("setpriv")
    return subprocess.run([*NO_ADMIN, sys.executable, "-c", code], capture_output=True,
                          text=True, env={"PYTHONPATH": os.getcwd()})


@pytest.mark.root
def test_sealed_memfd_where_mounting_is_refused(program: str) -> None:
    proc = _without_sys_admin(
        "import errno, os, fcntl\n"
        "from barque.linux import selfexe\n"
        f"fd = selfexe.sealed_fd({program!r})\n"
        "seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)\n"
        "assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL, seals\n"
        "assert os.readlink(f'/proc/self/fd/{fd}').startswith('/memfd:')\n"
        "assert selfexe.is_sealed(f'/proc/self/fd/{fd}')\n"
        "try:\n"
        "    os.write(os.open(f'/proc/self/fd/{fd}', os.O_WRONLY), b'x')\n"
        "except PermissionError:\n"
        "    print('refused')\n")
    assert proc.stdout == "refused\n", proc.stderr


def test_unsealed_interpreter_is_not_sealed() -> None:
    """pytest's interpreter, started plainly, is sealed only where its filesystem is read-only
    anyway (the cgroup v2 guest shares this machine's / read-only)."""
    read_only = bool(os.statvfs(sys.executable).f_flag & os.ST_RDONLY)
    assert selfexe.is_sealed() == read_only


@pytest.mark.root
@pytest.mark.parametrize("admin", [True, False], ids=["root", "no-sys-admin"])
def test_sealexec_helper(admin: bool) -> None:
    """barque-sealexec runs the interpreter with its real path as argv[0] (so its prefix is
    found) from a read-only mount as root, from a sealed memfd without CAP_SYS_ADMIN."""
    helper = os.path.join(os.path.dirname(runtime_binary()), "barque-sealexec")
    assert os.access(helper, os.X_OK), "barque-sealexec is not built (make -C monitor install)"
    code = ("import os, sys; from barque.linux import selfexe; "
            "print(sys.executable, selfexe.is_sealed(), os.readlink('/proc/self/exe'))")
    require("setpriv")
    proc = subprocess.run([*([] if admin else NO_ADMIN), helper, sys.executable, "-c", code],
                          capture_output=True, text=True, env={"PYTHONPATH": os.getcwd()})
    executable, sealed, exe = proc.stdout.split(maxsplit=2)
    assert (executable, sealed) == (sys.executable, "True"), proc.stderr
    assert exe.startswith("/memfd:") != admin
    bad = subprocess.run([helper, "/nonexistent"], capture_output=True, text=True)
    assert bad.returncode == 127 and "cannot seal /nonexistent" in bad.stderr
