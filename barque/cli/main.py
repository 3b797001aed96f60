"""The `barque` command: a docker-compatible front end. It only parses arguments and calls
the engine; exit codes follow `docker run` (125 for Barque's own errors)."""

from __future__ import annotations

import argparse
import functools  # (re loads it anyway)
import os
import re
import sys
from collections.abc import Sequence

from barque.cli import build_args, container_args, image_args, network_args, system_args
from barque.engine.context import EngineError
from barque.engine.paths import DEFAULT_ROOT, DEFAULT_RUNROOT, Paths

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any, NoReturn

EXIT_ENGINE_ERROR = 125  # docker: "the error is with Docker daemon itself"


class _Parser(argparse.ArgumentParser):
    """Help and usage errors in the docker CLI's layout and exit codes (barque.cli.usage):
    a wrong argument count exits 1, a bad flag 125, an unknown command 1 with Docker's words.
    Subcommands not on the command line are not built (barque.cli.argv_scan)."""

    def error(self, message: str) -> NoReturn:
        from barque.cli import usage

        root = self.prog == "barque"
        match = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if match and root:
            sys.stderr.write(f"barque: '{match.group(1)}' is not a barque command.\n"
                             f"See '{self.prog} --help'\n")
            sys.exit(1)
        if match or message.startswith("the following arguments are required"):
            usage.arg_count_error(self)
        usage.invalid_arg(self, message)
        usage.flag_error(self, usage.flag_words(message), root)

    def format_help(self) -> str:
        from barque.cli import usage

        return usage.help_text(self, root=self.prog == "barque")

    def format_usage(self) -> str:
        from barque.cli import usage

        return usage.usage_string(self)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # `inspect --type bogus`: the docker CLI's own check, its words, exit 1
        invalid = getattr(action, "invalid", None)
        if invalid and action.choices is not None and value not in action.choices:
            sys.stderr.write(invalid.format(value=value) + "\n")
            sys.exit(1)
        super()._check_value(action, value)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("action", _LazySubParsers)
        # A group without its command shows its help (or blames a bad flag on the group), as
        # cobra does: barque.cli.usage.check_words, after the parse.
        kwargs["required"] = False
        self.set_defaults(parser=self)
        return super().add_subparsers(**kwargs)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every add_argument (to check its metavar), and each
        # asks the terminal's size (environment and an ioctl): ~80 times for `run`. The size
        # is taken once per process, as argparse's own default computes it.
        formatter: Any = self.formatter_class  # every HelpFormatter takes a width
        return formatter(prog=self.prog, width=_help_width())


@functools.cache
def _help_width() -> int:
    import shutil

    return shutil.get_terminal_size().columns - 2


class _Unused:
    """Stands for the parser of a command not on the command line: every call does nothing
    (building ~60 subcommand parsers would cost ~20 ms of every command's start), except that
    a group (add_subparsers) is marked so, for the root's "Management Commands"."""

    def __init__(self, listed: argparse.Action | None = None) -> None:
        self._listed = listed

    def add_subparsers(self, **kwargs: Any) -> Any:
        if self._listed is not None:
            self._listed.is_group = True  # type: ignore[attr-defined]
        return self

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _LazySubParsers(argparse._SubParsersAction):
    """Subcommands built only when on the command line, but every one listed in `--help`
    (sorted, an alias under its first name only, as Docker lists them)."""

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        from barque.cli.argv_scan import wanted

        text = kwargs.get("help")
        kwargs.setdefault("description", text)  # the command's own help page says it too
        first = next((a for a in self._choices_actions if a.help == text), None) \
            if text is not None else None
        if first is not None:
            del kwargs["help"]  # an alias (same command, same words): listed once
        # Every name of the command, for its help's "Aliases:" (one list, shared by all)
        names = self.__dict__.setdefault("_names", {}).setdefault(
            first.dest if first is not None else name, [])
        names.append(name)
        if not wanted(name):
            listed = None
            if "help" in kwargs:
                listed = self._ChoicesPseudoAction(name, (), kwargs["help"])
                self._choices_actions.append(listed)
            return _Unused(listed)
        parser = super().add_parser(name, **kwargs)
        parser.aliases = names
        return parser

    def _get_subactions(self) -> list[argparse.Action]:
        return sorted(self._choices_actions, key=lambda action: action.dest)


class _VersionAction(argparse.Action):
    """argparse's "version" action, minus computing the version for every command."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from barque.engine.system import barque_version

        print(f"barque version {barque_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="barque",
        description="A container engine with a docker-compatible command line.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("BARQUE_ROOT", DEFAULT_ROOT),
        help="persistent state: images, containers (env BARQUE_ROOT)",
    )
    parser.add_argument(
        "--runroot",
        default=os.environ.get("BARQUE_RUNROOT", DEFAULT_RUNROOT),
        help="transient state: the runtime's (env BARQUE_RUNROOT)",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the Barque version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    container_group = container_args.add_parsers(commands, _Parser)
    system_args.add_parsers(commands, _Parser, container_group)
    network_args.add_parsers(commands, _Parser)
    inspect = commands.add_parser("inspect", help="return low-level information on Docker "
                                  "objects")
    inspect.add_argument("-f", "--format", help="format output using a Go template")
    inspect.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    kind = inspect.add_argument("--type", choices=["container", "image", "network", "volume"],
                                help="return JSON for the specified type")
    kind.invalid = '"{value}" is not a valid value for --type'  # the docker CLI's own check
    inspect.add_argument("containers", nargs="+", metavar="NAME|ID")
    inspect.set_defaults(parser=inspect, handler="cmd_inspect", container_handler=True)
    serve = commands.add_parser("serve", help="serve the Docker Engine API (a unix socket; "
                                "TCP only with TLS client certificates)")
    serve.add_argument("-H", "--host", action="append", dest="hosts", metavar="HOST",
                       help="daemon socket(s) to listen on, as dockerd takes them: "
                       "unix:///path (default unix:///run/barque/barque.sock), fd://, "
                       "tcp://IP:PORT (only with --tlsverify); repeatable")
    serve.set_defaults(parser=serve)
    serve.add_argument("--tls", action="store_true", help="use TLS; implied by --tlsverify")
    serve.add_argument("--tlsverify", action="store_true",
                       help="use TLS and verify the remote (required for tcp://)")
    serve.add_argument("--tlscacert", help="trust certs signed only by this CA "
                       "(default ~/.docker/ca.pem)")
    serve.add_argument("--tlscert", help="path to TLS certificate file "
                       "(default ~/.docker/cert.pem)")
    serve.add_argument("--tlskey", help="path to TLS key file (default ~/.docker/key.pem)")
    image_commands = image_args.add_parsers(commands, _Parser)
    build_args.add_parsers(commands, image_commands, _Parser)
    build = image_commands.add_parser(
        "build-default",
        help="build the default busybox image from the host's busybox-static; print its ID",
    )
    build.set_defaults(parser=build)
    save = image_commands.add_parser(
        "save-default", help="write the default image as an OCI archive (for ctr, skopeo)"
    )
    save.add_argument("-o", "--output", required=True, help="the .tar file to write")
    save.set_defaults(parser=save)

    for parent in (commands, container_group):  # `export` and `container export`
        export = parent.add_parser("export", help="export a container's filesystem as a tar "
                                   "archive")
        export.add_argument("container", metavar="CONTAINER")
        export.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
        export.set_defaults(parser=export, export_handler=True)
    completion = commands.add_parser(
        "completion", help="generate the autocompletion script for the specified shell",
        description="Print the completion script for bash or zsh. bash: "
        "source <(barque completion bash); zsh (after compinit): "
        "source <(barque completion zsh).")
    completion.add_argument("shell", choices=["bash", "zsh"], metavar="bash|zsh")
    completion.set_defaults(parser=completion)
    return parser


def _report_run_error(command: str, text: str, with_help: bool) -> None:
    """The docker CLI's reportError for `run`/`create`: the message ending in one ".", then
    (for what failed before a start) "See 'docker run --help'."."""
    text = text.removesuffix(".") + "."
    if with_help:
        text += f"\nSee 'barque {command} --help'."
    sys.stderr.write(f"barque: {text}\n")


def _cmd_containers(ns: argparse.Namespace, paths: Paths) -> int:
    """Container, volume and system commands. `run` reports Barque's errors with 125
    (126, 127), `create` its checks of the flags with 125 and the daemon's errors with 1
    (unprefixed), the others with 1, as the docker CLI does."""
    import importlib

    from barque.cli.containers import CommandError, FlagError

    run_like = ns.handler in ("cmd_run", "cmd_create")
    name = getattr(ns, "cli_module", None) or \
        ("system" if getattr(ns, "system_handler", False) else "containers")
    module = importlib.import_module(f"barque.cli.{name}")
    # The monitor's clean-up may run after its root dir is gone (a test's, removed): it must
    # not make a new, empty one.
    create = ns.handler != "cmd_cleanup"
    try:
        with _engine(paths, create) as engine:
            return int(getattr(module, ns.handler)(ns, engine))
    except EngineError as e:
        if ns.handler == "cmd_create" and not isinstance(e, FlagError):
            sys.stderr.write(f"Error response from daemon: {e}\n")
            return 1
        if not run_like:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            return 1
        command = ns.handler.removeprefix("cmd_")
        shape = e.shape if isinstance(e, FlagError) else "daemon"
        if shape == "flag":  # pflag's refusal of a value: cobra's FlagErrorFunc
            sys.stderr.write(f"{e}\nSee 'barque {command} --help'.\n")
            return EXIT_ENGINE_ERROR
        # docker run: 125 for the daemon's errors, 126/127 for a command it could not run
        # (a start's error: no help line, as docker's reportError, and the exit code of
        # runStartContainerErr: 127 or 126 by the words, else 125); what the docker CLI
        # checks itself has no "Error response from daemon: ".
        started = e.at_start or e.exit_code in (126, 127)
        _report_run_error(command, str(e) if shape == "client" else
                          f"Error response from daemon: {e}", with_help=not started)
        if not started:
            return 125
        from barque.engine.lifecycle import exit_code_of

        return e.exit_code if e.exit_code in (126, 127) else exit_code_of(str(e))
    except CommandError as e:
        sys.stderr.write(f"{e}\n")
        if ns.handler == "cmd_create":  # createContainer's own errors: bare, exit 1
            return 1
    except _loaded_errors("barque.cli.gotemplate.TemplateError",
                          "barque.cli.formatting.FormatError") as e:
        sys.stderr.write(f"{e}\n")
        if not run_like:
            return getattr(e, "exit_code", 1)  # 64 for inspect's unparsable template
    return 125 if run_like else 1


def _engine(paths: Paths, create: bool = True) -> Any:
    from barque.engine.context import Engine

    return Engine(paths, create)


def _cmd_image(ns: argparse.Namespace, paths: Paths) -> int:
    from barque.engine import images

    if ns.image_command == "build-default":
        store = images.open_store(paths.root)
        try:
            print(images.ensure_default_image(store).id)
        finally:
            store.close()
    else:
        images.save_default_image(paths.root, ns.output)
    return 0


def _cmd_store(ns: argparse.Namespace, paths: Paths) -> int:
    """Commands working on the image store: Docker's CLI reports their errors with exit 1."""
    from barque.cli import images as cli_images
    from barque.cli.gotemplate import TemplateError
    from barque.engine import events, images
    from barque.image.store import ImageError

    events.register(paths)  # the image functions' events go to this runroot
    store = images.open_store(paths.root)
    ns.paths = paths  # for the few that look at containers too (rmi)
    try:
        return int(getattr(cli_images, ns.handler)(ns, store))
    except ImageError as e:
        sys.stderr.write(f"Error response from daemon: {e}\n")
    except cli_images.CommandError as e:
        sys.stderr.write(f"{e}\n")
    except TemplateError as e:
        sys.stderr.write(f"{e}\n")
        return getattr(e, "exit_code", 1)  # 64 for inspect's unparsable template
    except _loaded_errors("barque.storage.blobs.BlobError",
                          "barque.registry.errors.RegistryError",
                          "barque.image.archive.ArchiveError") as e:
        # dockerd writes a load's error into its JSON stream: the docker CLI prints it bare.
        prefix = "" if ns.handler == "cmd_load" else "Error response from daemon: "
        sys.stderr.write(f"{prefix}{e}\n")
    except BrokenPipeError:
        # `barque save | head`: the reader went away; say nothing more, as docker.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as e:
        # Client-side file errors, in Go's wording: "open nofile: no such file or directory".
        what = f"open {e.filename}: " if e.filename else ""
        sys.stderr.write(f"{what}{(e.strerror or str(e)).lower()}\n")
    finally:
        store.close()
    return 1


def _cmd_serve(ns: argparse.Namespace, paths: Paths) -> int:
    """dockerd's way with bad flags: a message and exit 1, nothing bound."""
    from barque.api.listeners import TLSOptions
    from barque.api.server import serve

    tls = TLSOptions(tls=ns.tls or ns.tlsverify, verify=ns.tlsverify, cacert=ns.tlscacert,
                     cert=ns.tlscert, key=ns.tlskey)
    try:
        serve(paths, ns.hosts, tls)
    except EngineError as e:
        sys.stderr.write(f"barque serve: {e}\n")
        return 1
    return 0


def _cmd_export(ns: argparse.Namespace, paths: Paths) -> int:
    from barque.engine.export import export_container
    from barque.image import oci_layout as ol

    try:
        with _engine(paths) as engine:
            if ns.output:
                with ol.atomic_writer(ns.output) as out:
                    export_container(engine, ns.container, out)
                return 0
            if sys.stdout.isatty():
                sys.stderr.write("cowardly refusing to save to a terminal. Use the -o flag or "
                                 "redirect\n")
                return 1
            sys.stdout.flush()
            export_container(engine, ns.container, sys.stdout.buffer)
    except EngineError as e:
        sys.stderr.write(f"Error response from daemon: {e}\n")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from barque.cli import argv_scan

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["__complete"]:  # the completion scripts' call (barque.cli.completion)
        from barque.cli import completion

        return completion.run(args[1:])
    argv_scan.scan(args)
    parser = build_parser()
    ns, extras = parser.parse_known_args(argv)
    from barque.cli import usage

    usage.check_words(args, parser, ns, extras)
    paths = Paths(root=os.path.abspath(ns.root), runroot=os.path.abspath(ns.runroot))
    try:
        if getattr(ns, "build_handler", False):
            from barque.cli.build import cmd_build

            return cmd_build(ns, paths)
        if getattr(ns, "container_handler", False) or getattr(ns, "system_handler", False):
            return _cmd_containers(ns, paths)
        if getattr(ns, "handler", None) is not None:
            return _cmd_store(ns, paths)
        if ns.command == "image":
            return _cmd_image(ns, paths)
        if getattr(ns, "export_handler", False):
            return _cmd_export(ns, paths)
        if ns.command == "serve":
            return _cmd_serve(ns, paths)
        if ns.command == "completion":
            from barque.cli.completion import script

            print(script(ns.shell), end="")
            return 0
        return 0  # (a group without its command printed its help)
    except EngineError as e:
        sys.stderr.write(f"barque: Error response from daemon: {e}\n")
        return e.exit_code
    except _loaded_errors("builtins.OSError", "barque.image.default.DefaultImageError",
                          "barque.image.oci_layout.LayoutError") as e:
        sys.stderr.write(f"barque: Error response from daemon: {e}\n")
        return EXIT_ENGINE_ERROR
    except KeyboardInterrupt:
        return 130


def _loaded_errors(*names: str) -> tuple[type[Exception], ...]:
    """The exception classes named "module.Class" whose module is loaded: a command that never
    imported the code cannot have raised its error, and catching it must not import it."""
    errors = []
    for qualified in names:
        module, _, name = qualified.rpartition(".")
        mod = sys.modules.get(module)
        found = getattr(mod, name, None) if mod is not None else None
        if found is not None:  # a wrong name must not turn an error report into a crash
            errors.append(found)
    return tuple(errors)


if __name__ == "__main__":
    sys.exit(main())
