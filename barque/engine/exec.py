"""`docker exec`: a new process in a running container, through the OCI runtime's `exec`
(which joins the container's namespaces and cgroup, and proxies a terminal itself)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from barque.engine import spec
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
        raise EngineError(f"container {record.id} is not running", 1, 409)
    if state["Status"] == "paused":
        raise EngineError(f"Container {record.id} is paused, unpause the container before "
                          "exec", 1, 409)
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


def run(engine: Engine, container_id: str, process: dict[str, Any], detach: bool) -> int:
    """Run the process with our stdio (the runtime proxies a terminal); its exit status.
    The runtime's own errors are told apart from the process's through its JSON log."""
    directory = engine.paths.container_dir(container_id)
    fd, path = tempfile.mkstemp(prefix=".exec-", suffix=".json", dir=directory)
    log = path[:-5] + ".log"
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(process, f)
        argv = [find_runtime(), "--root", engine.paths.runtime_root, "--log", log,
                "--log-format", "json", "exec", "--process", path]
        if detach:
            argv.append("--detach")
        argv.append(container_id)
        quiet = subprocess.DEVNULL if detach else None
        proc = subprocess.run(argv, stdin=quiet, stdout=quiet, stderr=quiet)
        error = _last_error(log) if proc.returncode != 0 else None
    finally:
        for name in (path, log):
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
    if error is not None:
        # The runtime has printed its error on our stderr already; only the status is left
        # to give, Docker's: 127 for a command not found, else 126.
        from barque.engine.lifecycle import exit_code_of

        code = exit_code_of(error)
        return 126 if code == 125 else code
    return proc.returncode


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
