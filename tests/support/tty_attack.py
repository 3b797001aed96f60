"""The controlling-terminal attack (escape 2 of issue 8), for tests: a static TIOCSTI injector
that a container runs, and a pty that plays the admin's terminal.

A process in the admin's session can open /dev/tty and push input into the terminal with
TIOCSTI (no capability needed on one's own controlling terminal): the admin's shell then runs
what the container typed. A process in a session of its own gets EPERM (without
CAP_SYS_ADMIN) on the fds it was handed, and ENXIO from /dev/tty."""

from __future__ import annotations

import os
import subprocess

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
    from tests.support.ptys import run_in_pty

    return run_in_pty(argv, [(marker, answer)] if marker else [], timeout=timeout)


def admin_shell(command: str) -> list[str]:
    """The admin's shell on the pty: runs `command`, then reads its next line from the
    terminal. A line injected by the container would be that line; the test types "nothing"
    once it sees COMMAND-DONE (use in_pty(..., b"COMMAND-DONE", b"nothing\\n"))."""
    return ["/bin/sh", "-c", f'{command}; echo COMMAND-DONE; read line; echo "GOT:$line"']
