"""Compiled seccomp programs, kept in the runtime's root between containers.

Compiling Docker's default profile costs ~17 ms of CPU per container (libseccomp: ~5 ms to
build its rule database through ctypes, ~12 ms to generate the BPF), the same work every
time for the same profile. The program is a pure function of the profile, the libseccomp
that compiled it, the machine and kernel, and our compiler (barque/linux/seccomp.py), so it
is kept under a key hashing all of them, in <root>/@seccomp/ ("@" is not allowed in a
container id, so no container's state dir can take that name).

What is read back is trusted only as far as the runtime's own state is: a regular file owned
by us in a directory owned by us, neither writable by anyone else, whose header repeats the
key and whose program matches the SHA-256 it records. Anything else is ignored and replaced.
A profile that fails validation is never stored, so a cache hit implies a valid profile; a
profile with SCMP_ACT_NOTIFY is never stored (the kernel's API level decides if it is
supported). Writes are atomic (a temp file renamed over) and best effort.
"""

from __future__ import annotations

import os

from barque.linux import seccomp as sc
from barque.sha256 import digest as _sha256

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from typing import Any

DIR_NAME = "@seccomp"
_FORMAT = b"bqseccomp1"
# magic, key (32), flags (u32 LE), instruction count (u32 LE), SHA-256 of the program (32);
# by hand: the struct module would be one more import (~0.2 ms) on every container start.
HEADER_SIZE = len(_FORMAT) + 32 + 4 + 4 + 32
_INSN = 8  # sizeof(struct sock_filter)
_MAX_INSNS = 4096
# More files than this and the directory is emptied before the next write: profiles vary
# little (Docker's default per capability set, a few custom ones).
_MAX_ENTRIES = 64


def cache_key(profile: dict[str, Any]) -> bytes:
    """What the compiled program depends on, hashed. repr() of the parsed JSON is exact for
    its types (dict order, int vs bool, str); two spellings of one profile are two keys."""
    me = os.stat(sc.__file__)
    uname = os.uname()
    parts = (
        _FORMAT.decode(), sc.libseccomp_version(), uname.machine, uname.release,
        me.st_ino, me.st_size, me.st_mtime_ns, repr(profile),
    )
    return _sha256(repr(parts).encode())


def compiled(root: str | None, profile: dict[str, Any]) -> sc.Program:
    """The program for `profile`, from the cache under `root` or compiled (and stored).
    Raises SeccompError for a bad profile, as compile_filter does."""
    if root is None:
        return sc.compile_filter(profile)
    key = cache_key(profile)
    directory = os.path.join(root, DIR_NAME)
    name = key.hex()
    program = read_entry(directory, name, key)
    if program is not None:
        return program
    program = sc.compile_filter(profile)
    if not program.uses_notify:
        try:
            _write_entry(directory, name, key, program)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return program


def _trusted(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def read_entry(directory: str, name: str, key: bytes) -> sc.Program | None:
    import stat

    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(dir_fd)):
            return None
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _trusted(st):
            return None
        if st.st_size > HEADER_SIZE + _MAX_INSNS * _INSN:
            return None
        data = os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _parse(data, key)


def pack_header(magic: bytes, key: bytes, flags: int, count: int, digest: bytes) -> bytes:
    return magic + key + flags.to_bytes(4, "little") + count.to_bytes(4, "little") + digest


def unpack_header(data: bytes) -> tuple[bytes, bytes, int, int, bytes]:
    """(magic, key, flags, count, digest) of an entry at least HEADER_SIZE long."""
    m = len(_FORMAT)
    return (data[:m], data[m:m + 32], int.from_bytes(data[m + 32:m + 36], "little"),
            int.from_bytes(data[m + 36:m + 40], "little"), data[m + 40:HEADER_SIZE])


def _parse(data: bytes, key: bytes) -> sc.Program | None:
    if len(data) < HEADER_SIZE:
        return None
    magic, stored_key, flags, count, digest = unpack_header(data)
    program = data[HEADER_SIZE:]
    if magic != _FORMAT or stored_key != key or not 0 < count <= _MAX_INSNS:
        return None
    if len(program) != count * _INSN or _sha256(program) != digest:
        return None
    return sc.Program(program, flags, False)


def _write_entry(directory: str, name: str, key: bytes, program: sc.Program) -> None:
    try:
        os.mkdir(directory, 0o700)
    except FileNotFoundError:  # the first container of this root: create makes it next
        os.makedirs(os.path.dirname(directory), 0o711, exist_ok=True)
        os.mkdir(directory, 0o700)
    except FileExistsError:
        st = os.lstat(directory)
        import stat

        if not stat.S_ISDIR(st.st_mode) or not _trusted(st):
            return
        _prune(directory)
    data = pack_header(_FORMAT, key, program.flags, len(program.program) // _INSN,
                       _sha256(program.program)) + program.program
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _prune(directory: str) -> None:
    names = os.listdir(directory)
    if len(names) < _MAX_ENTRIES:
        return
    for n in names:
        try:
            os.unlink(os.path.join(directory, n))
        except OSError:
            pass
