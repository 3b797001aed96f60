"""The running program's own executable, made one that nobody can write (CVE-2019-5736).

A process whose /proc/PID/exe a container reaches (the runtime joining it, or its interpreter
re-executed inside it by a `#!/proc/self/exe` script) hands the container that file: reopened
for writing, it would replace the host's interpreter. Executed from a detached read-only bind
mount of the file (no copy; no mount table shows it), or a sealed memfd copy where the new
mount API is refused, it cannot. monitor/sealexec.c does the same in C for the launcher.
"""

from __future__ import annotations

import os

from barque.linux import mount

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from typing import NoReturn

SELF = "/proc/self/exe"


def is_sealed(path: str = SELF) -> bool:
    """True if the file at path is on a read-only mount or a memfd sealed against writes."""
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return True
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE)
    except OSError:  # EINVAL: not a memfd
        return False
    finally:
        os.close(fd)


def sealed_fd(path: str) -> int:
    """An O_CLOEXEC descriptor of path that can be executed and never written."""
    try:
        fd = mount.open_tree(path, mount.OPEN_TREE_CLONE | os.O_CLOEXEC)
    except OSError:  # ENOSYS (before Linux 5.2), EPERM (not root in our mount namespace)
        return _sealed_copy(path)
    try:
        mount.mount_setattr(fd, mount.MOUNT_ATTR_RDONLY | mount.MOUNT_ATTR_NOSUID |
                            mount.MOUNT_ATTR_NODEV, mount.AT_EMPTY_PATH | mount.AT_RECURSIVE)
    except OSError:  # ENOSYS before Linux 5.12
        os.close(fd)
        return _sealed_copy(path)
    return fd


def _sealed_copy(path: str) -> int:
    import fcntl

    fd = os.memfd_create("barque-runtime", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            while os.sendfile(fd, src, None, 1 << 20):
                pass
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK |
                    fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def exec_sealed(path: str, argv: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with path run from a sealed copy (argv[0] as given: Python finds
    its prefix from it, the copy having no useful path of its own)."""
    os.execve(sealed_fd(path), argv, env)
