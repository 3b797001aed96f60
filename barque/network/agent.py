"""`python -m barque.network.agent --root R --runroot RR`: the network agent of one runroot.

A warm process that keeps pyroute2 loaded (~0.1 s to import, on every `run` otherwise) and
runs barque.network.links' operations on request, each in a thread of its own (a thread that
enters a container's netns never serves another request). Its files are under
<runroot>/netagent/ (see service.py); requests come from linkops.py, which runs an operation
in-process whenever the agent does not answer, so nothing depends on it being there.

It serves only callers in its own network and mount namespaces (a netns path or a link name
means something else elsewhere: the caller then does the work itself). Once started it stays,
as the default bridge does (until a reboot, or SIGTERM): an agent that left after a quiet
minute made the next `run` pay pyroute2's import in-process (~0.1 s wall, and more CPU than
Docker's whole run). daemon.json's `network-agent-idle` (seconds) makes it leave after that
long without a request instead; 0, the default, keeps it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time

from barque.network import service

DIRNAME = "netagent"
DEFAULT_IDLE = 0.0  # stays
REQUEST_LIMIT = 1 << 16
OPS = ("ensure_bridge", "delete_bridge", "add_veth", "attach", "delete_link", "link_exists")


def state_dir(runroot: str) -> str:
    return os.path.join(runroot, DIRNAME)


def namespaces() -> list[list[int]]:
    """The calling thread's network and mount namespaces, as (dev, inode) pairs (a thread
    may have entered a container's netns: netns.entered)."""
    result = []
    for kind in ("net", "mnt"):
        st = os.stat(f"/proc/thread-self/ns/{kind}")
        result.append([st.st_dev, st.st_ino])
    return result


class _Stop(Exception):
    pass


class Agent:
    def __init__(self, directory: str, idle: float) -> None:
        self.directory = directory
        self.idle = idle
        self.namespaces = namespaces()
        self.uid = os.geteuid()
        self.lock = threading.Lock()
        self.busy = 0
        self.last = time.monotonic()

    def serve(self, listener: socket.socket) -> None:
        """Accept until idle (no request for `idle` seconds, none in progress; never when
        `idle` is 0) or SIGTERM."""
        while True:
            left = None
            if self.idle > 0:
                with self.lock:
                    left = self.last + self.idle - time.monotonic()
                    if left <= 0 and self.busy == 0:
                        return
                left = max(left, 0.05)
            listener.settimeout(left)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with self.lock:
                self.busy += 1
                self.last = time.monotonic()
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def drain(self, timeout: float = 5.0) -> None:
        """Let the requests in progress finish (an operation cut in two leaves half a veth)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.busy == 0:
                    return
            time.sleep(0.01)

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(10.0)
                if service.peer_uid(conn) != self.uid:
                    return
                reply = self.handle(_read_request(conn))
                conn.sendall(json.dumps(reply).encode() + b"\n")
        except Exception:
            pass  # a client gone: it falls back on its own
        finally:
            with self.lock:
                self.busy -= 1
                self.last = time.monotonic()

    def handle(self, request: object) -> dict[str, object]:
        if not isinstance(request, dict):
            return {"unsupported": "bad request"}
        if request.get("ns") != self.namespaces:
            return {"unsupported": "another namespace"}
        op, args = request.get("op"), request.get("args")
        if op not in OPS or not isinstance(args, dict):
            return {"unsupported": f"unknown operation {op!r}"}
        from barque.network import links

        try:
            return {"result": getattr(links, str(op))(**args)}
        except OSError as e:
            if e.errno is None:
                return {"error": "OSError", "message": str(e)}
            return {"error": "OSError", "errno": e.errno, "message": e.strerror,
                    "filename": e.filename}
        except ValueError as e:
            return {"error": "ValueError", "message": str(e)}
        except Exception as e:  # not links' own words: the caller redoes it to get its own
            return {"unsupported": f"{type(e).__name__}: {e}"}


def _read_request(conn: socket.socket) -> object:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > REQUEST_LIMIT:
            return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def idle_of(root: str) -> float:
    from barque.network import config

    try:
        return config.load(root).agent_idle
    except Exception:
        return DEFAULT_IDLE


def main(argv: list[str] | None = None) -> int:
    args = service.parse_args("barque.network.agent", argv)
    directory = state_dir(os.path.abspath(args.runroot))

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pid_fd = -1
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        pid_fd = service.own_pidfile(directory, args.pid_fd)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        agent = Agent(directory, idle_of(args.root))
        # Warm before listening: until then callers find no one and do the work themselves.
        import pyroute2  # noqa: F401

        from barque.network import links  # noqa: F401
        listener = service.listen(dir_fd)
    except BaseException as e:
        service.tell_ready(args.ready_fd, e)
        if pid_fd >= 0 and not isinstance(e, service.HelperError):
            service.remove_files(directory, pid_fd)
        return 1
    service.tell_ready(args.ready_fd)
    try:
        agent.serve(listener)
    except _Stop:
        pass
    finally:
        # Clients from here on find no socket (and do the work themselves); then the lock goes.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        service.remove_files(directory, -1)
        listener.close()
        agent.drain()
        os.close(pid_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
