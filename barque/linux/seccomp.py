"""Load an OCI runtime-spec ``linux.seccomp`` profile into the kernel, as runc does.

libseccomp (``libseccomp.so.2``, through ctypes) compiles the profile to BPF; we then
install that program with seccomp(2) ourselves instead of calling seccomp_load(). runc does
the same (libcontainer/seccomp/patchbpf), and it is what lets us:

* prepend runc's "-ENOSYS stub": with a non-permissive default action, a syscall numbered
  above every syscall the profile names gets ENOSYS instead of the default action, so libc
  falls back from syscalls newer than the profile (clone3, ...) instead of failing on EPERM;
* honour SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, which libseccomp 2.5 has no attribute for.

Other runc behaviour kept on purpose: syscall names libseccomp cannot resolve are skipped
(Docker's profile lists syscalls that many kernels and architectures lack); a rule whose
action equals the default action is skipped (libseccomp rejects it); when one rule compares
the same argument twice, each comparison becomes a rule of its own, since libseccomp rejects
that (so those comparisons are OR-ed, not AND-ed); an absent ``flags`` means
``[SECCOMP_FILTER_FLAG_SPEC_ALLOW]``; no_new_privs is left to the caller.

This module is imported by a short-lived CLI whose start time is benchmarked, so it imports
only ctypes, os and errno at load time and opens libseccomp on first use.
"""

from __future__ import annotations

import errno
import os

from barque.linux import cdata as ctypes

# Spelled out rather than imported: importing typing costs start-up time; mypy treats any
# name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeGuard

    # (argument index, libseccomp operator, datum_a, datum_b)
    _Cmp = tuple[int, int, int, int]
    # (syscall name, libseccomp action, comparisons)
    _Rule = tuple[str, int, list[_Cmp]]
    # A classic BPF instruction: (code, jt, jf, k)
    _Insn = tuple[int, int, int, int]


class SeccompError(Exception):
    """The profile is invalid or unsupported here, or the kernel refused the filter."""


_ACT_ERRNO = 0x00050000
_ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": _ACT_ERRNO,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
# Only these carry a 16-bit datum: the errno, or the message for the tracer.
_ERRNO_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
# runc skips the -ENOSYS stub for these defaults: a tracer is expected to cope with new
# syscalls itself, and ENOSYS would only get in the way of allow and log.
_PERMISSIVE_ACTIONS = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"})

_OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# The runtime-spec list (libseccomp 2.6); which of them work depends on the libseccomp found.
_ARCHS = (
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
)

# Kernel SECCOMP_FILTER_FLAG_* values (linux/seccomp.h).
_FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}
_FLAG_TSYNC = 1 << 0
_FLAG_NEW_LISTENER = 1 << 3
_FLAG_TSYNC_ESRCH = 1 << 4
_FLAG_WAIT_KILLABLE_RECV = 1 << 5

_SECCOMP_SET_MODE_FILTER = 1
_BPF_MAXINSNS = 4096
_MAX_SYSCALL_ARGS = 6
_NR_SCMP_ERROR = -1
_SCMP_FLTATR_CTL_NNP = 3
_SCMP_FLTATR_CTL_OPTIMIZE = 8
_NOTIFY_MIN_API = 6  # libseccomp API level that has working SCMP_ACT_NOTIFY (runc's check)
_UINT64_MAX = (1 << 64) - 1

# Architecture tokens are AUDIT_ARCH_* values, except libseccomp's made-up x32 token: the
# kernel reports x32 as x86_64 with bit 30 set in the syscall number.
_SCMP_ARCH_X32 = 0x4000003E
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_S390_ARCHS = frozenset({0x00000016, 0x80000016})  # s390 and s390x

# Classic BPF opcodes used by the -ENOSYS stub.
_BPF_LD_W_ABS = 0x20
_BPF_JA = 0x05
_BPF_JEQ_K = 0x15
_BPF_JGT_K = 0x25
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_SECCOMP_DATA_NR = 0
_SECCOMP_DATA_ARCH = 4
_RET_ENOSYS = _ACT_ERRNO | errno.ENOSYS


class _ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFilter(ctypes.Structure):
    """struct sock_filter: one classic BPF instruction."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    """struct sock_fprog."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class _Version(ctypes.Structure):
    """struct scmp_version."""

    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lib: ctypes.CDLL | None = None


def _libseccomp() -> ctypes.CDLL:
    """Open libseccomp once, on first use, so that importing this module stays cheap."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as exc:
            raise SeccompError(
                f"seccomp needs libseccomp.so.2, which cannot be loaded: {exc}"
            ) from None
        _declare(lib)
        _lib = lib
    return _lib


def _declare(lib: ctypes.CDLL) -> None:
    """Give every function we call its C prototype; ctypes' int default would truncate."""
    ctx, u32, c_int, c_str = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_char_p
    protos: dict[str, tuple[list[Any], Any]] = {
        "seccomp_init": ([u32], ctx),
        "seccomp_release": ([ctx], None),
        "seccomp_arch_add": ([ctx, u32], c_int),
        "seccomp_arch_resolve_name": ([c_str], u32),
        "seccomp_attr_set": ([ctx, c_int, u32], c_int),
        "seccomp_syscall_resolve_name": ([c_str], c_int),
        "seccomp_syscall_resolve_name_arch": ([u32, c_str], c_int),
        "seccomp_rule_add_array": (
            [ctx, u32, c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)],
            c_int,
        ),
        "seccomp_export_bpf": ([ctx, c_int], c_int),
        "seccomp_api_get": ([], ctypes.c_uint),
        "seccomp_version": ([], ctypes.POINTER(_Version)),
    }
    for name, (argtypes, restype) in protos.items():
        func = getattr(lib, name)
        func.argtypes = argtypes
        func.restype = restype


def _check(rc: int, what: str) -> None:
    """libseccomp returns -errno on failure."""
    if rc < 0:
        raise SeccompError(f"{what}: {os.strerror(-rc)}")


# --- capabilities, for `barque-runtime features` -------------------------------------------


def supported_actions() -> list[str]:
    return sorted(_ACTIONS)


def supported_operators() -> list[str]:
    return sorted(_OPERATORS)


def supported_archs() -> list[str]:
    """The runtime-spec architectures that the installed libseccomp knows."""
    return sorted(a for a in _ARCHS if _arch_token(a) != 0)


def supported_flags() -> list[str]:
    return sorted(_FLAGS)


def libseccomp_version() -> str:
    v = _libseccomp().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


# --- validation: a bad profile fails here, before any context exists ----------------------


def _is_uint(value: object, limit: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _action(name: object, errno_ret: object, where: str) -> int:
    """The libseccomp action for an OCI action name and its optional errnoRet."""
    if not isinstance(name, str) or name not in _ACTIONS:
        raise SeccompError(
            f'{where}: unknown action "{name}" (supported: {", ".join(supported_actions())})'
        )
    if errno_ret is None:
        # runc's default for both ERRNO and TRACE.
        return _ACTIONS[name] | (errno.EPERM if name in _ERRNO_ACTIONS else 0)
    if name not in _ERRNO_ACTIONS:
        # The spec says the runtime MUST fail here (runc silently ignores it).
        raise SeccompError(f"{where}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
    if not _is_uint(errno_ret, 0xFFFF):
        raise SeccompError(f"{where}: errnoRet {errno_ret!r} is not an integer in 0..65535")
    return _ACTIONS[name] | errno_ret


def _arch_token(name: str) -> int:
    """libseccomp's token for SCMP_ARCH_FOO (its name for it is "foo"), 0 if unknown."""
    lib = _libseccomp()
    return int(lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_") :].lower().encode()))


def _arch_tokens(names: object) -> list[int]:
    if names is None:
        return []
    if not isinstance(names, list):
        raise SeccompError("seccomp.architectures must be a list")
    tokens = []
    for name in names:
        if not isinstance(name, str) or name not in _ARCHS:
            raise SeccompError(
                f'seccomp.architectures: unknown architecture "{name}" (known: {", ".join(_ARCHS)})'
            )
        token = _arch_token(name)
        if token == 0:
            raise SeccompError(
                f'seccomp.architectures: "{name}" is not supported by libseccomp '
                f"{libseccomp_version()}"
            )
        tokens.append(token)
    return tokens


def _flag_bits(flags: object) -> int:
    if flags is None:
        # runc turns the Speculative Store Bypass mitigation off unless told otherwise:
        # seccomp would otherwise force it on some kernels, at a large cost.
        return _FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    if not isinstance(flags, list):
        raise SeccompError("seccomp.flags must be a list")
    bits = 0
    for flag in flags:
        if not isinstance(flag, str) or flag not in _FLAGS:
            raise SeccompError(
                f'seccomp.flags: unknown flag "{flag}" (supported: {", ".join(supported_flags())})'
            )
        bits |= _FLAGS[flag]
    return bits


def _comparison(arg: object, where: str) -> _Cmp:
    if not isinstance(arg, dict):
        raise SeccompError(f"{where}: each args entry must be an object")
    index, op, value = arg.get("index"), arg.get("op"), arg.get("value")
    value_two = arg.get("valueTwo", 0)
    if not _is_uint(index, _MAX_SYSCALL_ARGS - 1):
        raise SeccompError(f"{where}: argument index {index!r} is not in 0..5")
    if not isinstance(op, str) or op not in _OPERATORS:
        raise SeccompError(
            f'{where}: unknown operator "{op}" (supported: {", ".join(supported_operators())})'
        )
    if not _is_uint(value, _UINT64_MAX):
        raise SeccompError(f"{where}: value {value!r} is not a uint64")
    if not _is_uint(value_two, _UINT64_MAX):
        raise SeccompError(f"{where}: valueTwo {value_two!r} is not a uint64")
    # For SCMP_CMP_MASKED_EQ libseccomp's datum_a is the mask (OCI "value") and datum_b the
    # expected result (OCI "valueTwo"); other operators ignore datum_b.
    return (index, _OPERATORS[op], value, value_two)


def _rules(syscalls: object) -> list[_Rule]:
    """One rule per syscall name, as runc expands them."""
    if syscalls is None:
        return []
    if not isinstance(syscalls, list):
        raise SeccompError("seccomp.syscalls must be a list")
    rules: list[_Rule] = []
    for i, entry in enumerate(syscalls):
        where = f"seccomp.syscalls[{i}]"
        if not isinstance(entry, dict):
            raise SeccompError(f"{where} must be an object")
        names = entry.get("names")
        if not isinstance(names, list) or not names:
            raise SeccompError(f"{where}: names must be a non-empty list")
        action = _action(entry.get("action"), entry.get("errnoRet"), where)
        args = entry.get("args") or []
        if not isinstance(args, list):
            raise SeccompError(f"{where}: args must be a list")
        cmps = [_comparison(arg, f"{where}.args[{j}]") for j, arg in enumerate(args)]
        for name in names:
            if not isinstance(name, str) or not name:
                raise SeccompError(f"{where}: syscall name {name!r} is not a non-empty string")
            rules.append((name, action, cmps))
    return rules


def _check_notify(seccomp: dict[str, Any], default_action: int, rules: list[_Rule]) -> bool:
    """Reject the SCMP_ACT_NOTIFY set-ups runc rejects; tell whether a listener is needed."""
    notify = _ACTIONS["SCMP_ACT_NOTIFY"]
    path, metadata = seccomp.get("listenerPath"), seccomp.get("listenerMetadata")
    if metadata and not path:
        raise SeccompError("seccomp.listenerMetadata is set but seccomp.listenerPath is not")
    if default_action == notify:
        # Notifying on every syscall would include the write that hands the fd over.
        raise SeccompError("SCMP_ACT_NOTIFY cannot be used as the default action")
    notified = [name for name, action, _ in rules if action == notify]
    if not notified:
        return False
    if "write" in notified:
        raise SeccompError("SCMP_ACT_NOTIFY cannot be used for the write syscall")
    if not path or not isinstance(path, str):
        raise SeccompError("SCMP_ACT_NOTIFY is used but seccomp.listenerPath is not set")
    api = _libseccomp().seccomp_api_get()
    if api < _NOTIFY_MIN_API:
        raise SeccompError(
            f"SCMP_ACT_NOTIFY is not supported: libseccomp API level {api}, needs "
            f"{_NOTIFY_MIN_API} (libseccomp >= 2.5.0 and Linux >= 5.7)"
        )
    return True


# --- the -ENOSYS stub (runc's patchbpf) ----------------------------------------------------


def _largest_syscalls(arch_tokens: list[int], rules: list[_Rule]) -> dict[int, dict[int, int]]:
    """{kernel audit arch: {libseccomp arch token: largest syscall number in the profile}}."""
    lib = _libseccomp()
    names = {name.encode() for name, _, _ in rules}
    largest: dict[int, dict[int, int]] = {}
    for token in arch_tokens:
        audit = _AUDIT_ARCH_X86_64 if token == _SCMP_ARCH_X32 else token
        # Names unknown to the arch resolve to -1 or a negative pseudo number: never largest.
        top = max((lib.seccomp_syscall_resolve_name_arch(token, n) for n in names), default=0)
        if top > 0:
            largest.setdefault(audit, {})[token] = top
    return largest


def _stub_section(audit: int, tops: dict[int, int]) -> list[_Insn]:
    """Code for one kernel arch: ENOSYS above its largest syscall, else on to the filter.

    Every jump is forward and short. The section ends with "ja" (its offset is filled in
    by _enosys_stub) and "ret ERRNO(ENOSYS)".
    """
    x86 = audit == _AUDIT_ARCH_X86_64
    if x86:
        limits = [tops[t] for t in (_AUDIT_ARCH_X86_64, _SCMP_ARCH_X32) if t in tops]
    else:
        limits = [max(tops.values())]
    s390 = audit in _S390_ARCHS
    ja = 1 + s390 + x86 + len(limits)
    ret = ja + 1
    body: list[_Insn] = [(_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_NR)]
    if s390:
        # s390 routes syscalls it does not know through number 0 (setup(2), long gone).
        body.append((_BPF_JEQ_K, ret - len(body) - 1, 0, 0))
    if x86:
        # x32 syscalls arrive as x86_64 ones with bit 30 set; the kind the profile does not
        # cover goes straight to the filter (and its bad-arch action).
        to_ja = ja - len(body) - 1
        if len(limits) == 2:
            jt, jf = 1, 0
        elif _AUDIT_ARCH_X86_64 in tops:
            jt, jf = to_ja, 0
        else:
            jt, jf = 0, to_ja
        body.append((_BPF_JSET_K, jt, jf, _X32_SYSCALL_BIT))
    for top in limits:
        i = len(body)
        body.append((_BPF_JGT_K, ret - i - 1, ja - i - 1, top))
    body.append((_BPF_JA, 0, 0, 0))
    body.append((_BPF_RET_K, 0, 0, _RET_ENOSYS))
    return body


def _enosys_stub(
    default_name: str, default_action: int, arch_tokens: list[int], rules: list[_Rule]
) -> list[_Insn]:
    if default_name in _PERMISSIVE_ACTIONS or default_action == _RET_ENOSYS:
        return []
    # As runc: only the listed architectures get a section, none when the list is empty.
    largest = _largest_syscalls(arch_tokens, rules)
    if not largest:
        return []
    stub: list[_Insn] = [(_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARCH)]
    for audit, tops in sorted(largest.items()):
        section = _stub_section(audit, tops)
        # A skipped section leaves the arch in A for the next comparison.
        stub.append((_BPF_JEQ_K, 0, len(section), audit))
        stub.extend(section)
    # Each "ja" leaves the stub; the libseccomp filter after it loads what it needs itself.
    return [
        (code, jt, jf, len(stub) - i - 1 if code == _BPF_JA else k)
        for i, (code, jt, jf, k) in enumerate(stub)
    ]


# --- building and loading ------------------------------------------------------------------


class Program:
    """A compiled filter, ready to install: the whole BPF program (the -ENOSYS stub, then
    libseccomp's filter) and the seccomp(2) flags. Plain data, so that it can be made before
    the runtime forks (or read back from its cache) and the container init only installs it."""

    __slots__ = ("program", "flags", "uses_notify")

    def __init__(self, program: bytes, flags: int, uses_notify: bool) -> None:
        self.program = program
        self.flags = flags
        self.uses_notify = uses_notify

    def load(self) -> int | None:
        """Install the filter on the calling thread (every thread with TSYNC).

        Needs no_new_privs or CAP_SYS_ADMIN. Returns the seccomp notify listener fd when the
        profile uses SCMP_ACT_NOTIFY (the caller owns it), else None.
        """
        size = ctypes.sizeof(_SockFilter)
        count = len(self.program) // size
        if count > _BPF_MAXINSNS:
            raise SeccompError(
                f"the seccomp filter has {count} BPF instructions; the kernel allows "
                f"{_BPF_MAXINSNS}"
            )
        if count == 0 or count * size != len(self.program):
            raise SeccompError(f"not a seccomp BPF program: {len(self.program)} bytes")
        insns = (_SockFilter * count).from_buffer_copy(self.program)
        fprog = _SockFprog(count, insns)  # an array of T converts to a T pointer field
        rc = _seccomp_set_mode_filter(self.flags, fprog)
        return rc if self.flags & _FLAG_NEW_LISTENER else None


class Filter:
    """A validated profile compiled into a libseccomp context, ready to be loaded once.

    Owns the context: call release(), or use it as a context manager.
    """

    __slots__ = ("_ctx", "_flags", "_stub", "uses_notify")

    def __init__(self, ctx: int, flags: int, stub: list[_Insn], uses_notify: bool) -> None:
        self._ctx: int | None = ctx
        self._flags = flags
        self._stub = stub
        self.uses_notify = uses_notify

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()

    def release(self) -> None:
        if self._ctx is not None and _lib is not None:
            _lib.seccomp_release(self._ctx)
        self._ctx = None

    @property
    def load_flags(self) -> int:
        """The SECCOMP_FILTER_FLAG_* bits load() passes to seccomp(2)."""
        return self._flags

    def bpf(self) -> bytes:
        """The whole program load() installs: the -ENOSYS stub, then libseccomp's filter."""
        stub = (_SockFilter * len(self._stub))(*(_SockFilter(*insn) for insn in self._stub))
        return bytes(stub) + self._export()

    def _export(self) -> bytes:
        if self._ctx is None:
            raise SeccompError("the seccomp filter was already released")
        # A memfd rather than a pipe: a big profile's program can outgrow the pipe buffer.
        fd = os.memfd_create("barque-seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(_libseccomp().seccomp_export_bpf(self._ctx, fd), "exporting the seccomp BPF")
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)

    def compile(self) -> Program:
        """The BPF program (libseccomp's export costs ~10 ms for Docker's profile); releases
        the context."""
        try:
            return Program(self.bpf(), self._flags, self.uses_notify)
        finally:
            self.release()

    def load(self) -> int | None:
        """Install the filter on the calling thread (every thread with TSYNC); see
        Program.load."""
        return self.compile().load()


def compile_filter(seccomp: dict[str, Any]) -> Program:
    """build_filter and compile: the program for a profile, or SeccompError."""
    return build_filter(seccomp).compile()


def _seccomp_set_mode_filter(flags: int, fprog: _SockFprog) -> int:
    from barque.linux.libc import known_syscall_number, libc  # loaded by the container init

    nr = known_syscall_number("seccomp")
    if nr is None:
        nr = _libseccomp().seccomp_syscall_resolve_name(b"seccomp")
    rc = int(
        libc.syscall(
            ctypes.c_long(nr),
            ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
            ctypes.c_ulong(flags),
            ctypes.byref(fprog),
        )
    )
    if rc == -1:
        err = ctypes.get_errno()
        hint = {
            errno.EACCES: " (needs no_new_privs or CAP_SYS_ADMIN)",
            errno.EINVAL: " (a flag or action this kernel does not support?)",
        }.get(err, "")
        raise SeccompError(f"loading the seccomp filter: {os.strerror(err)}{hint}")
    if flags & _FLAG_TSYNC and not flags & _FLAG_NEW_LISTENER and rc > 0:
        raise SeccompError(f"loading the seccomp filter: thread {rc} could not be synchronised")
    return rc


def _load_flags(flags: int, uses_notify: bool) -> int:
    if not uses_notify:
        # The kernel accepts WAIT_KILLABLE_RECV only next to NEW_LISTENER; with no listener
        # it has nothing to act on.
        return flags & ~_FLAG_WAIT_KILLABLE_RECV
    flags |= _FLAG_NEW_LISTENER
    if flags & _FLAG_TSYNC:
        # The kernel refuses TSYNC with NEW_LISTENER unless failures are reported as ESRCH,
        # since the return value can no longer be a thread id.
        flags |= _FLAG_TSYNC_ESRCH
    return flags


def build_filter(seccomp: dict[str, Any]) -> Filter:
    """Validate an OCI ``linux.seccomp`` object and compile it; nothing is loaded yet.

    Raises SeccompError for anything invalid or unsupported here.
    """
    if not isinstance(seccomp, dict):
        raise SeccompError("linux.seccomp must be an object")
    default_name = seccomp.get("defaultAction")
    if default_name is None:
        raise SeccompError("seccomp.defaultAction is required")
    default_action = _action(default_name, seccomp.get("defaultErrnoRet"), "seccomp.defaultAction")
    rules = _rules(seccomp.get("syscalls"))
    flags = _flag_bits(seccomp.get("flags"))
    arch_tokens = _arch_tokens(seccomp.get("architectures"))
    uses_notify = _check_notify(seccomp, default_action, rules)
    stub = _enosys_stub(str(default_name), default_action, arch_tokens, rules)
    ctx = _new_context(default_action, arch_tokens, len(rules))
    try:
        for rule in rules:
            _add_rule(ctx, rule, default_action)
    except BaseException:
        _libseccomp().seccomp_release(ctx)
        raise
    return Filter(ctx, _load_flags(flags, uses_notify), stub, uses_notify)


def _new_context(default_action: int, arch_tokens: list[int], rule_count: int) -> int:
    lib = _libseccomp()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise SeccompError(f"seccomp_init failed for default action {default_action:#x}")
    try:
        for token in arch_tokens:
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -errno.EEXIST:  # the native arch is always there already
                _check(rc, f"adding seccomp architecture {token:#x}")
        # We load the program ourselves; keep libseccomp's view consistent all the same: the
        # runtime sets no_new_privs itself when process.noNewPrivileges asks for it.
        _check(lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0), "clearing SCMP_FLTATR_CTL_NNP")
        if rule_count > 32:
            # Binary-tree dispatch, as runc: faster syscalls for big profiles. libseccomp
            # <= 2.5.4 misbehaves with it on empty profiles, hence the threshold; best effort.
            lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return int(ctx)


def _add_rule(ctx: int, rule: _Rule, default_action: int) -> None:
    name, action, cmps = rule
    if action == default_action:
        return  # redundant, and libseccomp would refuse it
    lib = _libseccomp()
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr == _NR_SCMP_ERROR:
        return  # unknown to libseccomp here: assume the kernel lacks it too, as runc does
    indexes = [cmp[0] for cmp in cmps]
    if len(set(indexes)) == len(indexes):
        groups = [cmps]
    else:
        # libseccomp refuses two comparisons of one argument in a rule; runc then adds
        # every comparison as a rule of its own.
        groups = [[cmp] for cmp in cmps]
    for group in groups:
        array = (_ArgCmp * len(group))(*(_ArgCmp(*cmp) for cmp in group))
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), array)
        _check(rc, f"adding the seccomp rule for syscall {name!r}")


def load_filter(seccomp: dict[str, Any]) -> int | None:
    """Build and load the filter for the calling thread. Called in the container init just
    before execve.

    A profile with neither defaultAction nor syscalls means no seccomp, as in runc. Returns
    the notify listener fd when the profile uses SCMP_ACT_NOTIFY (hand it to
    send_listener_state()), else None.
    """
    if isinstance(seccomp, dict) and not (seccomp.get("defaultAction") or seccomp.get("syscalls")):
        return None
    with build_filter(seccomp) as filt:
        return filt.load()


def send_listener_state(
    listener_path: str, seccomp_fd: int, state: dict[str, Any], metadata: str | None = None
) -> None:
    """Send the container process state and the notify fd to the seccomp agent.

    `state` is the container's runtime-spec state (ociVersion, id, status, pid, bundle, ...).
    One connection per state, closed afterwards, fd in the first sendmsg, as the spec asks.
    """
    import json
    import socket

    process_state: dict[str, Any] = {
        "ociVersion": state.get("ociVersion", "1.2.0"),
        "fds": ["seccompFd"],
        "pid": state.get("pid", 0),
        "state": state,
    }
    if metadata:
        process_state["metadata"] = metadata
    payload = json.dumps(process_state).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(listener_path)
            sent = socket.send_fds(sock, [payload], [seccomp_fd])
            sock.sendall(payload[sent:])
        except OSError as exc:
            raise SeccompError(f"sending the seccomp fd to {listener_path}: {exc}") from exc
