"""`docker exec`: a new process in a running container, through the OCI runtime's `exec`
(which joins the container's namespaces and cgroup, and proxies a terminal itself)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from barque.engine import events, spec
from barque.engine.context import Engine, EngineError, find_runtime
from barque.engine.spec import merge_env
from barque.engine.users import RootfsError, resolve_user

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def process_for(engine: Engine, ref: str, command: list[str], *, env: list[str],
                user: str | None, workdir: str | None, tty: bool,
                privileged: bool = False) -> tuple[str, dict[str, Any]]:
    """(container id, the OCI process to run), from the container's own config.json."""
    record = engine.find(ref)
    state = engine.state(record)
    if not state["Running"]:
        raise EngineError(f"Container {record.id} is not running", 1, 409)
    if state["Status"] == "paused":
        raise EngineError(f"Container {ref} is paused, unpause the container before exec",
                          1, 409)  # dockerd names the container as it was given
    if not command:
        raise EngineError("No exec command specified", 1, 400)
    bundle = engine.paths.container_dir(record.id)
    with open(os.path.join(bundle, "config.json"), "rb") as f:
        config = json.load(f)
    process = dict(config["process"])
    process["args"] = list(command)
    process["terminal"] = tty
    process.pop("consoleSize", None)
    process["env"] = merge_env(list(process.get("env") or []), env)
    if tty and not any(e.startswith("TERM=") for e in process["env"]):
        process["env"].append("TERM=xterm")
    if workdir:
        if not workdir.startswith("/"):
            raise EngineError(f"the working directory '{workdir}' is invalid, it needs to be an "
                              "absolute path", 1, 400)
        process["cwd"] = workdir
    if user is not None:
        try:
            resolved = resolve_user(config["root"]["path"], user)
        except RootfsError as e:
            raise EngineError(str(e), 126) from None
        process["user"] = {"uid": resolved.uid, "gid": resolved.gid}
        if resolved.additional_gids:
            process["user"]["additionalGids"] = resolved.additional_gids
        if resolved.uid != 0 and not privileged:
            process["capabilities"] = {"bounding": process["capabilities"]["bounding"]}
    if privileged:
        from barque.engine.spec_security import host_bounding_caps

        caps = host_bounding_caps()
        process["capabilities"] = {k: list(caps) for k in ("bounding", "effective",
                                                           "permitted")}
    return record.id, process


class Execution:
    """A `runtime exec` under way. Its stdio is never ours (Docker gives the process pipes): a
    terminal is the runtime's own pty, proxied; otherwise `stdin` (with `interactive`, else
    /dev/null), `stdout` and `stderr` are pipes for the caller to copy. Detached, the output
    is dropped, as by Docker.

    `pty` (rows, cols), for a terminal process of a caller without a terminal of its own (the
    Engine API's exec): the runtime proxies between the process's pty and one of ours, whose
    master is `self.master` for the caller to copy, and resize() resizes both."""

    def __init__(self, engine: Engine, container_id: str, process: dict[str, Any], *,
                 detach: bool, interactive: bool, exec_id: str | None = None,
                 pty: tuple[int, int] | None = None) -> None:
        directory = engine.paths.container_dir(container_id)
        self._record = engine.find(container_id)
        self._engine = engine
        self._detach = detach  # its end is not seen here: no exec_die
        # exec_id: made by created() (the API's exec create); else created here, as `exec`.
        self.id = exec_id or created(engine, container_id, process)
        events.container(engine, self._record, f"exec_start: {_command(process)}",
                         execID=self.id)
        fd, self._path = tempfile.mkstemp(prefix=".exec-", suffix=".json", dir=directory)
        self._log = self._path[:-5] + ".log"
        self._pid_file = self._path[:-5] + ".pid"
        self.master: int | None = None
        slave: int | None = None
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(process, f)
            argv = [find_runtime(), "--root", engine.paths.runtime_root, "--log", self._log,
                    "--log-format", "json", "exec", "--process", self._path,
                    "--pid-file", self._pid_file]
            if detach:
                argv.append("--detach")
            argv.append(container_id)
            if pty is not None and process.get("terminal") and not detach:
                self.master, slave = _open_pty(*pty)
                stdio: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave,
                                         "start_new_session": True}
            else:
                stdio = _stdio(detach, interactive, bool(process.get("terminal")))
            self.proc = subprocess.Popen(argv, **stdio)
        except BaseException:
            if self.master is not None:
                os.close(self.master)
            self._clean()
            raise
        finally:
            if slave is not None:
                os.close(slave)  # the runtime's now: the master reads EIO once it is gone

    def pid(self) -> int:
        """The process's host pid, once the runtime has written it (else 0)."""
        try:
            with open(self._pid_file) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def wait_started(self, timeout: float = 10.0) -> int:
        """Until the process is about to run (the runtime wrote its pid) or the runtime
        ended (it failed, or the process came and went); its pid, or 0."""
        import time

        deadline = time.monotonic() + timeout
        while not (pid := self.pid()) and self.proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.005)
        return pid

    def resize(self, rows: int, cols: int) -> None:
        """Our pty's size; the runtime copies it to the process's pty on SIGWINCH (runc's
        behaviour too: its stdin is a terminal)."""
        import signal

        from barque.linux.terminal import set_size

        if self.master is None:
            raise EngineError("the exec has no terminal", 1, 400)
        set_size(self.master, rows, cols)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGWINCH)

    def start_failure(self) -> str | None:
        """Once the process runs (the runtime wrote its pid) or the runtime has ended: if it
        ended without starting it, its error in dockerd's words ("OCI runtime exec failed:
        exec failed: unable to start container process: ...: unknown"), else None. What it
        wrote on the pipes is dropped then: containerd's shim copies an exec's output only
        once it started, so Docker never shows the runtime's own line."""
        if self.wait_started() or self.proc.poll() in (None, 0) or self.pid():
            return None
        error = _last_error(self._log)
        if error is None:
            return None
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self.proc.stdout = self.proc.stderr = None
        return f"OCI runtime exec failed: {error}: unknown"

    def wait(self) -> int:
        """The process's exit status; for the runtime's own failure, Docker's: 126, whatever
        the words (dockerd's exec start sets 127 for a missing command, then 126 for any
        failure to start)."""
        try:
            code = self.proc.wait()
            error = _last_error(self._log) if code != 0 else None
        finally:
            self._clean()
        if error is not None:
            code = 126
        if not self._detach:
            events.container(self._engine, self._record, "exec_die", execID=self.id,
                             exitCode=str(code))
        return code

    def abandon(self) -> None:
        """We are going (interrupted): the runtime carries on without its temporary files."""
        self._clean()

    def _clean(self) -> None:
        for name in (self._path, self._log, self._pid_file):
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass


def created(engine: Engine, container_id: str, process: dict[str, Any]) -> str:
    """A new exec's ID, its exec_create event logged (POST /containers/{id}/exec)."""
    exec_id = os.urandom(32).hex()
    events.container(engine, engine.find(container_id), f"exec_create: {_command(process)}",
                     execID=exec_id)
    return exec_id


def _command(process: dict[str, Any]) -> str:
    """dockerd's words for it: a space after the program even without arguments."""
    args = [str(a) for a in process.get("args") or [""]]
    return f"{args[0]} {' '.join(args[1:])}"


def _open_pty(rows: int, cols: int) -> tuple[int, int]:
    """A pty pair, raw (the bytes pass as they are, both ways), of that size."""
    import tty

    from barque.linux.terminal import set_size

    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        if rows > 0 and cols > 0:
            set_size(master, rows, cols)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def _stdio(detach: bool, interactive: bool, terminal: bool) -> dict[str, Any]:
    if terminal and not detach:
        # The runtime copies between our stdio and the process's new pty (in a session of
        # its own); without -i it must not read our input. Its stderr is only its own: a
        # pipe, for its error to be told from a start's failure (start_failure).
        return {"stdin": None if interactive else subprocess.DEVNULL,
                "stderr": subprocess.PIPE}
    # Without a terminal of its own, the process would still share our session and so our
    # controlling terminal (/dev/tty, TIOCSTI): the runtime starts in a new session, as
    # Docker's exec does (so, as with Docker, ^C leaves the process running).
    if detach:
        return {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                "stderr": subprocess.DEVNULL, "start_new_session": True}
    return {"stdin": subprocess.PIPE if interactive else subprocess.DEVNULL,
            "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "start_new_session": True}


def _last_error(log: str) -> str | None:
    last = None
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                    last = str(entry.get("msg", ""))
    except FileNotFoundError:
        return None
    return last


def hostname(engine: Engine, ref: str) -> str:
    record = engine.find(ref)
    return spec.hostname_of(record.id, record.config)
