"""Session keyrings: each container gets its own instead of sharing its caller's."""

from __future__ import annotations

import errno

from barque.linux.libc import syscall

KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> None:
    """Join (creating it) a new session keyring called `name`. Like runc, a kernel without
    keyrings (ENOSYS) is not an error."""
    try:
        syscall("keyctl", KEYCTL_JOIN_SESSION_KEYRING, name.encode())
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
