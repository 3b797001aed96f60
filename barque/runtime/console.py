"""process.terminal: a pty from the container's own devpts, its master sent to the caller."""

from __future__ import annotations

import fcntl
import os

from barque.linux import mount as m
from barque.linux import terminal
from barque.runtime.errors import RuntimeFailure


def attach_new_pty(process: dict, console_fd: int | None, bind_dev_console: bool) -> None:
    """Open a pty, send its master to the console socket and make the slave this process's
    controlling terminal and stdio (the caller is a session leader already)."""
    if console_fd is None:
        raise RuntimeFailure("a terminal was requested but there is no console socket")
    master, slave = os.openpty()
    if bind_dev_console:
        if not os.path.exists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        m.mount(os.ttyname(slave), "/dev/console", "bind", m.MS_BIND)
    size = process.get("consoleSize")
    if size:
        terminal.set_size(master, int(size.get("height", 0)), int(size.get("width", 0)))
    terminal.send_fd(console_fd, master, "/dev/ptmx")
    os.close(master)
    os.close(console_fd)
    fcntl.ioctl(slave, terminal.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
