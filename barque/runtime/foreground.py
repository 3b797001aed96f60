"""What `run` and `exec` do when not detached: forward signals, proxy a terminal, reap the
process and return its exit status the way a shell reports it."""

from __future__ import annotations

import _signal as signal  # signal.py would import enum: ~2 ms
import os

_NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGURG}


class Forwarder:
    """Until stopped, every signal the runtime gets goes to `pid` instead (runc's behaviour)."""

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        self._old: dict[int, object] = {}

    def install(self) -> None:
        for sig in signal.valid_signals():
            if sig in _NOT_FORWARDED or not 0 < sig < signal.SIGRTMIN:
                continue
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except (OSError, ValueError):
                pass

    def _handle(self, sig: int, _frame: object) -> None:
        if self.pid:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        else:
            self.pending.append(sig)

    def target(self, pid: int) -> None:
        self.pid = pid
        for sig in self.pending:
            os.kill(pid, sig)
        self.pending.clear()


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def reap(pid: int) -> int:
    """Wait for pid (we are its parent or its subreaper), reaping any other orphans too."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
        if got == pid:
            return exit_status(status)


class TtyProxy:
    """Copy between our stdio and a pty master while the container runs."""

    def __init__(self, master: int) -> None:
        self.master = master
        self._saved: list | None = None

    def start(self) -> None:
        from barque.linux import terminal

        if os.isatty(0):
            self._saved = terminal.make_raw(0)
            rows, cols = terminal.get_size(0)
            terminal.set_size(self.master, rows, cols)
            signal.signal(signal.SIGWINCH, self._resize)

    def _resize(self, _sig: int, _frame: object) -> None:
        from barque.linux import terminal

        rows, cols = terminal.get_size(0)
        terminal.set_size(self.master, rows, cols)

    def pump(self, pid: int) -> int:
        """Copy until the terminal closes (the container exited); return its status."""
        import select

        fds = [self.master, 0]
        while self.master in fds:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO once the last slave fd is closed
                    data = b""
                if data:
                    os.write(1, data)
                else:
                    fds.remove(self.master)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(self.master, data)
                else:
                    fds.remove(0)
        return reap(pid)

    def stop(self) -> None:
        from barque.linux import terminal

        if self._saved is not None:
            terminal.restore(0, self._saved)
        os.close(self.master)
