"""Host file descriptors left open for a child, as a careless caller of the runtime or the
CLI would: fds 7, 8, 10 and 251 on a file holding a secret, some inheritable (no O_CLOEXEC),
and, for --preserve-fds, fds 3 and 4 meant for the container."""

from __future__ import annotations

import os
import re

LEAKED = (7, 8, 10, 251)


def leaking(secret_file: str, preserved: int = 0):  # -> a preexec_fn
    """A preexec_fn opening the leaked fds (and 3.. for `preserved`) in the child. Use it with
    close_fds=False: subprocess would close them otherwise, as pass_fds cannot name fds the
    parent (pytest) may be using."""
    def setup() -> None:
        for i, fd in enumerate(tuple(range(3, 3 + preserved)) + LEAKED):
            tmp = os.open(secret_file, os.O_RDONLY if i % 2 else os.O_RDWR)
            os.dup2(tmp, fd, inheritable=True)  # no O_CLOEXEC: it survives execve
            if tmp != fd:
                os.close(tmp)
        os.set_inheritable(LEAKED[-1], False)  # one with O_CLOEXEC, as a control
    return setup


def listed_fds(ls_output: str) -> dict[int, str]:
    """{fd: target} from busybox `ls -l /proc/self/fd/`, without the one fd ls itself reads
    the directory by (shown with no target, or as /proc/<pid>/fd)."""
    fds, own = {}, []
    for line in ls_output.splitlines():
        m = re.match(r"l[rwx-]{9} .* (\d+)(?: -> (.*))?$", line)
        if not m:
            continue
        target = m.group(2) or ""
        if not target or re.fullmatch(r"/proc/\d+/fd", target):
            own.append(int(m.group(1)))
        else:
            fds[int(m.group(1))] = target
    assert len(own) <= 1, ls_output
    return fds


def is_file(target: str, path: str) -> bool:
    """Whether an fd target the container lists is the host file `path`. A file outside the
    container's root shows by its path from the real root, which in a chrooted test run (the
    cgroup v2 guest runs us below /newroot) has a prefix that our own view lacks."""
    return target == path or target.endswith(path)
