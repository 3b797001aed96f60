"""Running a container in the foreground, the way `docker run` does, with an OCI runtime.

A container lives in `<root>/containers/<id>/` (the OCI bundle: config.json, rootfs/, plus
Barque's container.json and the runtime's log). The runtime (barque-runtime, or any runc-CLI
runtime via BARQUE_RUNTIME) keeps its state under `<runroot>/runtime`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

from barque.engine import images
from barque.engine.bundle import BundleError, RunOptions, create_bundle
from barque.image import oci_layout as ol
from barque.image.store import ImageError, ImageStore
from barque.linux.locks import locked_dir
from barque.storage import snapshot

DEFAULT_ROOT = "/var/lib/barque"
DEFAULT_RUNROOT = "/run/barque"
RUNTIME_NAME = "barque-runtime"

# Docker's container name rule (daemon/names): a leading alphanumeric, then [a-zA-Z0-9_.-].
_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# Signals passed on to the runtime, which passes them on to the container (docker's sig-proxy).
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# Typed at a terminal these reach the whole foreground process group, runtime included.
_TTY_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


class EngineError(Exception):
    """A failure of Barque rather than of the container: `docker run` exits 125 for these,
    126/127 when the runtime could not invoke or find the container's command."""

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Paths:
    root: str = DEFAULT_ROOT
    runroot: str = DEFAULT_RUNROOT

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def runtime_root(self) -> str:
        return os.path.join(self.runroot, "runtime")


def find_runtime() -> str:
    """BARQUE_RUNTIME (a path or a name on PATH), else barque-runtime beside this Python's
    scripts (a venv need not be on PATH), else barque-runtime on PATH."""
    wanted = os.environ.get("BARQUE_RUNTIME")
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise EngineError(f'BARQUE_RUNTIME: runtime "{wanted}" not found')
        return found
    beside = os.path.join(os.path.dirname(sys.executable), RUNTIME_NAME)
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which(RUNTIME_NAME)
    if found is None:
        raise EngineError(f'OCI runtime "{RUNTIME_NAME}" not found: is barque installed?')
    return found


def _container_meta(container_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(container_dir, "container.json"), "rb") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def create_container_dir(paths: Paths, image: str, name: str | None,
                         image_id: str = "") -> tuple[str, str]:
    """Reserve a new container id (and name): returns (id, container dir)."""
    if name is not None and not _NAME_RE.match(name):
        raise EngineError(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    name = name.lstrip("/") if name else None
    os.makedirs(paths.containers, mode=0o700, exist_ok=True)
    with locked_dir(paths.containers):
        if name is not None:
            for other in os.listdir(paths.containers):
                meta = _container_meta(os.path.join(paths.containers, other))
                if meta.get("Name") == "/" + name:
                    raise EngineError(
                        f'Conflict. The container name "/{name}" is already in use by container '
                        f'"{other}". You have to remove (or rename) that container to be able '
                        "to reuse that name."
                    )
        container_id = secrets.token_hex(32)
        while container_id[:12].isdigit():
            # As moby does: the short id becomes the hostname, which must not be all digits.
            container_id = secrets.token_hex(32)
        container_dir = os.path.join(paths.containers, container_id)
        os.mkdir(container_dir, 0o700)
        meta = {
            "Id": container_id,
            # Docker names start with "/"; unnamed containers have none until Barque makes them.
            "Name": "/" + name if name else "",
            "Image": image,
            "ImageID": image_id,
            "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        ol.atomic_write(os.path.join(container_dir, "container.json"), ol.canonical_json(meta))
    return container_id, container_dir


def _runtime_error(log_path: str) -> str | None:
    """The last error the runtime logged (runc's JSON log lines), or None if it logged none."""
    last = None
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic"):
                    last = str(entry.get("msg", ""))
    except FileNotFoundError:
        return None
    return last


def _start_failure(message: str) -> EngineError:
    """Docker's exit codes for a container that could not start (cli runStartContainerErr)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        code = 127
    elif "permission denied" in lowered or "is a directory" in lowered:
        code = 126
    else:
        code = 125
    return EngineError(f"OCI runtime run failed: {message}", code)


def _in_terminal_foreground() -> bool:
    """True when a terminal's keyboard signals (^C, ^\\) already reach our process group."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _wait_forwarding_signals(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the runtime, passing signals sent to Barque on to it (it relays them to the
    container). ^C at a terminal is not forwarded: the kernel sent it to the runtime too."""
    signals = list(_FORWARDED)
    if not _in_terminal_foreground():
        signals += _TTY_SIGNALS

    def forward(signum: int, _frame: FrameType | None) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in signals}
    tty_previous = {s: signal.signal(s, signal.SIG_IGN) for s in _TTY_SIGNALS if s not in previous}
    try:
        return proc.wait()
    finally:
        for s, handler in {**previous, **tty_previous}.items():
            signal.signal(s, handler)


def run_container(
    paths: Paths,
    image: str,
    options: RunOptions,
    *,
    name: str | None = None,
    remove: bool = False,
    interactive: bool = False,
    runtime: str | None = None,
) -> int:
    """`docker run` without -d: create the container, run it attached, return its exit code.
    Its stdout and stderr are ours; stdin too with `interactive` (-i), else /dev/null.

    Raises EngineError (exit code 125, or 126/127 for an uninvocable/missing command)."""
    runtime_path = runtime or find_runtime()
    store = images.open_store(paths.root)
    try:
        return _run_with_store(paths, store, image, options, runtime_path, name=name,
                               remove=remove, interactive=interactive)
    finally:
        store.close()


def _announce_pull(name: str) -> None:
    sys.stderr.write(f"Unable to find image '{name}' locally\n")
    sys.stderr.flush()


def _run_with_store(paths: Paths, store: ImageStore, image_name: str, options: RunOptions,
                    runtime_path: str, *, name: str | None, remove: bool,
                    interactive: bool) -> int:
    try:
        image = images.find_or_pull(store, image_name, on_pull=_announce_pull)
    except ImageError as e:
        raise EngineError(str(e)) from None
    container_id, container_dir = create_container_dir(paths, image_name, name, image.id)
    try:
        with store.writing():  # the collector waits until the hold is recorded
            store.hold(container_id, image)
        rootfs = snapshot.prepare(_snapshot_dir(container_dir), store.lowers(image))
        create_bundle(container_dir, container_id, store.config(image), rootfs, options)
    except BaseException as e:
        # A container that could not be created leaves nothing behind, as with Docker.
        _cleanup(store, container_id, container_dir, remove=True)
        if isinstance(e, BundleError | ImageError | snapshot.SnapshotError):
            raise EngineError(str(e)) from None
        raise
    try:
        os.makedirs(paths.runtime_root, mode=0o700, exist_ok=True)
        log_path = os.path.join(container_dir, "runtime.log")
        argv = [
            runtime_path,
            "--root", paths.runtime_root,
            "--log", log_path,
            "--log-format", "json",
            "run", "--bundle", container_dir, container_id,
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(argv, stdin=None if interactive else subprocess.DEVNULL)
        except OSError as e:
            raise EngineError(f"cannot run the OCI runtime {runtime_path}: {e.strerror}") from None
        status = _wait_forwarding_signals(proc)
        if status < 0:  # the runtime itself was killed: report it as a shell would
            return 128 - status
        if status != 0:
            error = _runtime_error(log_path)
            if error is not None:
                raise _start_failure(error)
        return status
    finally:
        _cleanup(store, container_id, container_dir, remove)


def _snapshot_dir(container_dir: str) -> str:
    return os.path.join(container_dir, "snapshot")


def _remove_container(store: ImageStore, container_id: str, container_dir: str) -> None:
    """Delete the container's snapshot and dir; the image hold is released only once its
    layers are no longer mounted (raises SnapshotError, keeping the rest, if still mounted)."""
    snapshot.remove(_snapshot_dir(container_dir))
    shutil.rmtree(container_dir, ignore_errors=True)
    store.release(container_id)


def _cleanup(store: ImageStore, container_id: str, container_dir: str, remove: bool) -> None:
    """After `run`: remove the container or unmount its snapshot, never masking the run's
    own outcome with a traceback (a leftover is reported on stderr)."""
    try:
        if remove:
            _remove_container(store, container_id, container_dir)
        else:
            snapshot.Snapshot(_snapshot_dir(container_dir)).unmount()
    except snapshot.SnapshotError as e:
        sys.stderr.write(f"barque: cleaning up container {container_id[:12]}: {e}\n")


def find_container(paths: Paths, text: str) -> tuple[str, str, dict[str, Any]]:
    """(id, dir, metadata) of the container named `text`: its name, full ID or ID prefix."""
    matches = []
    try:
        names = os.listdir(paths.containers)
    except FileNotFoundError:
        names = []
    for cid in names:
        meta = _container_meta(os.path.join(paths.containers, cid))
        if cid == text or meta.get("Name") == "/" + text.lstrip("/"):
            return cid, os.path.join(paths.containers, cid), meta
        if text and cid.startswith(text):
            matches.append((cid, os.path.join(paths.containers, cid), meta))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise EngineError(f"multiple IDs found with provided prefix: {text}", 1)
    raise EngineError(f"No such container: {text}", 1)


@contextmanager
def _locked_container(container_dir: str, text: str) -> Iterator[None]:
    """One Barque process at a time works on a container's snapshot (export, rm)."""
    try:
        fd = os.open(container_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise EngineError(f"No such container: {text}", 1) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(container_dir, "container.json")):
            raise EngineError(f"No such container: {text}", 1)  # removed while we waited
        yield
    finally:
        os.close(fd)


def export_container(paths: Paths, text: str, out: IO[bytes]) -> None:
    """`docker export`: the container's filesystem (image plus its changes) as a tar."""
    from barque.storage.rootfs_export import ExportError

    _, container_dir, meta = find_container(paths, text)
    store = images.open_store(paths.root)
    try:
        with _locked_container(container_dir, text):
            _export_locked(store, container_dir, meta, text, out)
    except (ImageError, snapshot.SnapshotError, ExportError) as e:
        raise EngineError(str(e), 1) from None
    finally:
        store.close()


def _export_locked(store: ImageStore, container_dir: str, meta: dict[str, Any], text: str,
                   out: IO[bytes]) -> None:
    from barque.storage.rootfs_export import export_rootfs

    image = store.get(str(meta.get("ImageID", "")))
    snap = snapshot.Snapshot(_snapshot_dir(container_dir))
    if not os.path.isdir(snap.dir):
        raise EngineError(f"container {text} has no filesystem (its snapshot is missing)", 1)
    was_mounted = os.path.ismount(snap.merged)
    rootfs = snap.prepare(store.lowers(image))
    try:
        export_rootfs(rootfs, out)
    finally:
        if not was_mounted:
            snap.unmount()


def _runtime_status(paths: Paths, runtime_path: str, container_id: str) -> str | None:
    """The runtime's status of the container ("running", "stopped", …), None if the runtime
    does not know it; EngineError if the runtime cannot tell."""
    if not os.path.isdir(os.path.join(paths.runtime_root, container_id)):
        return None  # runc's layout: one state dir per container under --root
    try:
        proc = subprocess.run([runtime_path, "--root", paths.runtime_root, "state",
                               container_id], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise EngineError(f"the OCI runtime did not answer for {container_id[:12]}", 1) from None
    if proc.returncode != 0:
        raise EngineError(f"cannot get the state of {container_id[:12]}: "
                          f"{proc.stderr.decode(errors='replace').strip()}", 1)
    try:
        return str(json.loads(proc.stdout).get("status"))
    except ValueError:
        return None


def remove_container(paths: Paths, text: str, *, force: bool = False) -> str:
    """`docker rm [-f]`: delete a container, its snapshot and its hold on its image; a
    running one only with `force` (it is killed first). Returns the name as given."""
    container_id, container_dir, _ = find_container(paths, text)
    runtime_path = find_runtime()
    status = _runtime_status(paths, runtime_path, container_id)
    if status in ("running", "paused", "created") and not force:
        raise EngineError(
            f"cannot remove container \"{text}\": container is {status}: stop the container "
            "before removing or force remove", 1)
    if status is not None:
        proc = subprocess.run([runtime_path, "--root", paths.runtime_root, "delete",
                               "--force", container_id], capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise EngineError(f"could not kill container {text}: "
                              f"{proc.stderr.decode(errors='replace').strip()}", 1)
    store = images.open_store(paths.root)
    try:
        with _locked_container(container_dir, text):
            _remove_container(store, container_id, container_dir)
    except snapshot.SnapshotError as e:
        raise EngineError(str(e), 1) from None
    finally:
        store.close()
    return text
