"""barque-runtime: an OCI runtime with runc's command line.

Import cost is start-up time here (this entry point is benchmarked against runc), so each
command imports only what it needs, inside the function that runs it.
"""

from __future__ import annotations

import os
import sys

from barque.runtime.args import Flag, Parsed, parse
from barque.runtime.errors import RuntimeFailure

VERSION = "0.1.0"
NAME = "barque-runtime"  # in its errors, where runc says "runc"

GLOBAL_FLAGS = [
    Flag("--root", True, default=None, help="root directory for storage of container state"),
    Flag("--log", True, default=None, help="set the log file to write runtime logs to"),
    Flag("--log-format", True, default="text", help="set the log format ('text' or 'json')"),
    Flag("--debug", help="enable debug logging"),
    Flag("--systemd-cgroup", help="enable systemd cgroup support (unsupported)"),
    Flag("--help,-h", help="show help"),
    Flag("--version,-v", help="print the version"),
]

CREATE_FLAGS = [
    Flag("--bundle,-b", True, default="", help="path to the root of the bundle directory"),
    Flag("--console-socket", True, default=None, help="unix socket to receive the pty master"),
    Flag("--pid-file", True, default=None, help="file to write the init's pid to"),
    Flag("--no-pivot", help="do not use pivot_root (chroot instead)"),
    Flag("--no-new-keyring", help="do not create a new session keyring"),
    Flag("--preserve-fds", True, default="0", help="pass N extra fds (from 3) to the container"),
]
RUN_FLAGS = CREATE_FLAGS + [
    Flag("--detach,-d", help="detach from the container's process"),
    Flag("--keep", help="do not delete the container after it exits"),
]
EXEC_FLAGS = [
    Flag("--console-socket", True, default=None),
    Flag("--cwd", True, default=None),
    Flag("--env,-e", True, repeat=True),
    Flag("--tty,-t"),
    Flag("--user,-u", True, default=None),
    Flag("--additional-gids,-g", True, repeat=True),
    Flag("--process,-p", True, default=None),
    Flag("--detach,-d"),
    Flag("--pid-file", True, default=None),
    Flag("--process-label", True, default=None),
    Flag("--apparmor", True, default=None),
    Flag("--no-new-privs"),
    Flag("--cap,-c", True, repeat=True),
    Flag("--preserve-fds", True, default="0"),
    Flag("--ignore-paused"),
    Flag("--cgroup", True, repeat=True),
]
UPDATE_FLAGS = [
    Flag("--resources,-r", True, default=None),
    Flag("--blkio-weight", True, default=None),
    Flag("--cpu-period", True, default=None),
    Flag("--cpu-quota", True, default=None),
    Flag("--cpu-share", True, default=None),
    Flag("--cpu-rt-period", True, default=None),
    Flag("--cpu-rt-runtime", True, default=None),
    Flag("--cpuset-cpus", True, default=None),
    Flag("--cpuset-mems", True, default=None),
    Flag("--memory", True, default=None),
    Flag("--memory-reservation", True, default=None),
    Flag("--memory-swap", True, default=None),
    Flag("--kernel-memory", True, default=None),
    Flag("--kernel-memory-tcp", True, default=None),
    Flag("--pids-limit", True, default=None),
]

USAGE = """barque-runtime — an OCI runtime with runc's command line

usage: barque-runtime [global options] command [command options] [arguments...]

commands:
  create    create a container           start     start a created container
  run       create and start a container exec      run a new process inside a container
  state     output the state of a container           kill      send a signal to the init
  delete    delete a container           list      list containers
  ps        processes inside a container pause     suspend all processes
  resume    resume paused processes      events    stats and OOM notifications
  update    update resource limits       features  show the enabled features
  spec      create a new specification file

global options:
  --root value        state directory (default: /run/barque-runtime)
  --log value         log file (default: stderr)
  --log-format value  'text' or 'json' (default: text)
  --debug             debug logging
  --systemd-cgroup    unsupported: Barque drives cgroupfs directly
  --version, -v       print the version
"""


def _need_id(opts: Parsed, command: str) -> str:
    if not opts.args:
        raise RuntimeFailure(f'"{command}" requires a container id')
    return opts.args[0]


def _check_args(opts: Parsed, command: str, least: int, most: int) -> None:
    """runc's checkArgs: a stray argument (an unknown flag after the ID stays one, as in
    urfave/cli) is refused, never ignored."""
    n = len(opts.args)
    if least == most and n != least:
        raise RuntimeFailure(f'"{command}" requires exactly {least} argument(s)')
    if n < least:
        raise RuntimeFailure(f'"{command}" requires a minimum of {least} argument(s)')
    if n > most:
        raise RuntimeFailure(f'"{command}" requires a maximum of {most} argument(s)')


def _only_id(opts: Parsed, command: str) -> str:
    _check_args(opts, command, 1, 1)
    return str(opts.args[0])


def _root(g: Parsed) -> str:
    from barque.runtime.state import DEFAULT_ROOT

    return os.path.abspath(g.root or DEFAULT_ROOT)


def _listen_fds() -> int:
    """Sockets systemd passed us (socket activation, meant for this pid), handed on to the
    container as runc does: fds 3.. before the --preserve-fds ones."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) == os.getpid():
            return max(0, int(os.environ.get("LISTEN_FDS", "0")))
    except ValueError:
        pass
    return 0


# Set when the runtime re-executed itself sealed (see _guard_self): a second failure is fatal.
RESEALED_ENV = "_BARQUE_RUNTIME_RESEALED"


def _guard_self() -> None:
    """Before a process of ours joins a container (CVE-2019-5736): make us non-dumpable, so
    that no container process can open /proc/PID/exe (or fd, mem) of any of our children,
    and make sure we run from a copy of the interpreter nobody can write, which the launcher
    arranges through barque-sealexec; without it, re-execute ourselves from one."""
    from barque.linux import prctl, selfexe

    prctl.set_dumpable(False)
    resealed = os.environ.pop(RESEALED_ENV, None)
    if selfexe.is_sealed():
        return
    if resealed:
        raise RuntimeFailure("cannot run from a sealed copy of the interpreter "
                             f"({os.readlink(selfexe.SELF)} is still writable)")
    argv = [sys.executable, *sys.orig_argv[1:]]
    try:
        selfexe.exec_sealed(selfexe.SELF, argv, dict(os.environ, **{RESEALED_ENV: "1"}))
    except OSError as e:
        raise RuntimeFailure(f"cannot run from a sealed copy of the interpreter: {e}") from None


def cmd_create(g: Parsed, argv: list[str], run: bool = False) -> int:
    _guard_self()
    from barque.cgroups import prewarm

    prewarm.renew()  # first: see barque/cgroups/prewarm.py
    from barque.runtime.create import CreateOptions, create

    opts = parse(argv, RUN_FLAGS if run else CREATE_FLAGS)
    cid = _only_id(opts, "run" if run else "create")
    copts = CreateOptions(_root(g), cid, str(opts.bundle) or os.getcwd())
    copts.pid_file = opts.pid_file
    copts.console_socket = opts.console_socket
    copts.no_pivot = bool(opts.no_pivot) or bool(os.environ.get("BARQUE_NO_PIVOT"))
    copts.listen_fds = _listen_fds()
    copts.preserve_fds = int(str(opts.preserve_fds))
    copts.no_new_keyring = bool(opts.no_new_keyring)
    try:
        if not run:
            create(copts)
            return 0
        from barque.runtime.run import run_container

        return run_container(copts, detach=bool(opts.detach), keep=bool(opts.keep))
    except RuntimeFailure as e:
        raise command_failed("run" if run else "create", e) from None


def command_failed(command: str, e: RuntimeFailure) -> RuntimeFailure:
    """runc's words for whatever stops its create or run once its arguments are checked
    ("runc create failed: ..."), with our name: containerd's shim shows the --log line as
    it is, so dockerd says "OCI runtime create failed: barque-runtime create failed: ..."."""
    return RuntimeFailure(f"{NAME} {command} failed: {e}", e.code)


def cmd_start(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.lifecycle import start
    from barque.runtime.state import load

    start(load(_root(g), _only_id(parse(argv, []), "start")))
    return 0


def cmd_state(g: Parsed, argv: list[str]) -> int:
    from barque.runtime import fastjson as json
    from barque.runtime.state import load

    c = load(_root(g), _only_id(parse(argv, []), "state"))
    state = c.oci_state()
    state["owner"] = ""  # runc's state leaves it empty (only list fills it)
    # runc: json.MarshalIndent with two spaces, and no newline after it
    sys.stdout.write(json.go_dumps(state, indent="  "))
    return 0


def cmd_kill(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.lifecycle import kill, parse_signal
    from barque.runtime.state import load

    opts = parse(argv, [Flag("--all,-a")])
    _check_args(opts, "kill", 1, 2)
    container = load(_root(g), _need_id(opts, "kill"))  # runc looks the container up first
    sig = parse_signal(opts.args[1] if len(opts.args) > 1 else "SIGTERM")
    kill(container, sig, bool(opts.all))
    return 0


def cmd_delete(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.lifecycle import delete
    from barque.runtime.state import load

    opts = parse(argv, [Flag("--force,-f")])
    cid = _only_id(opts, "delete")
    try:
        container = load(_root(g), cid)
    except RuntimeFailure:
        if opts.force:
            return 0
        raise
    delete(container, bool(opts.force))
    return 0


def cmd_pause(g: Parsed, argv: list[str], resume: bool = False) -> int:
    from barque.runtime import lifecycle
    from barque.runtime.state import load

    c = load(_root(g), _only_id(parse(argv, []), "resume" if resume else "pause"))
    (lifecycle.resume if resume else lifecycle.pause)(c)
    return 0


def cmd_list(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.info import list_containers

    opts = parse(argv, [Flag("--format,-f", True, default="table"), Flag("--quiet,-q")])
    _check_args(opts, "list", 0, 0)
    return list_containers(_root(g), str(opts.format), bool(opts.quiet))


def cmd_ps(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.info import ps
    from barque.runtime.state import load

    opts = parse(argv, [Flag("--format,-f", True, default="table")], reorder_args=False)
    c = load(_root(g), _need_id(opts, "ps"))
    return ps(c, str(opts.format), opts.args[1:])


def cmd_events(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.info import events
    from barque.runtime.state import load

    opts = parse(argv, [Flag("--interval", True, default="5s"), Flag("--stats")])
    c = load(_root(g), _only_id(opts, "events"))
    return events(c, str(opts.interval), bool(opts.stats))


def cmd_update(g: Parsed, argv: list[str]) -> int:
    from barque.runtime.state import load
    from barque.runtime.update import update

    opts = parse(argv, UPDATE_FLAGS)
    c = load(_root(g), _only_id(opts, "update"))
    update(c, opts)
    return 0


def cmd_exec(g: Parsed, argv: list[str]) -> int:
    _guard_self()
    from barque.cgroups import prewarm

    prewarm.renew()  # the exec'd process joins the container's cgroup: see cmd_create
    from barque.runtime.run import exec_command
    from barque.runtime.state import load

    opts = parse(argv, EXEC_FLAGS, reorder_args=False)  # the rest is the process's argv
    c = load(_root(g), _need_id(opts, "exec"))
    return exec_command(c, opts)


def cmd_features(g: Parsed, argv: list[str]) -> int:
    from barque.runtime import fastjson as json
    from barque.runtime.features import features

    _check_args(parse(argv, []), "features", 0, 0)
    print(json.dumps(features(), indent=4))
    return 0


def cmd_spec(g: Parsed, argv: list[str]) -> int:
    from barque.runtime import fastjson as json
    from barque.runtime.spec import default_spec, rootless_spec
    from barque.runtime.state import write_atomic

    opts = parse(argv, [Flag("--bundle,-b", True, default=""), Flag("--rootless")])
    _check_args(opts, "spec", 0, 0)
    path = os.path.join(str(opts.bundle) or ".", "config.json")
    if os.path.exists(path):
        raise RuntimeFailure("File config.json exists. Remove it first")
    spec = rootless_spec() if opts.rootless else default_spec()
    # runc writes the file without a final newline
    write_atomic(path, json.dumps(spec, indent="\t").encode(), 0o666 & ~_umask())
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


COMMANDS = {
    "create": cmd_create,
    "run": lambda g, a: cmd_create(g, a, run=True),
    "start": cmd_start,
    "state": cmd_state,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "pause": cmd_pause,
    "resume": lambda g, a: cmd_pause(g, a, resume=True),
    "list": cmd_list,
    "ps": cmd_ps,
    "events": cmd_events,
    "update": cmd_update,
    "exec": cmd_exec,
    "features": cmd_features,
    "spec": cmd_spec,
}


def _version() -> str:
    from barque.runtime.spec import OCI_VERSION

    return (f"barque-runtime version {VERSION}\ncommit: none\nspec: {OCI_VERSION}\n"
            f"python: {sys.version.split()[0]}\n")


def main(argv: list[str] | None = None) -> int:
    from barque.runtime import log

    argv = sys.argv[1:] if argv is None else argv
    try:
        g = parse(argv, GLOBAL_FLAGS, reorder_args=False)  # the command's flags are its own
        log.configure(g.log, str(g.log_format), bool(g.debug))
        if g.version:
            sys.stdout.write(_version())
            return 0
        if g.help or not g.args:
            sys.stdout.write(USAGE)
            return 0 if g.help else 1
        if g.systemd_cgroup:
            raise RuntimeFailure("the systemd cgroup driver is not supported by barque-runtime;"
                                 " use cgroupfs (drop --systemd-cgroup)")
        command, rest = g.args[0], g.args[1:]
        handler = COMMANDS.get(command)
        if handler is None:
            raise RuntimeFailure(f"No help topic for '{command}'")
        log.LOG.debug(f"barque-runtime {' '.join(argv)}")
        return handler(g, rest)
    except RuntimeFailure as e:
        log.LOG.error(str(e))
        # runc prints the error alone; ours say whose it is, unless they already name us
        message = str(e)
        sys.stderr.write(f"{message}\n" if message.startswith(f"{NAME} ") else
                         f"{NAME}: {message}\n")
        return e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug or an unexpected kernel answer: still one clear line
        if log.LOG.threshold <= 10:
            import traceback

            traceback.print_exc()
        message = f"{type(e).__name__}: {e}"
        log.LOG.error(message)
        sys.stderr.write(f"barque-runtime: {message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
