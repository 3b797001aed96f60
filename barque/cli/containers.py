"""The container and volume commands (their arguments are in container_args). Each handler
takes the parsed arguments and an Engine and returns the exit code; errors are printed the
way the docker CLI prints them."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import time
from contextlib import contextmanager

from barque.cli.run_options import OptionError, create_request
from barque.engine import attach as att
from barque.engine import lifecycle
from barque.engine.context import Engine, EngineError
from barque.engine.create import create
from barque.engine.records import ContainerRecord

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any


class CommandError(Exception):
    """A client-side error (printed as is, exit 1)."""


class NoTTYError(Exception):
    """`-it` with a stdin that is not a terminal: the docker CLI's CheckTty refuses it before
    anything is made (its words, exit 1)."""

    def __init__(self) -> None:
        super().__init__("the input device is not a TTY")


def _no_tty(ns: argparse.Namespace) -> bool:
    """CheckTty's case: a terminal asked for (-t) with our stdin (-i), which is none."""
    return ns.tty and ns.interactive and not ns.detach and not os.isatty(0)


class FlagError(EngineError):
    """A value of run's/create's flags refused before the engine is asked: `docker create`
    exits 125 for these (its own checks), 1 for the daemon's errors. `shape` says whose check
    Docker's is, and so how it is printed (barque.cli.main): "daemon" ("Error response from
    daemon: X."), "client" (the docker CLI's own: "X."), "flag" (pflag's: "X", no full stop);
    each followed by the help line."""

    def __init__(self, message: str, shape: str = "daemon") -> None:
        super().__init__(message)
        self.shape = shape


def _flag_error(e: OptionError) -> FlagError:
    from barque.cli.run_options import ClientCheck, FlagValueError

    shape = "flag" if isinstance(e, FlagValueError) else \
        "client" if isinstance(e, ClientCheck) else "daemon"
    return FlagError(str(e), shape)


def look_up(engine: Engine, name: str) -> ContainerRecord:
    """The docker CLI's ContainerInspect before logs, exec, port, attach: a missing container
    is its client's own "Error: No such container: X" (not the daemon's words)."""
    try:
        return engine.find(name)
    except EngineError as e:
        if e.status == 404:
            raise CommandError(client_words(e, "container", name)) from None
        raise


def _check_reference(ns: argparse.Namespace) -> None:
    """The docker CLI parses the image reference itself before it asks the daemon (its
    ParseAnyReference: a full image ID is a reference too). `run` reports the error as its
    reportError does; `create` prints it bare and exits 1."""
    from barque.image import reference as refs

    if refs.is_image_id(ns.image):
        return
    try:
        refs.parse(ns.image)
    except refs.ReferenceError as e:
        if ns.handler == "cmd_run":
            raise FlagError(str(e), "client") from None
        raise CommandError(str(e)) from None


def _daemon_error(e: EngineError) -> None:
    sys.stderr.write(f"Error response from daemon: {e}\n")


def client_words(e: EngineError, kind: str, name: str) -> str:
    """An API error as the docker CLI's client shows it for the calls it wraps (inspect and
    remove of a container, volume, network, image; a copy's `container:path`): a 404 in its
    own words, "Error: No such KIND: NAME" (NAME as given), anything else as the daemon's."""
    if e.status == 404:
        return f"Error: No such {kind}: {name}"
    return f"Error response from daemon: {e}"


def _each(names: list[str], action: Any, failed: list[str] | None = None,
          kind: str | None = None) -> int:
    """Run `action(name)` for every name, printing the name on success, as `docker stop a b`
    does; any failure makes the exit status 1 but does not stop the others (their names are
    appended to `failed`). `kind`: the docker CLI's client says what is missing itself."""
    status = 0
    for name in names:
        try:
            action(name)
            print(name)
        except EngineError as e:
            sys.stderr.write((client_words(e, kind, name) if kind else
                              f"Error response from daemon: {e}") + "\n")
            status = 1
            if failed is not None:
                failed.append(name)
    return status


# --- run, create, start ---------------------------------------------------------------------

def _announce_pull(name: str) -> None:
    sys.stderr.write(f"Unable to find image '{name}' locally\n")
    sys.stderr.flush()


def _create(ns: argparse.Namespace, engine: Engine, keep_mounted: bool = False,
            check_tty: bool = False) -> ContainerRecord:
    from barque.cli.net_options import localhost_dns_warnings

    try:
        image, config, host_config, networking_config = create_request(ns)
    except OptionError as e:
        raise _flag_error(e) from None
    if check_tty and _no_tty(ns):  # after the flags' checks, before anything is made
        raise NoTTYError()
    from barque.cli import cidfile

    try:
        with cidfile.holding(ns.cidfile) as cid:
            _check_reference(ns)
            warnings: list[str] = []
            record = create(engine, image, config, host_config, name=ns.name,
                            on_pull=_announce_pull, networking_config=networking_config,
                            warnings=warnings, keep_mounted=keep_mounted, pull=ns.pull,
                            platform=getattr(ns, "platform", None) or None)
            cid.write(record.id)
    except cidfile.CidFileError as e:
        if ns.handler == "cmd_run":
            raise FlagError(str(e), "client") from None
        raise CommandError(str(e)) from None
    for warning in warnings + localhost_dns_warnings(host_config.get("Dns") or []):
        sys.stderr.write(f"WARNING: {warning}\n")
    return record


def cmd_create(ns: argparse.Namespace, engine: Engine) -> int:
    print(_create(ns, engine).id)
    return 0


def cmd_run(ns: argparse.Namespace, engine: Engine) -> int:
    """`docker run`: exits with the container's status; 125 (126, 127) for Barque's errors."""
    if not ns.detach:
        ns.detach_sequence = _detach_sequence(ns, 125)  # before anything is made
    try:
        record = _create(ns, engine, keep_mounted=True, check_tty=True)  # started right away
    except NoTTYError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    try:
        return _start_run(ns, engine, record)
    except EngineError as e:
        e.at_start = True  # docker run's ContainerStart failed: no help line
        raise


def _start_run(ns: argparse.Namespace, engine: Engine, record: ContainerRecord) -> int:
    if ns.detach:
        # the docker CLI prints the ID once created, while the start goes on: also before a
        # start's error
        print(record.id, flush=True)
        try:
            lifecycle.start(engine, record.id)
        except EngineError:
            if ns.rm:
                _remove_quietly(engine, record.id)
            raise
        return 0
    code: int | None = 0
    try:
        code = _run_attached(ns, engine, record)
        return 0 if code is None else code  # detached: docker run's exit status is 0
    finally:
        if ns.rm and code is not None:  # a detached one is still running: its monitor's
            _remove_quietly(engine, record.id)  # clean-up removes it once it exits


def _remove_quietly(engine: Engine, container_id: str) -> None:
    try:
        lifecycle.remove(engine, container_id, force=True, volumes=True)
    except EngineError as e:
        if e.status != 404:  # the monitor's cleanup removed it first: nothing left to do
            sys.stderr.write(f"barque: removing container {container_id[:12]}: {e}\n")


def _run_attached(ns: argparse.Namespace, engine: Engine,
                  record: ContainerRecord) -> int | None:
    lifecycle.start(engine, record.id, attach=True)
    # -a: the streams not named are not shown (docker run's attach asks for the others only)
    with open(os.devnull, "wb") as hidden:
        outputs = (1 if record.config.get("AttachStdout", True) else hidden.fileno(),
                   2 if record.config.get("AttachStderr", True) else hidden.fileno())
        return _attach_and_wait(engine, record, stdin=ns.interactive, sig_proxy=ns.sig_proxy,
                                claim=True, detach_keys=ns.detach_sequence, outputs=outputs)


def _detach_sequence(ns: argparse.Namespace, status: int) -> bytes:
    """--detach-keys, else the docker CLI config's detachKeys, else ctrl-p,ctrl-q: the
    bytes, or dockerd's 400 in its words (exit `status`) before anything is done."""
    from barque.engine import detach_keys

    spec = ns.detach_keys or detach_keys.configured()
    try:
        return detach_keys.parse(spec)
    except detach_keys.DetachKeysError as e:
        raise EngineError(str(e), status, 400) from None


def _attach_and_wait(engine: Engine, record: ContainerRecord, stdin: bool,
                     sig_proxy: bool, claim: bool = False,
                     detach_keys: bytes | None = None,
                     outputs: tuple[int, int] = (1, 2)) -> int | None:
    """`claim`: this command started the container and cleans up after it (the monitor's
    exit command is left to do it only if we die first). None: detached by the detach keys
    (watched for on a TTY's stdin only, as Docker's), the container left running."""
    monitor_dir = engine.paths.monitor_dir(record.id)
    tty = bool(record.config.get("Tty"))
    claimed = lifecycle.claim_exit(engine, record) if claim else None
    restarts = lifecycle.restarts(engine, record)  # the attach ends with this run
    try:
        sock = att.connect(monitor_dir)
    except BaseException:
        if claimed is not None:
            claimed.close()
        raise
    restore = _proxy_signals(engine, record) if sig_proxy and not tty else None
    terminal = _Terminal(monitor_dir) if tty and stdin and os.isatty(0) else None
    try:
        if terminal is not None:
            terminal.start()
        detached = att.pump(sock, tty, 0 if stdin else None, *outputs,
                            detach_keys=detach_keys if tty else None)
    except BaseException:
        if claimed is not None:
            claimed.close()
        raise
    finally:
        if terminal is not None:
            terminal.stop()
        if restore is not None:
            restore()
        sock.close()
    if detached:
        if claimed is not None:
            claimed.close()  # its exit is the monitor's to clean up after now
        return None
    state = lifecycle.end_attached(engine, record, claimed, restarts)
    if state["Error"]:
        # The monitor ran the container only once we attached: a failure to start shows here.
        code = int(state["ExitCode"])
        from barque.engine.start_error import docker_words

        raise EngineError(docker_words(str(state["Error"])), code if code in (126, 127) else 125)
    return int(state["ExitCode"])


def _proxy_signals(engine: Engine, record: ContainerRecord) -> Any:
    """docker's --sig-proxy: signals sent to the CLI go to the container."""
    def forward(signum: int, _frame: object) -> None:
        try:
            lifecycle.call_runtime(engine, "kill", record.id, str(signum), check=False)
        except EngineError:
            pass

    signals = [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT,
               signal.SIGQUIT]
    previous = {s: signal.signal(s, forward) for s in signals}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return restore


class _Terminal:
    """Our terminal in raw mode while attached to a container's tty, its size passed on."""

    def __init__(self, monitor_dir: str) -> None:
        self.monitor_dir = monitor_dir
        self.saved: list[Any] | None = None

    def start(self) -> None:
        from barque.linux import terminal

        self.saved = terminal.make_raw(0)
        self.resize()
        signal.signal(signal.SIGWINCH, lambda *_: self.resize())

    def resize(self) -> None:
        try:
            size = os.get_terminal_size(0)
            att.control(self.monitor_dir, f"resize {size.lines} {size.columns}")
        except (OSError, att.AttachError):
            pass

    def stop(self) -> None:
        from barque.linux import terminal

        signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        if self.saved is not None:
            terminal.restore(0, self.saved)


def cmd_start(ns: argparse.Namespace, engine: Engine) -> int:
    if ns.attach or ns.interactive:
        if len(ns.containers) > 1:
            raise CommandError("you cannot start and attach multiple containers at once")
        keys = _detach_sequence(ns, 1)
        record = lifecycle.start(engine, ns.containers[0], attach=True)  # running: as it is
        code = _attach_and_wait(engine, record, ns.interactive, True, claim=True,
                                detach_keys=keys)
        return 0 if code is None else code  # detached: 0, as the docker CLI's start
    failed: list[str] = []
    status = _each(ns.containers, lambda name: lifecycle.start(engine, name), failed)
    if failed:  # the docker CLI's summary after the daemon's errors
        sys.stderr.write(f"Error: failed to start containers: {', '.join(failed)}\n")
    return status


_NOT_ATTACHABLE = (("Paused", "You cannot attach to a paused container, unpause it first"),
                   ("Restarting", "You cannot attach to a restarting container, wait until "
                                  "it is running"))


def cmd_attach(ns: argparse.Namespace, engine: Engine) -> int:
    # The docker CLI inspects the container and checks its state itself (its words, bare).
    state = engine.state(look_up(engine, ns.container))
    if not state["Running"]:
        raise CommandError("You cannot attach to a stopped container, start it first")
    for key, words in _NOT_ATTACHABLE:
        if state.get(key):
            raise CommandError(words)
    keys = _detach_sequence(ns, 1)
    record = lifecycle.attachable(engine, ns.container)
    stdin = bool(record.config.get("OpenStdin")) and not ns.no_stdin
    code = _attach_and_wait(engine, record, stdin, ns.sig_proxy, detach_keys=keys)
    if code is None:  # the docker CLI's attach returns term.EscapeError: its words, exit 1
        sys.stderr.write("read escape sequence\n")
        return 1
    return code


def cmd_exec(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine import exec as ex

    args = list(ns.args)
    if args and args[0] == "--":
        args = args[1:]
    env_ns = argparse.Namespace(env=ns.env, env_file=ns.env_file)
    from barque.cli.run_options import environment

    try:
        env = environment(env_ns)
    except OptionError as e:
        raise CommandError(str(e)) from None
    if not args:
        raise CommandError("\"barque exec\" requires at least 2 arguments.")
    look_up(engine, ns.container)  # "not exist" first, as the docker CLI's dummy inspect
    if _no_tty(ns):
        raise CommandError(str(NoTTYError()))
    container_id, process = ex.process_for(engine, ns.container, args, env=env, user=ns.user,
                                           workdir=ns.workdir, tty=ns.tty,
                                           privileged=ns.privileged)
    from barque.engine import exec_terminal

    keys: bytes | None = _exec_detach_sequence(ns)
    # -it on our terminal: the process's terminal is proxied by us (exec_terminal), not by
    # the runtime, for the detach keys to be watched for
    if not (ns.tty and ns.interactive and not ns.detach and os.isatty(0)):
        keys = None
    execution = ex.Execution(engine, container_id, process, detach=ns.detach,
                             interactive=ns.interactive,
                             pty=exec_terminal.size(0) if keys is not None else None)
    try:
        failure = execution.start_failure()
        if failure is not None:
            execution.wait()
            if ns.detach:  # the docker CLI gets it as the start's answer
                raise EngineError(failure, 1)
            # attached, dockerd writes it on the stream's stdout; the CLI exits 126
            _write(1, f"{failure}\r\n".encode())
            return 126
        if keys is not None and execution.master is not None:
            if exec_terminal.proxy(execution, keys):
                exec_terminal.carry_on_detached(execution)  # the exec runs on; we are done
                sys.stderr.write("read escape sequence\n")  # the docker CLI's exec: its
                return 1  # term.EscapeError, printed, status 1
        else:
            _copy_stdio(execution.proc)
    except BaseException:
        execution.abandon()
        raise
    return execution.wait()


def _exec_detach_sequence(ns: argparse.Namespace) -> bytes:
    """As _detach_sequence, with dockerd's words at exec create (checked for every exec, the
    docker CLI sends its detach keys with each)."""
    from barque.engine import detach_keys

    spec = ns.detach_keys or detach_keys.configured()
    try:
        return detach_keys.to_bytes(spec)
    except detach_keys.DetachKeysError:
        raise EngineError(detach_keys.invalid_exec(spec), 1, 500) from None


def _copy_stdio(proc: Any) -> None:
    """Our stdin to the exec's stdin pipe (if it has one; in a thread of its own, so that a
    process that does not read cannot stop its output), its stdout and stderr pipes to ours,
    until both of those end."""
    import select

    if proc.stdin is not None:
        import threading

        pipe, proc.stdin = proc.stdin, None  # the thread's to close, at our EOF
        threading.Thread(target=_feed, args=(pipe,), daemon=True).start()
    outputs = {f.fileno(): target for f, target in ((proc.stdout, 1), (proc.stderr, 2)) if f}
    while outputs:
        ready, _, _ = select.select(list(outputs), [], [])
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                del outputs[fd]
            elif outputs[fd] >= 0 and not _write(outputs[fd], data):
                outputs[fd] = -1  # our reader is gone: drain the rest, as Docker does


def _feed(pipe: Any) -> None:
    while True:
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        if not data or not _write(pipe.fileno(), data):
            break
    pipe.close()  # the process's stdin reaches EOF


def _write(fd: int, data: bytes) -> bool:
    try:
        att.write_all(fd, data)
        return True
    except OSError:
        return False


def cmd_top(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli import formatting as fmt
    from barque.engine.top import top

    table = top(engine, ns.container, list(ns.ps_args))
    lines = ["\t".join(row) for row in (table.titles, *table.processes)]
    sys.stdout.write(fmt.tabwrite(lines, minwidth=20, tabwidth=1, padding=3))
    return 0


def cmd_explain(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli.explain import cmd_explain as explain

    return explain(ns, engine)


def cmd_diff(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine.diff import container_changes

    for kind, path in container_changes(engine, ns.container):
        print(f"{kind} {path}")
    return 0


def _split_container_path(arg: str) -> tuple[str, str] | None:
    """docker cp's CONTAINER:PATH (a path with no colon, or starting with / or ., is local)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None
    name, _, path = arg.partition(":")
    return name, path


def cmd_cp(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine import copy

    src, dst = _split_container_path(ns.source), _split_container_path(ns.dest)
    if (src is None) == (dst is None):
        raise CommandError("must specify at least one container source" if src is None else
                           "copying between containers is not supported")
    if src is not None:
        to_stdout = ns.dest == "-"  # the archive itself, as Docker writes it
        with _no_such_path(src[0], src[1]):
            copy.copy_from(engine, src[0], src[1], ns.dest, archive=ns.archive,
                           follow=ns.follow_link, out=sys.stdout.buffer if to_stdout else None)
        if to_stdout:
            sys.stdout.flush()
        elif not ns.quiet and sys.stderr.isatty():
            sys.stderr.write(f"Successfully copied to {ns.dest}\n")
    elif ns.source == "-":  # a tar on stdin, extracted into the directory DEST
        from barque.engine.archive import extract_to

        assert dst is not None
        if not _is_directory(engine, dst[0], dst[1]):
            raise CommandError(f'destination "{ns.dest}" must be a directory')
        extract_to(engine, dst[0], dst[1], sys.stdin.buffer, preserve_owner=ns.archive)
    else:
        assert dst is not None
        _lstat_source(ns.source)
        # A missing container (or directory): the docker CLI names the directory it
        # extracts into, the destination's parent when the destination is not there.
        with _no_such_path(dst[0], _parent(dst[1])):
            copy.copy_to(engine, dst[0], ns.source, dst[1], archive=ns.archive,
                         follow=ns.follow_link)
        if not ns.quiet and sys.stderr.isatty():
            sys.stderr.write(f"Successfully copied to {ns.dest}\n")
    return 0


@contextmanager
def _no_such_path(container: str, path: str) -> Iterator[None]:
    """The docker CLI's client turns the API's 404 for a copy into its own words."""
    try:
        yield
    except EngineError as e:
        if e.status != 404:
            raise
        raise CommandError(client_words(e, "container:path", f"{container}:{path}")) from None


def _lstat_source(source: str) -> None:
    """The docker CLI reads the host side itself: a missing source is its lstat's error."""
    path = os.path.abspath(source)
    try:
        os.lstat(path)
    except OSError as e:
        raise CommandError(f"lstat {path}: {(e.strerror or str(e)).lower()}") from None


def _parent(path: str) -> str:
    """archive.SplitPathDirEntry's directory of a container path."""
    import posixpath

    return posixpath.dirname(posixpath.normpath(path)) if path not in ("", "/") else "/"


def _is_directory(engine: Engine, ref: str, path: str) -> bool:
    """The docker CLI's check before `cp - C:PATH`: PATH (a symlink followed once, relative
    to its directory) is a directory; anything that cannot be stat'ed is not."""
    from barque.engine.archive import stat_path

    go_dir, go_symlink = 1 << 31, 1 << 27  # os.FileMode bits
    try:
        stat = stat_path(engine, ref, path)
        if stat.mode & go_symlink:
            target = stat.link_target
            if not target.startswith("/"):
                target = os.path.join(os.path.dirname(path.rstrip("/")) or "/", target)
            stat = stat_path(engine, ref, target)
    except EngineError:
        return False
    return bool(stat.mode & go_dir)


def cmd_commit(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine.commit import commit
    from barque.image import reference as refs

    if ns.reference:  # the docker client's own check, before it sends the request
        try:
            if refs.parse(ns.reference).digest:
                raise CommandError("refusing to create a tag with a digest reference")
        except refs.ReferenceError as e:
            raise CommandError(str(e)) from None
    image = commit(engine, ns.container, ns.reference, author=ns.author, message=ns.message,
                   changes=ns.change, pause=ns.pause)
    print(image.id)
    return 0


# --- stop, kill, restart, pause, rm, wait, rename ---------------------------------------------

def cmd_stop(ns: argparse.Namespace, engine: Engine) -> int:
    return _each(ns.containers, lambda n: lifecycle.stop(engine, n, ns.time, ns.signal))


def cmd_restart(ns: argparse.Namespace, engine: Engine) -> int:
    return _each(ns.containers, lambda n: lifecycle.restart(engine, n, ns.time))


def cmd_kill(ns: argparse.Namespace, engine: Engine) -> int:
    return _each(ns.containers, lambda n: lifecycle.kill(engine, n, ns.signal))


def cmd_pause(ns: argparse.Namespace, engine: Engine) -> int:
    return _each(ns.containers, lambda n: lifecycle.pause(engine, n))


def cmd_unpause(ns: argparse.Namespace, engine: Engine) -> int:
    return _each(ns.containers, lambda n: lifecycle.unpause(engine, n))


def cmd_rm(ns: argparse.Namespace, engine: Engine) -> int:
    """As the docker CLI (20.10): a missing container is "Error: No such container: X", and
    with -f it is said but not a failure."""
    status = 0
    for name in ns.containers:
        try:
            lifecycle.remove(engine, name, force=ns.force, volumes=ns.volumes)
            print(name)
        except EngineError as e:
            if e.status != 404:
                _daemon_error(e)
                status = 1
                continue
            sys.stderr.write(f"Error: {e}\n")
            status = status if ns.force else 1
    return status


def cmd_wait(ns: argparse.Namespace, engine: Engine) -> int:
    status = 0
    for name in ns.containers:
        try:
            print(lifecycle.wait(engine, name)["ExitCode"], flush=True)
        except EngineError as e:
            _daemon_error(e)
            status = 1
    return status


def cmd_rename(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine import naming

    try:
        naming.rename(engine, ns.container, ns.new_name)
    except EngineError as e:
        _daemon_error(e)  # and the docker CLI's own line
        raise CommandError(f"Error: failed to rename container named {ns.container}") from None
    return 0


def cmd_cleanup(ns: argparse.Namespace, engine: Engine) -> int:
    """What the monitor runs once a container has stopped for good (Podman's `container
    cleanup`): its filesystem unmounted, and the container removed if it was run with --rm."""
    lifecycle.cleanup(engine, ns.container, ns.run_id)
    return 0


def cmd_container_prune(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli import formatting as fmt

    if ns.filter:
        raise CommandError("container prune --filter is not supported yet")
    if not ns.force and not _confirm("This will remove all stopped containers."):
        return 0
    from barque.engine.system import prune_containers

    removed, reclaimed, errors = prune_containers(engine)
    for error in errors:
        sys.stderr.write(f"Error response from daemon: {error}\n")
    if removed:
        print("Deleted Containers:\n" + "\n".join(removed) + "\n")
    print(f"Total reclaimed space: {fmt.human_size(reclaimed)}")
    return 0


def _confirm(warning: str) -> bool:
    sys.stdout.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


# --- ps, inspect, logs -------------------------------------------------------------------------

PS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
            "{{.Ports}}\t{{.Names}}")
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
              "CreatedAt": "CREATED AT", "State": "STATE", "Size": "SIZE", "Labels": "LABELS",
              "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}
PS_FIELDS = ("ID", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "Status", "State",
             "Size", "Names", "Labels", "Mounts", "Networks", "LocalVolumes")  # ps_row's keys
PS_CONTEXT = "*formatter.ContainerContext"  # the Go type docker's errors name


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _size_text(size_rw: int, size_root: int) -> str:
    """The docker CLI's SIZE: "0B (virtual 1.99MB)"."""
    from barque.engine.units import human_size

    text = human_size(size_rw)
    return f"{text} (virtual {human_size(size_root)})" if size_root > 0 else text


@functools.cache
def _container_row() -> type[Any]:
    """The docker CLI's ContainerContext: ps_row's fields and the Label method (made on first
    use: gofmt is not loaded by commands that never format)."""
    from barque.cli import gofmt

    class ContainerRow(gofmt.GoStruct):
        METHODS = frozenset({"Label"})
        labels: dict[str, str] = {}

        def Label(self, name: str) -> str:  # noqa: N802 - the template's method name
            return str(self.labels.get(name, ""))

    return ContainerRow


def ps_row(summary: Any, no_trunc: bool, sizes: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """A listed container (engine.listing's ContainerSummary) as `ps`'s template fields."""
    row = _container_row()(_ps_fields(summary, no_trunc, sizes), PS_CONTEXT)
    row.labels = dict(summary.labels)
    return row


def _ps_fields(summary: Any, no_trunc: bool, sizes: tuple[int, int]) -> dict[str, Any]:
    from barque.cli import formatting as fmt
    from barque.cli import gofmt
    from barque.engine.netview import display_ports

    command = summary.command
    return {
        "ID": summary.id if no_trunc else summary.id[:12],
        "Image": summary.image,
        "Command": gofmt.quote(command if no_trunc else _ellipsis(command, 20)),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(summary.created)),
        "RunningFor": fmt.human_duration(time.time() - summary.created) + " ago",
        "Ports": display_ports(summary.ports),
        "Status": summary.status,
        "State": summary.state,
        "Size": _size_text(*sizes),
        "Names": summary.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(summary.labels.items())),
        "Mounts": ",".join(_mount_name(m, no_trunc) for m in summary.mounts),
        "Networks": ",".join(sorted(summary.networks)),
        "LocalVolumes": str(len(summary.volumes)),
    }


def _mount_name(mount: dict[str, Any], no_trunc: bool) -> str:
    """The docker CLI's MOUNTS: a volume's name, a bind's host path."""
    name = str(mount.get("Name") or mount["Source"])
    return name if no_trunc else _ellipsis(name, 15)


def cmd_ps(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli import formatting as fmt
    from barque.engine import listing
    from barque.engine.filters import parse_filters

    fmt.precheck_format(ns.format, PS_FIELDS, PS_CONTEXT, _container_row())
    limit = 1 if ns.latest else (ns.last if ns.last >= 0 else None)
    summaries = listing.list_containers(engine, all_=ns.all or limit is not None, limit=limit,
                                        filters=parse_filters(ns.filter, listing.FILTER_KEYS))
    with_size = ns.size or ".Size" in (ns.format or "")  # as the docker CLI asks dockerd
    rows = [ps_row(summary, ns.no_trunc, listing.sizes(engine, summary) if with_size else (0, 0))
            for summary in summaries]
    table = PS_TABLE + ("\t{{.Size}}" if ns.size else "")
    sys.stdout.write(fmt.format_table(rows, ns.format, table, PS_HEADERS,
                                      quiet_field="ID" if ns.quiet else None,
                                      go_type=PS_CONTEXT))
    return 0


def cmd_inspect(ns: argparse.Namespace, engine: Engine) -> int:
    """`docker inspect` / `docker container inspect`: containers first, then images, then
    networks."""
    from barque.cli.template_views import inspect_template
    from barque.engine.inspect import inspect_object

    template = inspect_template(ns.format)  # a bad one fails before any look-up, as docker
    found: list[dict[str, Any] | str] = []
    images_too = getattr(ns, "command", "") == "inspect"
    what = "object" if images_too else "container"
    for name in ns.containers:
        obj = inspect_object(engine, name, images_too, size=ns.size)
        found.append(f"Error: No such {what}: {name}" if obj is None else obj)
    return print_objects(found, template)


def print_objects(found: Sequence[dict[str, Any] | str], template: Any, **how: Any) -> int:
    """`inspect`'s output: a JSON array, or the template applied to each object, a str in
    `found` being an error to report (see template_views); 1 if anything failed."""
    from barque.cli.template_views import print_objects as show

    return show(found, template, **how)


def cmd_logs(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine import logs  # here: `run` and most commands never read a log

    try:
        since = logs.parse_since(ns.since) if ns.since else None
        until = logs.parse_since(ns.until) if ns.until else None
        tail = logs.parse_tail(ns.tail)
    except ValueError as e:
        raise CommandError(str(e)) from None
    look_up(engine, ns.container)
    entries = logs.container_logs(engine, ns.container, since, until, tail, ns.follow)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        for entry in entries:
            stream = err if entry.stream == "stderr" else out
            if ns.timestamps:
                stream.write(entry.time.encode() + b" ")
            stream.write(entry.text)
            stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
               "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def _stats_row(entry: Any, no_trunc: bool) -> dict[str, Any]:
    from barque.cli import formatting as fmt

    after = entry.sample
    blank = after is None
    return {
        "ID": entry.id if no_trunc else entry.id[:12],
        "Container": entry.ref,
        "Name": entry.name,
        "CPUPerc": "--" if blank else f"{entry.cpu_percent:.2f}%",
        "MemUsage": "-- / --" if blank else
        f"{fmt.bytes_size(after.memory)} / {fmt.bytes_size(after.limit)}",
        "MemPerc": "--" if blank else f"{entry.memory_percent:.2f}%",
        "NetIO": "--" if blank else
        f"{fmt.human_size(after.net_rx)} / {fmt.human_size(after.net_tx)}",
        "BlockIO": "--" if blank else
        f"{fmt.human_size(after.block_read)} / {fmt.human_size(after.block_write)}",
        "PIDs": "--" if blank else str(after.pids),
    }


def cmd_stats(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli import formatting as fmt
    from barque.engine import stats

    for entries in stats.stream(engine, ns.containers, ns.all):
        rows = [_stats_row(entry, ns.no_trunc) for entry in entries]
        text = fmt.format_table(rows, ns.format, STATS_TABLE, STATS_HEADERS,
                                go_type="*container.statsContext")
        if ns.no_stream:
            sys.stdout.write(text)
            return 0
        sys.stdout.write("\033[2J\033[H" + text)  # Docker redraws the screen each second
        sys.stdout.flush()
    return 0


# --- volumes -------------------------------------------------------------------------------------

VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "Scope": "SCOPE", "CreatedAt": "CREATED AT"}


def cmd_volume_create(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine.volumes import create_volume

    name = ns.name_flag or ns.name
    if ns.name_flag and ns.name and ns.name_flag != ns.name:
        raise CommandError("conflicting options: either specify --name or provide positional "
                           "arg, not both")
    labels = dict(item.partition("=")[::2] for item in ns.label)
    options = dict(item.partition("=")[::2] for item in ns.opt)
    volume, _ = create_volume(engine, name, ns.driver, labels, options)
    print(volume.name)
    return 0


def _volume_row(volume: Any) -> dict[str, Any]:
    return {"Driver": "local", "Name": volume.name, "Mountpoint": volume.mountpoint,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(volume.labels.items())),
            "Scope": "local", "CreatedAt": volume.created}


def cmd_volume_ls(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli import formatting as fmt
    from barque.engine.filters import parse_filters
    from barque.engine.volumes import VOLUME_FILTERS, list_volumes

    filters = parse_filters(ns.filter, VOLUME_FILTERS)
    rows = [_volume_row(v) for v in list_volumes(engine, filters)]
    sys.stdout.write(fmt.format_table(rows, ns.format, VOLUME_TABLE, VOLUME_HEADERS,
                                      quiet_field="Name" if ns.quiet else None,
                                      go_type="*formatter.volumeContext"))
    return 0


def cmd_volume_inspect(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli.template_views import VOLUME_TYPES, inspect_template
    from barque.engine.volumes import VolumeError

    template = inspect_template(ns.format)
    found, status = [], 0
    for name in ns.volumes:
        try:
            found.append(engine.volumes.get(name).api())
        except VolumeError as e:
            sys.stderr.write(client_words(e, "volume", name) + "\n")
            status = 1
    # docker's volume inspect has no raw JSON to fall back on: its errors name the struct
    return print_objects(found, template, names=VOLUME_TYPES, raw_fallback=False) or status


def cmd_volume_rm(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.engine.volumes import remove_volume

    return _each(ns.volumes, lambda name: remove_volume(engine, name, ns.force), kind="volume")


def cmd_volume_prune(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli import formatting as fmt
    from barque.engine.filters import parse_filters
    from barque.engine.system import VOLUME_PRUNE_FILTERS, prune_volumes

    filters = parse_filters(ns.filter, VOLUME_PRUNE_FILTERS)  # refused before the question
    what = "all local volumes not used by at least one container" if ns.all else \
        "all anonymous local volumes not used by at least one container"
    if not ns.force and not _confirm(f"This will remove {what}."):
        return 0
    removed, reclaimed = prune_volumes(engine, ns.all, filters)
    if removed:
        print("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    print(f"Total reclaimed space: {fmt.human_size(reclaimed)}")
    return 0
