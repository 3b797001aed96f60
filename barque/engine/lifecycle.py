"""Moving a container through Docker's states: start, stop, kill, restart, pause, unpause,
wait and remove. The container's process is the monitor's child; the engine talks to it
through the OCI runtime (kill, pause) and the monitor's files (engine/monitor.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from barque.engine import (
    attach,
    events,
    health,
    monitor,
    netsetup,
    nsmodes,
    spec,
    start_error,
    userns,
)
from barque.engine import state as st
from barque.engine.context import Engine, EngineError, find_runtime
from barque.engine.create import lowers_of, mount_from_record
from barque.engine.mounts import oci_mount
from barque.engine.records import ContainerRecord
from barque.engine.spec_security import SecurityError
from barque.engine.users import RootfsError
from barque.engine.volumes import VolumeError, copy_up
from barque.image import oci_layout as ol
from barque.image.store import ImageError
from barque.storage import snapshot
from barque.storage.overlayfs import OverlayError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    import threading
    from typing import Any

DEFAULT_STOP_TIMEOUT = 10
_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
            "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
            "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
            "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26,
            "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31}

# In the monitor dir: which start the dir (and the monitor in it) belongs to.


def parse_signal(text: str) -> int:
    """"KILL", "SIGKILL", "9" -> 9, as Docker's signal.ParseSignal."""
    name = text.strip().upper().removeprefix("SIG")
    if name.isdigit():
        number = int(name)
        if 0 < number <= 64:
            return number
    elif name in _SIGNALS:
        return _SIGNALS[name]
    elif name.startswith("RTMIN") or name.startswith("RTMAX"):
        offset = name[5:]
        base = 34 if name.startswith("RTMIN") else 64
        try:
            number = base + int(offset or 0)
            if 34 <= number <= 64:
                return number
        except ValueError:
            pass
    raise EngineError(f"Invalid signal: {text}", 1, 400)


def call_runtime(engine: Engine, *args: str,
                 check: bool = True) -> subprocess.CompletedProcess:
    """The OCI runtime on the engine's runtime root (runc's command line)."""
    proc = subprocess.run([find_runtime(), "--root", engine.paths.runtime_root, *args],
                          capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().removeprefix("barque-runtime: ")
        raise EngineError(message or f"the OCI runtime failed: {' '.join(args)}", 1)
    return proc


def _delete_leftover(engine: Engine, container_id: str) -> None:
    """The runtime's container, if a monitor died before deleting it (runc's layout: a state
    dir per container under --root; none, and the runtime need not be asked)."""
    state_dir = os.path.join(engine.paths.runtime_root, container_id)
    if os.path.isdir(state_dir) and not _deleted_by_monitor(engine, container_id, state_dir):
        call_runtime(engine, "delete", "--force", container_id, check=False)


def _deleted_by_monitor(engine: Engine, container_id: str, state_dir: str) -> bool:
    """A monitor whose exit is claimed writes its final state before it deletes the
    runtime's container (monitor/README.md, `claim-exit`): that delete is waited for, not
    raced by a second one (nor by a new container of the same id). True once it is gone."""
    live = monitor.read_state(engine.paths.monitor_dir(container_id)) or {}
    pid = int(live.get("MonitorPid") or 0)
    if live.get("Status") != "exited" or not monitor.alive(pid):
        return False
    deadline = time.monotonic() + 60
    while os.path.isdir(state_dir) and monitor.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    return not os.path.isdir(state_dir)


def exit_code_of(message: str) -> int:
    """Docker's exit codes for a container that could not start (cli runStartContainerErr)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "is a directory" in lowered:
        return 126
    return 125


# --- start -----------------------------------------------------------------------------------

def start(engine: Engine, ref: str, attach: bool = False) -> ContainerRecord:
    """Start a created or exited container (a running one is left alone, as by Docker).
    With `attach`, the monitor waits for the first attach client before starting it."""
    record = engine.find(ref)
    # Two starts at once: the second finds it running. The record as it is under the lock:
    # an `update` (which takes it too) has either reached the record or the monitor.
    with _locked(engine, record.id, ref) as record:
        return _start_locked(engine, record, attach)


def _start_locked(engine: Engine, record: ContainerRecord, attach: bool) -> ContainerRecord:
    state = engine.state(record)
    if state["Status"] == "paused":
        raise EngineError("cannot start a paused container, try unpause instead", 1, 409)
    if state["Running"]:
        return record
    try:
        runtime = find_runtime()
        _delete_leftover(engine, record.id)
        sandbox = netsetup.setup(engine, record)
    except BaseException:
        # `run` left the snapshot mounted for this start (create's keep_mounted): a start
        # that fails leaves it unmounted, as any failed start does.
        _unmount_snapshot_quietly(engine, record)
        raise
    try:
        return _start_in_sandbox(engine, record, attach, runtime, sandbox)
    finally:
        sandbox.close_fds()  # the monitor holds its own copies


def _start_in_sandbox(engine: Engine, record: ContainerRecord, attach: bool, runtime: str,
                      sandbox: netsetup.Sandbox) -> ContainerRecord:
    try:
        bundle, made = _write_bundle(engine, record, sandbox)
    except EngineError:  # a donor of its namespaces that no longer runs
        _unmount_quietly(engine, record)
        raise
    except (spec.SpecError, RootfsError, SecurityError, snapshot.SnapshotError, ImageError,
            VolumeError, OSError) as e:
        _unmount_quietly(engine, record)
        bad_input = isinstance(e, spec.SpecError | RootfsError | SecurityError)
        raise EngineError(str(e), status=400 if bad_input else 500) from None
    mdir = engine.paths.monitor_dir(record.id)
    shutil.rmtree(mdir, ignore_errors=True)
    os.makedirs(mdir, mode=0o700)
    run_id = os.urandom(8).hex()
    with open(engine.paths.run_id_file(record.id), "w") as f:
        f.write(run_id)
    args = health.check_args(record.config)
    if args is not None:  # the check's process, for the monitor to run
        health.write_process(mdir, made, args)
    os.makedirs(engine.paths.runtime_root, mode=0o700, exist_ok=True)
    launching = _launch_spec(engine, record, bundle, runtime, attach, run_id,
                             tuple(sandbox.hold_fds))
    events.starting(engine, record, attach)
    try:
        monitor.launch(launching)
    except (monitor.MonitorError, subprocess.TimeoutExpired) as e:
        message = start_error.docker_words(str(e))
        code = exit_code_of(message)
        record.state = {**record.state, "Status": record.state.get("Status", "created"),
                        "Error": message, "ExitCode": code if code != 125 else 128}
        engine.records.save_state(record.id, record.state)
        _unmount_quietly(engine, record)
        raise EngineError(message, code, 500) from None
    live = monitor.read_state(mdir) or {}
    record.state = {**record.state, "Status": "running", "Error": "", "Paused": False,
                    "StartedAt": live.get("StartedAt") or st.now(), "ExitCode": 0,
                    "OOMKilled": False, "FinishedAt": record.state.get("FinishedAt",
                                                                       st.ZERO_TIME)}
    engine.records.save_state(record.id, record.state)
    if launching.events is None:  # else the monitor logs every start of this container
        events.container(engine, record, "start")
    return record


def _log_options(host_config: dict[str, Any]) -> tuple[int, int]:
    from barque.engine.units import parse_bytes

    log_config = (host_config.get("LogConfig") or {}).get("Config") or {}
    size = parse_bytes(str(log_config.get("max-size", "0")) or "0")
    files = int(log_config.get("max-file", "1") or 1)
    return size, files


def _launch_spec(engine: Engine, record: ContainerRecord, bundle: str, runtime: str,
                 attach: bool, run_id: str, hold_fds: tuple[int, ...]) -> monitor.Launch:
    config, host_config = record.config, record.host_config
    size, files = _log_options(host_config)
    checked = health.check_args(config) is not None
    return monitor.Launch(
        container_id=record.id, bundle=bundle, dir=engine.paths.monitor_dir(record.id),
        runtime=runtime, runtime_root=engine.paths.runtime_root,
        runtime_log=os.path.join(bundle, "runtime.log"),
        # --log-driver none: the monitor keeps no log (`logs` refuses, as dockerd)
        log_file=None if (host_config.get("LogConfig") or {}).get("Type") == "none"
        else engine.paths.log_file(record.id), log_max_size=size, log_max_files=files,
        tty=bool(config.get("Tty")), stdin=bool(config.get("OpenStdin")),
        # dockerd closes stdin at the attach's end only without a TTY (CloseStdin && !TTY):
        # a detached `run -it` (its detach keys, or its client gone) leaves the shell running
        stdin_once=bool(config.get("StdinOnce")) and not config.get("Tty"),
        restart=monitor.restart_arg(host_config),
        wait_attach=attach, hold_fds=hold_fds,
        exit_command=monitor.cleanup_command(engine.paths.root, engine.paths.runroot,
                                             record.id, run_id),
        health=health.timing(config) if checked else None,
        # What only the monitor sees: a policy's restarts (`update` may set one while it
        # runs), health changes.
        events=events.monitor_args(engine, record))


def _write_bundle(engine: Engine, record: ContainerRecord,
                  sandbox: netsetup.Sandbox) -> tuple[str, dict[str, Any]]:
    """The container's dir with its config.json written; (the dir, the spec)."""
    store = engine.store
    image = store.get(record.image_id)
    bundle = engine.paths.container_dir(record.id)
    snap = snapshot.Snapshot(engine.paths.snapshot_dir(record.id))
    rootfs = snap.prepare(lowers_of(engine, record.id, image))
    id_maps = snap.idmap
    owner = userns.root_of(id_maps)
    user_mounts = [_resolve_mount(engine, entry, rootfs, owner) for entry in record.mounts]
    config, host_config = record.config, record.host_config
    hostname = spec.hostname_of(record.id, config)
    joins = nsmodes.joins(engine, record)
    user_path = nsmodes.user_join(joins, id_maps is not None)
    shm = nsmodes.shm_source(engine, record)
    nsmodes.mount_shm(engine, record, owner)
    made = spec.make_spec(record.id, config, host_config, rootfs, bundle, user_mounts,
                          network_path=sandbox.netns or _network_path(engine, record),
                          init_binary=_init_binary(), id_maps=id_maps,
                          joins={k: v for k, v in joins.items() if k in ("ipc", "pid")},
                          shm=shm, user_path=user_path)
    spec.write_etc_files(bundle, hostname, host_config, sandbox.hosts, sandbox.resolv_conf)
    if owner is not None:  # the container's root may write them, as in Docker's remap
        for name in ("hostname", "hosts", "resolv.conf"):
            os.chown(os.path.join(bundle, name), *owner, follow_symlinks=False)
    spec.make_workdir(rootfs, made["process"]["cwd"], owner)
    text = json.dumps(made, indent=2) + "\n"  # indented: people read config.json when debugging
    # Not durable, as the /etc files: each start writes it before the runtime reads it.
    ol.atomic_write(os.path.join(bundle, "config.json"), text.encode(), durable=False)
    return bundle, made


def _resolve_mount(engine: Engine, entry: dict[str, Any], rootfs: str,
                   owner: tuple[int, int] | None = None) -> dict[str, Any]:
    mount = mount_from_record(entry)
    if mount.type == "volume":
        volume, _ = engine.volumes.create(mount.source)  # a named volume removed since: again
        if not mount.no_copy:
            copy_up(rootfs, mount.target, volume.mountpoint)
        if owner is not None and os.lstat(volume.mountpoint).st_uid == 0:
            # As in the remapped root's own volumes dir of dockerd: its root may write there.
            os.chown(volume.mountpoint, *owner, follow_symlinks=False)
        return oci_mount(mount, volume.mountpoint)
    if mount.type == "bind" and mount.create_source:
        os.makedirs(mount.source, mode=0o755, exist_ok=True)
    return oci_mount(mount, mount.source)


def _network_path(engine: Engine, record: ContainerRecord) -> str | None:
    """--network container:X: X's network namespace, pinned for the run (nsmodes.pin)."""
    mode = str(record.host_config.get("NetworkMode") or "")
    if not mode.startswith("container:"):
        return None
    other = engine.find(mode.split(":", 1)[1])
    state = engine.state(other)
    if not state["Running"] or not state["Pid"]:
        raise spec.SpecError(f"cannot join network of a non running container: {other.id}")
    return nsmodes.pin(engine, record.id, "net", f"/proc/{state['Pid']}/ns/net")


def _init_binary() -> str | None:
    # Static binaries only: the container may have no C library for a dynamic one.
    for candidate in ("docker-init", "tini-static"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _unmount_quietly(engine: Engine, record: ContainerRecord) -> None:
    """After a run or a failed start: its network and its filesystem are unmade."""
    try:
        netsetup.teardown(engine, record)
    except Exception:  # a network left half-unmade is reclaimed by the next start or rm
        pass
    nsmodes.unmount_shm(engine, record.id)
    nsmodes.unpin(engine, record.id)
    _unmount_snapshot_quietly(engine, record)


def _unmount_snapshot_quietly(engine: Engine, record: ContainerRecord) -> None:
    try:
        snapshot.Snapshot(engine.paths.snapshot_dir(record.id)).unmount()
    except snapshot.SnapshotError:
        pass


# --- stop, kill, wait --------------------------------------------------------------------------

def wait_exit(engine: Engine, record: ContainerRecord, timeout: float | None) -> bool:
    """Wait until the container is no longer running (its monitor has finished); False on
    timeout. The monitor's exit is waited for through a pidfd, not by polling."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = engine.state(record)
        if not state["Running"] or state["Status"] == "dead":
            return True
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        live = monitor.read_state(engine.paths.monitor_dir(record.id)) or {}
        _wait_for_process(int(live.get("MonitorPid") or 0), 0.5 if left is None else
                          min(left, 0.5))


def restarts(engine: Engine, record: ContainerRecord) -> int:
    """The container's RestartCount now: what wait_run_end compares with. Also without a
    restart policy (`update` may give it one while it runs), then from the monitor's
    state.json alone: no state read beyond it."""
    if not _has_restart_policy(record):
        live = monitor.read_state(engine.paths.monitor_dir(record.id)) or {}
        return int(live.get("RestartCount") or 0)
    return int(engine.state(record)["RestartCount"])


def _has_restart_policy(record: ContainerRecord) -> bool:
    return (record.host_config.get("RestartPolicy") or {}).get("Name") not in (None, "", "no")


def wait_run_end(engine: Engine, record: ContainerRecord, restarts: int | None,
                 timeout: float | None) -> dict[str, Any] | None:
    """Until the present run ends: the container stops for good, or (given `restarts`, its
    RestartCount before) its restart policy begins a restart, as dockerd's waiters and
    attach streams end with each run. The state then, with that run's exit code (the
    monitor keeps it while the next run goes on); None on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    policy = _has_restart_policy(record)
    while True:
        state = engine.state(record)
        if not state["Running"] or state["Status"] == "dead":
            return state
        live = monitor.read_state(engine.paths.monitor_dir(record.id)) or {}
        if restarts is not None and int(live.get("RestartCount") or 0) > restarts:
            return {**state, "ExitCode": int(live.get("LastExitCode") or 0)}
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        # a restart's back-off may be 100 ms: looked for that often with a policy
        pause = 0.1 if policy and restarts is not None else 0.5
        _wait_for_process(int(live.get("MonitorPid") or 0), pause if left is None else
                          min(left, pause))


def attachable(engine: Engine, ref: str, *, stopped_too: bool = False) -> ContainerRecord:
    """The container to attach to (`docker attach`, POST /containers/{id}/attach): it must
    be running and not paused; `stopped_too`: or not running (the API's attach, as dockerd's:
    its stream begins with the next start, which logs the attach itself)."""
    record = engine.find(ref)
    state = engine.state(record)
    if not state["Running"]:
        if stopped_too:
            return record
        raise EngineError("You cannot attach to a stopped container, start it first", 1, 409)
    if state["Status"] == "paused":
        raise EngineError("You cannot attach to a paused container, unpause it first", 1, 409)
    events.container(engine, record, "attach")
    return record


def claim_exit(engine: Engine, record: ContainerRecord) -> attach.ExitClaim | None:
    """For an attached run or `start -a`, before attaching: the monitor's exit command is
    claimed, so that end_attached cleans up instead of a `container cleanup` process of the
    monitor's (which still runs if this process dies first). None: it could not be (the
    exit command will run)."""
    claim = attach.claim_exit(engine.paths.monitor_dir(record.id))
    if claim is not None:
        claim.run_id = _run_id(engine, record.id)
    return claim


def end_attached(engine: Engine, record: ContainerRecord, claim: attach.ExitClaim | None,
                 restarts: int | None = None) -> dict[str, Any]:
    """Once the attach stream has ended: the container's final state. With a claim, after
    all of `cleanup` is done here (unmounted; removed if it is an --rm one) and the monitor
    told so (its exit command does not run); without, unmounted here, the rest left to the
    monitor's exit command. Given `restarts` (wait_run_end): the end of this run, when its
    restart policy restarts it (the claim let go: the monitor's exit command cleans up at
    the end for good)."""
    state = wait_run_end(engine, record, restarts, None)
    assert state is not None
    if state["Running"]:  # restarting
        if claim is not None:
            claim.close()
        return state
    if claim is None:
        finish(engine, record)
        return engine.state(record)
    try:
        return _clean_up_claimed(engine, record, claim)
    finally:
        claim.close()  # without done(): the monitor's exit command does what is left


def _clean_up_claimed(engine: Engine, record: ContainerRecord,
                      claim: attach.ExitClaim) -> dict[str, Any]:
    """What `cleanup` does, while the monitor deletes the runtime's container; done() only
    once all of it succeeded."""
    state = engine.state(record)
    try:
        with _locked(engine, record.id, record.id):
            state = engine.state(record)
            if state["Running"] or _run_id(engine, record.id) not in (None, claim.run_id):
                return state  # started again meanwhile: the files are the new start's
            events.died(engine, record)
            _unmount_quietly(engine, record)  # overlaps the monitor's runtime delete
            if not claim.wait_deleted():
                return state  # the monitor died: whoever removes the container deletes
            if record.host_config.get("AutoRemove"):
                _remove_locked(engine, record, record.id, force=False, volumes=True)
    except EngineError as e:
        if e.status != 404:
            return state  # the exit command tries again
        claim.wait_deleted()  # removed by another command: nothing left but the delete
    claim.done()
    return state


def _end_waiting_monitor(engine: Engine, record: ContainerRecord) -> None:
    """A monitor still waiting for its first attach client (the client never came) has no
    container to watch end: it is ended here, by its own pid."""
    live = monitor.read_state(engine.paths.monitor_dir(record.id)) or {}
    pid = int(live.get("MonitorPid") or 0)
    if live.get("Status") == "created" and monitor.alive(pid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            return
        _wait_for_process(pid, 5.0)


def _wait_for_process(pid: int, timeout: float) -> None:
    import select

    try:
        fd = os.pidfd_open(pid) if pid > 0 else -1
    except OSError:
        fd = -1
    if fd < 0:
        time.sleep(min(timeout, 0.02))
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def stop(engine: Engine, ref: str, timeout: int | None = None,
         signal: str | None = None) -> ContainerRecord:
    """`docker stop`: the stop signal, then SIGKILL after the timeout; no restart follows."""
    record = engine.find(ref)
    state = engine.state(record)
    sig = parse_signal(signal or record.config.get("StopSignal") or "SIGTERM")
    if timeout is None:
        configured = record.config.get("StopTimeout")
        timeout = DEFAULT_STOP_TIMEOUT if configured is None else int(configured)
    if not state["Running"]:
        _stop_orphan(engine, record, sig, timeout)
        return record
    monitor.request_stop(engine.paths.monitor_dir(record.id))
    _signal(engine, record, state, sig)
    deadline = time.monotonic() + timeout
    wait_exit(engine, record, None if timeout < 0 else timeout)
    if engine.state(record)["Status"] == "dead":
        # The monitor died meanwhile (wait_exit ends there): its container may run on, with
        # no one left to end it or record its end.
        _stop_orphan(engine, record, sig, -1 if timeout < 0 else
                     max(0, round(deadline - time.monotonic())))
    if engine.state(record)["Running"]:
        _signal(engine, record, engine.state(record), 9)
        if not wait_exit(engine, record, 30):
            raise EngineError(f"cannot stop container: {ref}: tried to kill container, but did "
                              "not receive an exit event", 1)
        if engine.state(record)["Status"] == "dead":
            _stop_orphan(engine, record, 9, 0)
    events.died(engine, record)
    finish(engine, record)
    events.container(engine, record, "stop")
    return record


def _signal(engine: Engine, record: ContainerRecord, state: dict[str, Any], sig: int) -> None:
    if state["Status"] == "restarting":
        return  # between runs: the stop file alone keeps the monitor from starting it again
    call_runtime(engine, "kill", record.id, str(sig), check=False)
    events.container(engine, record, "kill", signal=str(sig))
    if state["Status"] == "paused":
        call_runtime(engine, "resume", record.id, check=False)
        record.state = {**record.state, "Paused": False}
        engine.records.save_state(record.id, record.state)


# --- a container whose monitor died -----------------------------------------------------------
# Its process runs on, reparented, with no one to record its end: the engine signals it
# through the OCI runtime (which knows its init by the runtime's state, not by a pid alone)
# and records the exit itself.

def _orphan_pidfd(engine: Engine, record: ContainerRecord) -> tuple[int, int]:
    """(pid, a pidfd of it) of the container's init when its monitor is gone but it is
    alive; (0, -1) when there is none."""
    if engine.state(record)["Status"] != "dead" or not os.path.isdir(
            os.path.join(engine.paths.runtime_root, record.id)):
        return 0, -1
    proc = call_runtime(engine, "state", record.id, check=False)
    try:
        info = json.loads(proc.stdout) if proc.returncode == 0 else {}
    except ValueError:
        info = {}
    pid = int(info.get("pid") or 0)
    if info.get("status") not in ("created", "running", "paused") or pid <= 0:
        return 0, -1
    try:
        fd = os.pidfd_open(pid)  # from here on a reused number cannot fool the wait
    except OSError:
        return 0, -1
    if info.get("status") == "paused":
        call_runtime(engine, "resume", record.id, check=False)
    return pid, fd


def _exited(pidfd: int, timeout: float | None) -> bool:
    """Has the process ended (within `timeout` seconds; None: however long it takes)?"""
    import select

    readable, _, _ = select.select([pidfd], [], [], timeout)
    return bool(readable)


def _signal_orphan(engine: Engine, record: ContainerRecord, sig: int) -> bool:
    """`kill` of an orphan: the signal delivered; SIGKILL also waits and records the end.
    False if the container has no live process."""
    pid, fd = _orphan_pidfd(engine, record)
    if fd < 0:
        return False
    try:
        call_runtime(engine, "kill", record.id, str(sig), check=False)
        if sig == 9 and _exited(fd, 10):
            _record_orphan_exit(engine, record, sig)
    finally:
        os.close(fd)
    return True


def _stop_orphan(engine: Engine, record: ContainerRecord, sig: int, timeout: int) -> None:
    """`stop` of an orphan (nothing to do without one): its stop signal, SIGKILL after
    `timeout`, then its exit recorded as Docker's 128+signal."""
    pid, fd = _orphan_pidfd(engine, record)
    if fd < 0:
        return
    try:
        call_runtime(engine, "kill", record.id, str(sig), check=False)
        if not _exited(fd, None if timeout < 0 else timeout):
            sig = 9
            call_runtime(engine, "kill", record.id, "9", check=False)
            if not _exited(fd, 30):
                raise EngineError(f"cannot stop container: {record.id}: tried to kill "
                                  "container, but did not receive an exit event", 1)
    finally:
        os.close(fd)
    _record_orphan_exit(engine, record, sig)


def _record_orphan_exit(engine: Engine, record: ContainerRecord, sig: int) -> None:
    """Its end, as the monitor would have written it (the exit status itself is lost with
    the monitor: the signal that ended it stands for it); the runtime's container and the
    mount go."""
    _delete_leftover(engine, record.id)
    record.state = {**record.state, "Status": "exited", "ExitCode": 128 + sig,
                    "FinishedAt": st.now(), "Paused": False,
                    "Error": record.state.get("Error") or "barque-monitor died"}
    engine.records.save_state(record.id, record.state)
    shutil.rmtree(engine.paths.monitor_dir(record.id), ignore_errors=True)
    events.died(engine, record)  # now: the dead monitor's files no longer say "dead"
    finish(engine, record)


def kill(engine: Engine, ref: str, signal: str = "KILL") -> ContainerRecord:
    try:
        record = engine.find(ref)
    except EngineError as e:  # dockerd wraps every kill error so
        raise EngineError(f"Cannot kill container: {ref}: {e}", e.exit_code, e.status) from None
    sig = parse_signal(signal)
    state = engine.state(record)
    if not state["Running"] and _signal_orphan(engine, record, sig):
        events.container(engine, record, "kill", signal=str(sig))
        return record
    if not state["Running"]:
        raise EngineError(f"Cannot kill container: {ref}: Container {record.id} is not "
                          "running", 1, 409)
    monitor.request_stop(engine.paths.monitor_dir(record.id))
    if state["Status"] == "restarting":
        return record
    proc = call_runtime(engine, "kill", record.id, str(sig), check=False)
    if proc.returncode != 0 and engine.state(record)["Running"]:
        raise EngineError(f"Cannot kill container: {ref}: "
                          f"{proc.stderr.decode(errors='replace').strip()}", 1)
    events.container(engine, record, "kill", signal=str(sig))
    if sig == 9:
        wait_exit(engine, record, 10)
        events.died(engine, record)
        finish(engine, record)
    return record


def cleanup(engine: Engine, ref: str, run_id: str | None = None) -> None:
    """After the monitor's last word: unmount, and remove an --rm container (a removal that
    another command already made is not an error). `run_id`: the start whose monitor ended;
    once the container has been started again (perhaps not running yet: `start -a` waits for
    its client), the files are the new start's."""
    try:
        record = engine.find(ref)
        with _locked(engine, record.id, ref):  # not while another command starts it again
            if engine.state(record)["Running"]:
                return
            if run_id is not None and _run_id(engine, record.id) not in (None, run_id):
                return
            events.died(engine, record)
            finish(engine, record)
            if record.host_config.get("AutoRemove"):
                _remove_locked(engine, record, ref, force=False, volumes=True)
    except EngineError:
        pass  # removed meanwhile (the CLI's own --rm), or nothing left to do


def _run_id(engine: Engine, container_id: str) -> str | None:
    try:
        with open(engine.paths.run_id_file(container_id)) as f:
            return f.read().strip()
    except OSError:
        return None


def finish(engine: Engine, record: ContainerRecord) -> None:
    """After a run: the snapshot is unmounted (the container's files stay in its upper
    dir)."""
    if not engine.state(record)["Running"]:
        _unmount_quietly(engine, record)


def wait(engine: Engine, ref: str, condition: str = "not-running",
         cancel: threading.Event | None = None) -> dict[str, Any]:
    """`docker wait` and /wait, for a run of any front end: block until the container is
    not running (not-running), until the end of its next run (next-exit: the present one
    if it runs, else the next start's, even one that ended before we looked again) or
    until it is removed (removed); its state then. `cancel` set: return at once (the
    state as it is)."""
    record = engine.find(ref)
    if condition not in ("not-running", "next-exit", "removed"):
        raise EngineError(f"invalid condition: \"{condition}\"", 1, 400)
    if condition == "next-exit" and not _next_run(engine, record, cancel):
        return engine.state(record)
    run_id = _run_id(engine, record.id)
    # dockerd's not-running and next-exit end with the run, also when a restart follows
    count = None if condition == "removed" else restarts(engine, record)
    while (ended := wait_run_end(engine, record, count, 0.5)) is None:
        if cancel is not None and cancel.is_set():
            return engine.state(record)
    if ended["Running"]:
        return ended
    state = engine.state(record)  # read at once: an --rm container's exit command removes
    _finish_run(engine, record, run_id)
    if condition == "removed":
        while engine.records.get(record.id) is not None and not _pause(cancel):
            pass
    return state


def _next_run(engine: Engine, record: ContainerRecord, cancel: threading.Event | None) -> bool:
    """Until the container runs, or a start after this call has run already (its run ID
    changed: it ended between two looks); False when cancelled or removed meanwhile."""
    before = _run_id(engine, record.id)
    while True:
        status = engine.state(record)["Status"]
        if status in ("running", "paused", "restarting"):
            return True
        run_id = _run_id(engine, record.id)
        live = monitor.read_state(engine.paths.monitor_dir(record.id))
        # A start under way has its new run ID before its monitor's first state: not an
        # ended run yet. "created": a start -a waiting for its client.
        if run_id not in (None, before) and live is not None and \
                live.get("Status") not in (None, "created"):
            return True
        if engine.records.get(record.id) is None or _pause(cancel):
            return False


def _finish_run(engine: Engine, record: ContainerRecord, run_id: str | None) -> None:
    """finish() for a waiter: under the container's lock and only while no other start
    has begun (its network and snapshot are the new run's)."""
    try:
        with _locked(engine, record.id, record.id):
            if _run_id(engine, record.id) in (None, run_id):
                finish(engine, record)
    except EngineError:
        pass  # removed meanwhile (an --rm run's exit command)


def _pause(cancel: threading.Event | None) -> bool:
    """A poll's pause; True once cancelled."""
    if cancel is None:
        time.sleep(0.05)
        return False
    return cancel.wait(0.05)


def restart(engine: Engine, ref: str, timeout: int | None = None) -> ContainerRecord:
    stop(engine, ref, timeout)
    record = start(engine, ref)
    events.container(engine, record, "restart")
    return record


# --- pause ---------------------------------------------------------------------------------------

def pause(engine: Engine, ref: str) -> ContainerRecord:
    record = engine.find(ref)
    state = engine.state(record)
    if state["Status"] == "paused":
        raise EngineError(f"Container {record.id} is already paused", 1, 409)
    if state["Status"] != "running":
        raise EngineError(f"Container {record.id} is not running", 1, 409)
    call_runtime(engine, "pause", record.id)
    record.state = {**record.state, "Paused": True}
    engine.records.save_state(record.id, record.state)
    events.container(engine, record, "pause")
    return record


def unpause(engine: Engine, ref: str) -> ContainerRecord:
    record = engine.find(ref)
    if engine.state(record)["Status"] != "paused":
        raise EngineError(f"Container {record.id} is not paused", 1, 409)
    call_runtime(engine, "resume", record.id)
    record.state = {**record.state, "Paused": False}
    engine.records.save_state(record.id, record.state)
    events.container(engine, record, "unpause")
    return record


# --- remove ------------------------------------------------------------------------------------

def remove(engine: Engine, ref: str, force: bool = False, volumes: bool = False) -> str:
    """`docker rm [-f] [-v]`: the container, its snapshot, its monitor's files, its hold on
    its image, and with `volumes` its anonymous volumes."""
    record = engine.find(ref)
    try:
        with _locked(engine, record.id, ref):
            _remove_locked(engine, record, ref, force, volumes)
    except EngineError as e:
        if e.status != 404 or engine.records.get(record.id) is None:
            raise
        # A removal killed after it removed the container's dir, before its record: its
        # container is dead and unmounted; the steps left are idempotent, so finish them
        # (without the dir's lock: making the dir again would race with another remover).
        _remove_files_and_record(engine, record, volumes)
    return ref


def _unmount_below(path: str) -> None:
    """Whatever a killed command left mounted in the container's dir (its snapshot, an
    overlay probe), deepest first."""
    from barque.linux.mountinfo import unescape

    prefix = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [unescape(line.split(" ", 5)[4]) for line in f]
    for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
        try:
            snapshot.unmount(point)
        except OverlayError as e:
            raise EngineError(str(e), 1) from None


@contextmanager
def _locked(engine: Engine, container_id: str, ref: str) -> Iterator[ContainerRecord]:
    """One process at a time tears a container down (the CLI's --rm and the monitor's
    cleanup may race); the second finds it gone. Starts and updates take it too. Yields
    the record as it is now."""
    from barque.linux import locks

    try:
        fd = locks.open_dir(engine.paths.container_dir(container_id))
    except FileNotFoundError:
        raise EngineError(f"No such container: {ref}", 1, 404) from None
    with locks.held(fd):
        record = engine.records.get(container_id)
        if record is None:
            raise EngineError(f"No such container: {ref}", 1, 404)
        yield record


locked = _locked  # for engine/update.py


def _remove_locked(engine: Engine, record: ContainerRecord, ref: str, force: bool,
                   volumes: bool) -> None:
    state = engine.state(record)
    if state["Running"] and not force:
        # dockerd 20.10's words
        if state["Status"] == "paused":
            raise EngineError(f"You cannot remove a paused container {record.id}. Unpause and "
                              "then stop the container before attempting removal or force "
                              "remove", 1, 409)
        raise EngineError(f"You cannot remove a running container {record.id}. Stop the "
                          "container before attempting removal or force remove", 1, 409)
    if state["Running"]:
        monitor.request_stop(engine.paths.monitor_dir(record.id))
        _signal(engine, record, state, 9)
        if not wait_exit(engine, record, 30):
            raise EngineError(f"could not kill container {ref}", 1)
        events.died(engine, record)
    else:
        _end_waiting_monitor(engine, record)
    _remove_files_and_record(engine, record, volumes)


def _remove_files_and_record(engine: Engine, record: ContainerRecord, volumes: bool) -> None:
    _delete_leftover(engine, record.id)
    netsetup.remove_container(engine, record)
    try:
        _unmount_below(engine.paths.container_dir(record.id))
        snapshot.remove(engine.paths.snapshot_dir(record.id))
    except snapshot.SnapshotError as e:
        raise EngineError(str(e), 1) from None
    shutil.rmtree(engine.paths.container_dir(record.id), ignore_errors=True)
    shutil.rmtree(engine.paths.monitor_dir(record.id), ignore_errors=True)
    engine.records.delete(record.id)
    events.container(engine, record, "destroy")
    engine.store.release(record.id)
    if volumes:
        for entry in record.mounts:
            if entry.get("anonymous"):
                try:
                    engine.volumes.remove(entry["source"], engine.users_of_volume(
                        entry["source"]))
                except VolumeError:
                    pass  # in use by another container, or gone: Docker keeps going too
