"""barque.linux.seccomp against the real kernel.

A loaded filter can never be removed from a process, so every test that loads one forks: the
child loads the filter, probes syscalls, and reports through a pipe (or dies of SIGSYS); the
parent asserts. Children set no_new_privs first unless a test says otherwise, so that most
tests run without root.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from barque.engine.seccomp_profile import DEFAULT_PROFILE
from barque.engine.spec_security import DOCKER_CAPS
from barque.linux import seccomp
from barque.linux.seccomp import SeccompError, build_filter, load_filter

libc = ctypes.CDLL(None, use_errno=True)
libscmp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
libscmp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWUTS = 0x04000000
SOCK_NONBLOCK = 0o4000
# Errnos the kernel would not produce for these probes on its own, so they prove the filter
# answered.
MARK = errno.EXDEV
MARK2 = errno.ELOOP

MACHINE = os.uname().machine
NATIVE_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}.get(MACHINE)
# The package's copy (package data), which every container gets: Docker's, unchanged.
DOCKER_PROFILE = Path(DEFAULT_PROFILE)

root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# Python itself needs these once the filter is in place, to report and exit.
PYTHON_MINIMUM = [
    "write",
    "exit_group",
    "exit",
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "madvise",
    "rt_sigreturn",
    "rt_sigprocmask",
    "rt_sigaction",
    "futex",
    "close",
    "getpid",
]


# --- helpers ---------------------------------------------------------------------------------


def nr(name: str) -> int:
    number = int(libscmp.seccomp_syscall_resolve_name(name.encode()))
    assert number >= 0, name
    return number


def sys_errno(syscall: str | int, *args: int | bytes | None) -> int:
    """Make a raw syscall: 0 if it succeeded, else its errno."""
    number = nr(syscall) if isinstance(syscall, str) else syscall
    cargs = [a if isinstance(a, bytes) or a is None else ctypes.c_ulong(a) for a in args]
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(number), *cargs)
    return ctypes.get_errno() if rc == -1 else 0


def oserror_errno(func: Callable[[], object]) -> int:
    try:
        func()
    except OSError as exc:
        return exc.errno or -1
    return 0


def seccomp_mode() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Seccomp:"):
            return int(line.split()[1])
    raise AssertionError("no Seccomp line in /proc/self/status")


def _child(
    w: int, profile: dict[str, Any] | None, probe: Callable[[], Any], nnp: bool, exec_: list[str]
) -> None:
    """Body of the forked child; never returns."""
    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(20)  # a wedged child must not hang the suite
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # SIGSYS would dump core otherwise
        if nnp:
            assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        if profile is not None:
            load_filter(profile)
        report: dict[str, Any] = {"ok": probe()}
    except BaseException as exc:  # report everything: the parent asserts
        report = {"error": f"{type(exc).__name__}: {exc}"}
    os.write(w, json.dumps(report).encode())
    os.close(w)
    if exec_ and "ok" in report:
        os.execv(exec_[0], exec_)
    os._exit(0)


def run_child(
    profile: dict[str, Any] | None,
    probe: Callable[[], Any] = lambda: None,
    *,
    nnp: bool = True,
    exec_: list[str] | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """Fork; the child loads `profile`, runs `probe`, then execs `exec_` if given.

    Returns the child's wait status and {"ok": probe's result} or {"error": ...}; None when
    the child died before reporting.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            _child(w, profile, probe, nnp, exec_ or [])
        finally:
            os._exit(99)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    return status, (json.loads(data) if data else None)


def probe_ok(profile: dict[str, Any] | None, probe: Callable[[], Any], **kw: Any) -> Any:
    status, report = run_child(profile, probe, **kw)
    assert report is not None and "ok" in report, (report, status)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return report["ok"]


def allow_default(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules), **extra}


def deny_default(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    allow = {"names": PYTHON_MINIMUM, "action": "SCMP_ACT_ALLOW"}
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [allow, *rules], **extra}


def socket_errno(family: int, type_: int) -> int:
    err = sys_errno("socket", family, type_, 0)
    return err


# --- rules and actions -----------------------------------------------------------------------


def test_errno_rule_defaults_to_eperm(tmp_path: Path) -> None:
    target = tmp_path / "d"
    profile = allow_default({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    mkdir_err, pid = probe_ok(profile, lambda: (oserror_errno(lambda: target.mkdir()), os.getpid()))
    assert mkdir_err == errno.EPERM
    assert pid > 0
    assert not target.exists()


def test_errno_ret_is_honoured(tmp_path: Path) -> None:
    profile = allow_default(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}
    )
    assert probe_ok(profile, lambda: oserror_errno(lambda: (tmp_path / "d").mkdir())) == (
        errno.ENOSYS
    )


def test_default_errno_with_default_errno_ret() -> None:
    profile = deny_default(defaultErrnoRet=MARK)
    got = probe_ok(profile, lambda: (sys_errno("getppid"), sys_errno("getpid")))
    assert got == [MARK, 0]


def test_default_errno_without_errno_ret_is_eperm() -> None:
    assert probe_ok(deny_default(), lambda: sys_errno("getppid")) == errno.EPERM


@pytest.mark.parametrize(
    ("action", "expected"),
    [("SCMP_ACT_TRACE", errno.ENOSYS), ("SCMP_ACT_LOG", 0), ("SCMP_ACT_ALLOW", 0)],
)
def test_non_fatal_actions(action: str, expected: int) -> None:
    # Without a tracer attached the kernel fails a traced syscall with ENOSYS.
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": MARK,
        "syscalls": [
            {"names": PYTHON_MINIMUM, "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": action},
        ],
    }
    assert probe_ok(profile, lambda: sys_errno("getppid")) == expected


@pytest.mark.parametrize(
    "action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"]
)
def test_fatal_actions_kill_with_sigsys(action: str) -> None:
    profile = allow_default({"names": ["getppid"], "action": action})
    status, report = run_child(profile, lambda: sys_errno("getppid"))
    assert report is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_unknown_syscall_names_are_skipped(tmp_path: Path) -> None:
    profile = allow_default(
        {"names": ["no_such_syscall_barque", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["another_unknown_one"], "action": "SCMP_ACT_KILL_PROCESS"},
    )
    assert probe_ok(profile, lambda: oserror_errno(lambda: (tmp_path / "d").mkdir())) == (
        errno.EPERM
    )


def test_rules_matching_the_default_action_are_skipped() -> None:
    # libseccomp itself refuses such rules (EACCES); runc drops them, and so do we.
    profile = deny_default(
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK},
    )
    assert probe_ok(profile, lambda: (sys_errno("getppid"), sys_errno("getuid"))) == [
        errno.EPERM,
        MARK,
    ]


# --- argument comparisons --------------------------------------------------------------------


def test_arg_equal_both_ways() -> None:
    profile = allow_default(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": MARK,
            "args": [{"index": 0, "value": socket.AF_INET6, "op": "SCMP_CMP_EQ"}],
        }
    )
    got = probe_ok(
        profile,
        lambda: (
            socket_errno(socket.AF_INET6, socket.SOCK_STREAM),
            socket_errno(socket.AF_UNIX, socket.SOCK_STREAM),
        ),
    )
    assert got == [MARK, 0]


def test_personality_only_with_zero() -> None:
    # Allowed only with arg0 == 0, written as a deny on "not equal" under default allow.
    profile = allow_default(
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}],
        }
    )
    got = probe_ok(
        profile, lambda: (sys_errno("personality", 0xFFFFFFFF), sys_errno("personality", 0))
    )
    assert got == [errno.EPERM, 0]


def test_masked_eq_uses_value_as_mask_and_value_two_as_result() -> None:
    profile = allow_default(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": MARK,
            "args": [
                {
                    # Non-blocking sockets without close-on-exec are denied.
                    "index": 1,
                    "value": SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                    "valueTwo": SOCK_NONBLOCK,
                    "op": "SCMP_CMP_MASKED_EQ",
                }
            ],
        }
    )
    stream = socket.SOCK_STREAM
    got = probe_ok(
        profile,
        lambda: (
            socket_errno(socket.AF_UNIX, stream | SOCK_NONBLOCK),
            socket_errno(socket.AF_UNIX, socket.SOCK_DGRAM | SOCK_NONBLOCK),
            socket_errno(socket.AF_UNIX, stream | SOCK_NONBLOCK | socket.SOCK_CLOEXEC),
            socket_errno(socket.AF_UNIX, stream),
            socket_errno(socket.AF_UNIX, stream | socket.SOCK_CLOEXEC),
        ),
    )
    assert got == [MARK, MARK, 0, 0, 0]


@pytest.mark.parametrize(
    ("op", "value", "denied", "allowed"),
    [
        ("SCMP_CMP_LT", socket.AF_INET, [socket.AF_UNIX], [socket.AF_INET, socket.AF_INET6]),
        ("SCMP_CMP_LE", socket.AF_INET, [socket.AF_UNIX, socket.AF_INET], [socket.AF_INET6]),
        ("SCMP_CMP_GE", socket.AF_INET, [socket.AF_INET, socket.AF_INET6], [socket.AF_UNIX]),
        ("SCMP_CMP_GT", socket.AF_INET, [socket.AF_INET6], [socket.AF_UNIX, socket.AF_INET]),
    ],
)
def test_ordering_operators(op: str, value: int, denied: list[int], allowed: list[int]) -> None:
    profile = allow_default(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": MARK,
            "args": [{"index": 0, "value": value, "op": op}],
        }
    )
    families = denied + allowed
    got = probe_ok(profile, lambda: [socket_errno(f, socket.SOCK_DGRAM) for f in families])
    assert got[: len(denied)] == [MARK] * len(denied)
    assert MARK not in got[len(denied) :]


def test_two_comparisons_on_one_argument_are_separate_rules() -> None:
    # libseccomp refuses them in one rule; runc adds one rule per comparison, so either
    # comparison matching is enough.
    profile = allow_default(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": MARK,
            "args": [
                {"index": 0, "value": socket.AF_INET6, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
            ],
        }
    )
    got = probe_ok(
        profile,
        lambda: [
            socket_errno(f, socket.SOCK_DGRAM)
            for f in (socket.AF_INET6, socket.AF_INET, socket.AF_UNIX)
        ],
    )
    assert got == [MARK, MARK, 0]


def test_comparisons_on_different_arguments_must_all_match() -> None:
    profile = allow_default(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": MARK,
            "args": [
                {"index": 0, "value": socket.AF_UNIX, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": socket.SOCK_DGRAM, "op": "SCMP_CMP_EQ"},
            ],
        }
    )
    got = probe_ok(
        profile,
        lambda: (
            socket_errno(socket.AF_UNIX, socket.SOCK_DGRAM),
            socket_errno(socket.AF_UNIX, socket.SOCK_STREAM),
            socket_errno(socket.AF_INET, socket.SOCK_DGRAM),
        ),
    )
    assert got == [MARK, 0, 0]


# --- the -ENOSYS stub ------------------------------------------------------------------------

NO_SUCH_SYSCALL = 1000  # above every syscall number the kernel has


@pytest.mark.skipif(NATIVE_ARCH is None, reason="unknown native architecture")
def test_syscalls_newer_than_the_profile_get_enosys() -> None:
    profile = deny_default(architectures=[NATIVE_ARCH])
    got = probe_ok(profile, lambda: (sys_errno(NO_SUCH_SYSCALL), sys_errno("getppid")))
    assert got == [errno.ENOSYS, errno.EPERM]


def test_no_enosys_stub_without_architectures() -> None:
    # As runc: the stub covers the listed architectures only.
    assert probe_ok(deny_default(), lambda: sys_errno(NO_SUCH_SYSCALL)) == errno.EPERM


@pytest.mark.skipif(NATIVE_ARCH is None, reason="unknown native architecture")
def test_no_enosys_stub_under_a_permissive_default() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_LOG",
        "architectures": [NATIVE_ARCH],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}],
    }
    # The kernel's own answer for a syscall it lacks.
    assert probe_ok(profile, lambda: sys_errno(NO_SUCH_SYSCALL)) == errno.ENOSYS


def run_bpf(program: bytes, nr: int, arch: int) -> int:
    """Run a seccomp program on (nr, arch) like the kernel does; the subset libseccomp emits
    for argument-free rules is enough here."""
    data = nr.to_bytes(4, "little", signed=True) + arch.to_bytes(4, "little") + bytes(56)
    insns = [
        (
            int.from_bytes(program[i : i + 2], "little"),
            program[i + 2],
            program[i + 3],
            int.from_bytes(program[i + 4 : i + 8], "little"),
        )
        for i in range(0, len(program), 8)
    ]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:  # ld [k]
            acc = int.from_bytes(data[k : k + 4], "little")
        elif code == 0x06:  # ret k
            return k
        elif code == 0x05:  # ja k
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset
            hit = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if hit else jf
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")


def test_enosys_stub_covers_each_x86_abi() -> None:
    token = {"X86_64": 0xC000003E, "X86": 0x40000003, "X32": 0x4000003E}
    audit_x86_64, audit_i386 = 0xC000003E, 0x40000003
    libscmp.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]

    def sysno(abi: str, name: str) -> int:
        return int(libscmp.seccomp_syscall_resolve_name_arch(token[abi], name.encode()))

    allow, enosys, eperm = 0x7FFF0000, 0x50000 | errno.ENOSYS, 0x50000 | errno.EPERM
    for abis in (["X86_64", "X86", "X32"], ["X86_64"], ["X32"], ["X86"]):
        profile = deny_default(architectures=[f"SCMP_ARCH_{a}" for a in abis])
        with build_filter(profile) as filt:
            program = filt.bpf()
        for abi in abis:
            audit = audit_i386 if abi == "X86" else audit_x86_64
            top = max(sysno(abi, name) for name in PYTHON_MINIMUM)
            assert run_bpf(program, sysno(abi, "write"), audit) == allow, abis
            assert run_bpf(program, sysno(abi, "getppid"), audit) == eperm, abis
            assert run_bpf(program, top + 1, audit) == enosys, abis
            assert run_bpf(program, top, audit) in (allow, eperm), abis
        if "X32" not in abis and "X86_64" in abis:
            # x32 calls never reach the x86_64 limit check: libseccomp's bad-arch action.
            assert run_bpf(program, sysno("X32", "write"), audit_x86_64) == 0
        if "X86" not in abis:
            assert run_bpf(program, 1000, audit_i386) == 0  # not ENOSYS: bad arch


# --- flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "bits"),
    [
        (None, 1 << 2),  # runc's default: SPEC_ALLOW
        ([], 0),
        (["SECCOMP_FILTER_FLAG_TSYNC"], 1),
        (["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"], (1 << 1) | (1 << 2)),
        # Meaningless (and refused by the kernel) without a listener: dropped.
        (["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], 0),
    ],
)
def test_load_flags(flags: list[str] | None, bits: int) -> None:
    profile = allow_default({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"})
    if flags is not None:
        profile["flags"] = flags
    with build_filter(profile) as filt:
        assert filt.load_flags == bits
    assert probe_ok(profile, lambda: sys_errno("getppid")) == errno.EPERM


def test_tsync_filters_every_thread(tmp_path: Path) -> None:
    def probe(tsync: bool) -> Callable[[], int]:
        def run() -> int:
            go, results = threading.Event(), []

            def other_thread() -> None:
                go.wait()
                results.append(sys_errno("getppid"))

            thread = threading.Thread(target=other_thread)
            thread.start()
            flags = ["SECCOMP_FILTER_FLAG_TSYNC"] if tsync else []
            load_filter(
                allow_default({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}, flags=flags)
            )
            go.set()
            thread.join()
            return results[0]

        return run

    assert probe_ok(None, probe(True)) == errno.EPERM
    assert probe_ok(None, probe(False)) == 0


# --- SCMP_ACT_NOTIFY -------------------------------------------------------------------------


class _Data(ctypes.Structure):
    _fields_ = [
        ("nr", ctypes.c_int),
        ("arch", ctypes.c_uint32),
        ("ip", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class _Notif(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("data", _Data),
    ]


class _Resp(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("val", ctypes.c_int64),
        ("error", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
    ]


def _answer_one_notification(fd: int, error: int) -> tuple[int, int]:
    """Act as the seccomp agent for one syscall: fail it with `error`; return (pid, nr)."""
    req, resp = ctypes.POINTER(_Notif)(), ctypes.POINTER(_Resp)()
    assert libscmp.seccomp_notify_alloc(ctypes.byref(req), ctypes.byref(resp)) == 0
    try:
        assert select.select([fd], [], [], 10)[0], "no notification arrived"
        assert libscmp.seccomp_notify_receive(fd, req) == 0
        resp.contents.id = req.contents.id
        resp.contents.error = -error
        assert libscmp.seccomp_notify_respond(fd, resp) == 0
        return req.contents.pid, req.contents.data.nr
    finally:
        libscmp.seccomp_notify_free(req, resp)


def test_notify_hands_the_listener_to_the_agent(tmp_path: Path) -> None:
    listener_path = str(tmp_path / "agent.sock")
    profile = allow_default(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
        flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
        listenerPath=listener_path,
        listenerMetadata="hello agent",
    )
    with build_filter(profile) as filt:
        assert filt.uses_notify
        # NEW_LISTENER, TSYNC_ESRCH (required with TSYNC), WAIT_KILLABLE_RECV, TSYNC.
        assert filt.load_flags == (1 << 3) | (1 << 4) | (1 << 5) | 1

    def child() -> int:
        fd = load_filter(profile)
        assert fd is not None
        state = {
            "ociVersion": "1.2.0",
            "id": "c1",
            "status": "creating",
            "pid": os.getpid(),
            "bundle": "/b",
        }
        seccomp.send_listener_state(listener_path, fd, state, "hello agent")
        os.close(fd)
        return oserror_errno(lambda: (tmp_path / "d").mkdir())

    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(listener_path)
    agent.listen(1)
    agent.settimeout(10)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        agent.close()
        try:
            _child(w, None, child, True, [])
        finally:
            os._exit(99)
    os.close(w)
    try:
        conn, _ = agent.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 1)
            while chunk := conn.recv(65536):
                msg += chunk
        assert len(fds) == 1
        process_state = json.loads(msg)
        assert process_state["fds"] == ["seccompFd"]
        assert process_state["metadata"] == "hello agent"
        assert process_state["pid"] == pid
        assert process_state["state"]["id"] == "c1"
        got_pid, got_nr = _answer_one_notification(fds[0], MARK2)
        os.close(fds[0])
        assert got_pid == pid
        assert got_nr in (nr("mkdir"), nr("mkdirat"))
    finally:
        agent.close()
        with os.fdopen(r, "rb") as pipe:
            report = json.loads(pipe.read() or b"null")
        os.waitpid(pid, 0)
    assert report == {"ok": MARK2}


# --- root-only behaviour ---------------------------------------------------------------------


@pytest.mark.root
@root
def test_loads_without_no_new_privs_and_leaves_it_unset() -> None:
    def probe() -> tuple[int, int, int]:
        nnp = libc.prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
        return seccomp_mode(), nnp, sys_errno("getppid")

    profile = allow_default({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"})
    assert probe_ok(profile, probe, nnp=False) == [2, 0, errno.EPERM]


# --- errors: raised before anything is loaded ------------------------------------------------

BAD_PROFILES: list[tuple[dict[str, Any], str]] = [
    ({"defaultAction": "SCMP_ACT_FOO"}, 'unknown action "SCMP_ACT_FOO"'),
    (
        allow_default({"names": ["getpid"], "action": "SCMP_ACT_FOO"}),
        'unknown action "SCMP_ACT_FOO"',
    ),
    (
        allow_default(
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BETWEEN"}],
            }
        ),
        'unknown operator "SCMP_CMP_BETWEEN"',
    ),
    (allow_default(architectures=["SCMP_ARCH_FOO"]), 'unknown architecture "SCMP_ARCH_FOO"'),
    (allow_default(flags=["SECCOMP_FILTER_FLAG_FOO"]), 'unknown flag "SECCOMP_FILTER_FLAG_FOO"'),
    ({"syscalls": []}, "defaultAction is required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "errnoRet is only valid"),
    (allow_default({"names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}), "errnoRet"),
    (allow_default({"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}), "errnoRet"),
    (
        allow_default({"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 << 16}),
        "errnoRet",
    ),
    (allow_default({"names": [], "action": "SCMP_ACT_ERRNO"}), "names must be a non-empty"),
    (allow_default({"names": [""], "action": "SCMP_ACT_ERRNO"}), "syscall name"),
    (
        allow_default(
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
            }
        ),
        "argument index 6",
    ),
    (
        allow_default(
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
            }
        ),
        "not a uint64",
    ),
    (
        allow_default(
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}],
            }
        ),
        "not a uint64",
    ),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}, "cannot be used as the default"),
    (
        allow_default({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x"),
        "write syscall",
    ),
    (allow_default({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}), "listenerPath is not set"),
    (allow_default(listenerMetadata="m"), "listenerPath is not"),
]


@pytest.mark.parametrize(("profile", "message"), BAD_PROFILES)
def test_invalid_profiles_raise_clear_errors(profile: dict[str, Any], message: str) -> None:
    with pytest.raises(SeccompError, match=message.replace("(", r"\(")):
        build_filter(profile)


def test_unsupported_spec_architecture_is_a_clear_error() -> None:
    unsupported = sorted(set(seccomp._ARCHS) - set(seccomp.supported_archs()))
    if not unsupported:
        pytest.skip("this libseccomp knows every runtime-spec architecture")
    with pytest.raises(SeccompError, match=f'"{unsupported[0]}" is not supported by libseccomp'):
        build_filter(allow_default(architectures=[unsupported[0]]))


def test_load_filter_raises_before_loading_anything() -> None:
    def probe() -> tuple[str, int]:
        try:
            load_filter(allow_default({"names": ["getpid"], "action": "SCMP_ACT_FOO"}))
        except SeccompError as exc:
            return str(exc), seccomp_mode()
        return "no error", seccomp_mode()

    message, mode = probe_ok(None, probe)
    assert 'unknown action "SCMP_ACT_FOO"' in message
    assert mode == 0


def test_empty_profile_means_no_seccomp() -> None:
    assert probe_ok(None, lambda: (load_filter({}), seccomp_mode())) == [None, 0]


# --- features --------------------------------------------------------------------------------


def test_supported_lists() -> None:
    assert "SCMP_ACT_KILL_PROCESS" in seccomp.supported_actions()
    assert len(seccomp.supported_actions()) == 9
    assert seccomp.supported_operators() == sorted(
        [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ]
    )
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"} <= set(
        seccomp.supported_archs()
    )
    assert len(seccomp.supported_flags()) == 4
    assert seccomp.libseccomp_version().count(".") == 2


# --- Docker's default profile ----------------------------------------------------------------

DOCKER_DEFAULT_CAPS = DOCKER_CAPS
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def docker_to_oci(profile: dict[str, Any], caps: list[str], machine: str) -> dict[str, Any]:
    """Docker's profile format to OCI for one host, as dockerd does (minKernel ignored)."""
    native, goarch = NATIVE_ARCH, GO_ARCH[machine]
    archs = next(
        (
            [m["architecture"], *m["subArchitectures"]]
            for m in profile["archMap"]
            if m["architecture"] == native
        ),
        [],
    )
    syscalls = []
    for call in profile["syscalls"]:
        inc, exc = call.get("includes", {}), call.get("excludes", {})
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if goarch in exc.get("arches", []) or any(c in caps for c in exc.get("caps", [])):
            continue
        syscalls.append({k: call[k] for k in ("names", "action", "errnoRet", "args") if k in call})
    oci = {"defaultAction": profile["defaultAction"], "architectures": archs, "syscalls": syscalls}
    if "defaultErrnoRet" in profile:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return oci


@pytest.mark.root
@root
@pytest.mark.skipif(MACHINE not in GO_ARCH, reason="unknown native architecture")
def test_docker_default_profile() -> None:
    profile = docker_to_oci(json.loads(DOCKER_PROFILE.read_text()), DOCKER_DEFAULT_CAPS, MACHINE)
    with build_filter(profile) as filt:
        assert len(filt.bpf()) // 8 <= 4096

    def probe() -> dict[str, int]:
        pid = os.fork()  # clone with plain flags passes the MASKED_EQ rule
        if pid == 0:
            os.execv("/bin/true", ["/bin/true"])
        _, status = os.waitpid(pid, 0)
        return {
            "grandchild": status,
            "unshare": sys_errno("unshare", CLONE_NEWUTS),
            "mount": sys_errno("mount", b"none", b"/nonexistent-barque", b"tmpfs", 0, None),
            "clone3": sys_errno("clone3", None, 0),
            "newer": sys_errno(NO_SUCH_SYSCALL),
            "getppid": sys_errno("getppid"),
        }

    # With root and no no_new_privs: what the filter denies, root could otherwise do.
    status, report = run_child(profile, probe, nnp=False, exec_=["/bin/true"])
    assert report == {
        "ok": {
            "grandchild": 0,
            "unshare": errno.EPERM,
            "mount": errno.EPERM,
            "clone3": errno.ENOSYS,  # Docker's explicit rule, so glibc falls back to clone
            "newer": errno.ENOSYS,  # the -ENOSYS stub
            "getppid": 0,
        }
    }
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0  # /bin/true ran
