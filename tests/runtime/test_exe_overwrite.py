"""CVE-2019-5736 class: a container must never reach the runtime's own executable.

The runtime is a Python interpreter until the execve of the container's process. A container
process that opens /proc/PID/exe of a joining runtime, or makes the kernel re-execute the
interpreter inside the container with a `#!/proc/self/exe` script, then keeps trying to write
through it. The target is a private copy of the interpreter (tests/support/exe_attack.py); the
defences (non-dumpable before joining, a sealed, read-only executable) must leave it intact.
"""

from __future__ import annotations

import os

import pytest

from tests.runtime.test_lifecycle import wait_status
from tests.support import exe_attack
from tests.support.bundles import Runtime

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def interpreter(tmp_path: os.PathLike) -> exe_attack.Interpreter:
    return exe_attack.interpreter_copy(os.path.join(str(tmp_path), "venv"))


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> exe_attack.Tools:
    return exe_attack.Tools(str(tmp_path_factory.mktemp("exe-attack")))


def _use(runtime: Runtime, interpreter: exe_attack.Interpreter) -> Runtime:
    runtime.binary = interpreter.runtime
    return runtime


def _log(bundle: str) -> str:
    return exe_attack.read_file(os.path.join(bundle, "rootfs", exe_attack.LOG.lstrip("/")))


def test_exec_cannot_reach_the_runtime(runtime: Runtime, interpreter: exe_attack.Interpreter,
                                       tools: exe_attack.Tools) -> None:
    """The container's process spins over /proc while the runtime execs into it, again and
    again: no joining process may be opened (non-dumpable), let alone written."""
    rt = _use(runtime, interpreter)
    marker = f"{rt.prefix}-exec-scan"
    spec = rt.spec(["/attack", "scan", "5", exe_attack.LOG, marker])
    bundle = rt.bundle(spec)
    exe_attack.add_attack(os.path.join(bundle, "rootfs"), tools)
    cid = rt.new_id()
    rt.cmd("run", "-d", "--bundle", bundle, cid, check=True)
    for _ in range(20):
        if rt.state(cid)["status"] != "running":
            break
        rt.cmd("exec", cid, "true")
    log = exe_attack.wait_for_log(lambda: _log(bundle))
    interpreter.assert_intact(marker)
    assert "WROTE" not in log
    assert "done caught=0" in log, f"a joining process was reachable: {log}"


@pytest.mark.parametrize("sealexec", [True, False], ids=["helper", "no-helper"])
def test_proc_self_exe_script_in_exec(runtime: Runtime, tmp_path: os.PathLike,
                                      tools: exe_attack.Tools, sealexec: bool) -> None:
    """`exec` of a `#!/proc/self/exe` script re-executes the runtime's interpreter inside the
    container; a hostile libpython there holds it open and writes: the file it holds must be
    one nobody can write. Without barque-sealexec the runtime seals itself."""
    interpreter = exe_attack.interpreter_copy(os.path.join(str(tmp_path), "venv"), sealexec)
    rt = _use(runtime, interpreter)
    marker = f"{rt.prefix}-exec-shebang"
    bundle = rt.bundle(rt.spec(["sleep", "60"]))
    script = exe_attack.make_hostile(os.path.join(bundle, "rootfs"), interpreter,
                                     tools.hostile_lib(3, marker, background=True), tools)
    cid = rt.new_id()
    rt.cmd("run", "-d", "--bundle", bundle, cid, check=True)
    rt.cmd("exec", cid, script)
    log = exe_attack.wait_for_log(lambda: _log(bundle))
    interpreter.assert_intact(marker)
    assert "caught self" in log, f"the interpreter was not re-executed: {log}"
    assert "WROTE" not in log and "write refused" in log


def test_proc_self_exe_script_as_the_container_command(
        runtime: Runtime, interpreter: exe_attack.Interpreter, tools: exe_attack.Tools) -> None:
    """The same through the init of `run`: the container's own command is the script."""
    rt = _use(runtime, interpreter)
    marker = f"{rt.prefix}-init-shebang"
    bundle = rt.bundle(rt.spec(["/evil.sh"]))
    exe_attack.make_hostile(os.path.join(bundle, "rootfs"), interpreter,
                            tools.hostile_lib(3, marker, background=False), tools)
    cid = rt.new_id()
    rt.cmd("run", "-d", "--bundle", bundle, cid, check=True)
    log = exe_attack.wait_for_log(lambda: _log(bundle))
    interpreter.assert_intact(marker)
    assert "caught self" in log, f"the interpreter was not re-executed: {log}"
    assert "WROTE" not in log and "write refused" in log


@pytest.mark.parametrize("sealexec", [True, False], ids=["helper", "no-helper"])
def test_init_runs_sealed_and_leaves_no_mount(runtime: Runtime, tmp_path: os.PathLike,
                                              sealexec: bool) -> None:
    """A created container's init (the interpreter, waiting for `start`) runs from a file
    that cannot be written, and the read-only copy is no mount anyone can see."""
    interpreter = exe_attack.interpreter_copy(os.path.join(str(tmp_path), "venv"), sealexec)
    rt = _use(runtime, interpreter)
    cid = rt.new_id()
    rt.cmd("create", "--bundle", rt.bundle(rt.spec(["true"])), cid, check=True)
    pid = rt.state(cid)["pid"]
    exe = f"/proc/{pid}/exe"
    assert os.statvfs(exe).f_flag & os.ST_RDONLY or _sealed_memfd(exe)
    with pytest.raises(OSError):
        os.open(exe, os.O_WRONLY)
    assert os.path.samestat(os.stat(exe), os.stat(interpreter.python)) or _sealed_memfd(exe)
    for table in ("/proc/self/mountinfo", f"/proc/{pid}/mountinfo"):
        with open(table) as f:
            leaked = [line for line in f if interpreter.venv in line]
        assert not leaked, f"{table}: {leaked}"
    rt.cmd("start", cid, check=True)
    assert wait_status(rt, cid, "stopped")["status"] == "stopped"


def _sealed_memfd(path: str) -> bool:
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE)
    except OSError:
        return False
    finally:
        os.close(fd)
