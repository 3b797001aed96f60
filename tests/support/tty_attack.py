"""The controlling-terminal attack (escape 2 of issue 8), for tests: a static TIOCSTI injector
that a container runs, and a pty that plays the admin's terminal.

A process in the admin's session can open /dev/tty and push input into the terminal with
TIOCSTI (no capability needed on one's own controlling terminal): the admin's shell then runs
what the container typed. A process in a session of its own gets EPERM (without
CAP_SYS_ADMIN) on the fds it was handed, and ENXIO from /dev/tty."""

from __future__ import annotations

import os
import select
import subprocess
import time

from tests.support.tools import require

# TIOCSTI "PWNED\n" into each of its stdio descriptors and into /dev/tty, reporting each result,
# and its session: "sid=0" in a container means the session of someone outside it.
INJECTOR_C = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
static const char *inject(int fd)
{
	for (const char *p = "PWNED\n"; *p; p++)
		if (ioctl(fd, TIOCSTI, p) < 0)
			return strerror(errno);
	return "injected";
}
int main(void)
{
	int tty = open("/dev/tty", O_RDWR), tty_errno = errno;
	printf("sid=%d pid=%d\n", (int)getsid(0), (int)getpid());
	for (int fd = 0; fd < 3; fd++)
		printf("fd %d: %s\n", fd, inject(fd));
	printf("/dev/tty: %s\n", tty < 0 ? strerror(tty_errno) : inject(tty));
	return 0;
}
"""


def build_injector(directory: str) -> str:
    """Compile the injector (static: it runs in a busybox root) into directory; its path."""
    require("gcc")
    src = os.path.join(directory, "tiocsti.c")
    exe = os.path.join(directory, "tiocsti")
    with open(src, "w") as f:
        f.write(INJECTOR_C)
    build = subprocess.run(["gcc", "-static", "-O", "-o", exe, src], capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stderr
    return exe


def in_pty(argv: list[str], marker: bytes = b"", answer: bytes = b"",
           timeout: float = 60) -> tuple[bytes, int]:
    """Run argv on a new pty (its controlling terminal, argv the session leader); once
    `marker` shows, type `answer`. (output, exit status)."""
    import pty

    import pytest

    try:
        pid, master = pty.fork()
    except OSError as e:  # the cgroup v2 guest has no pty devices (as test_terminal skips)
        pytest.skip(f"this machine gives the test no pseudo-terminal: {e}")
    if pid == 0:
        os.execv(argv[0], argv)
    output, typed = b"", not marker
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            if not typed and marker in output:
                os.write(master, answer)
                typed = True
        else:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return output, os.waitstatus_to_exitcode(status)


def admin_shell(command: str) -> list[str]:
    """The admin's shell on the pty: runs `command`, then reads its next line from the
    terminal. A line injected by the container would be that line; the test types "nothing"
    once it sees COMMAND-DONE (use in_pty(..., b"COMMAND-DONE", b"nothing\\n"))."""
    return ["/bin/sh", "-c", f'{command}; echo COMMAND-DONE; read line; echo "GOT:$line"']
