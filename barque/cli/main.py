"""The `barque` command: a docker-compatible front end. It only parses arguments and calls
the engine; exit codes follow `docker run` (125 for Barque's own errors)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from typing import NoReturn

from barque.cli import image_args
from barque.engine import container, images
from barque.engine.bundle import RunOptions
from barque.image import default as default_image
from barque.image import oci_layout as ol
from barque.image.store import ImageError
from barque.storage.blobs import BlobError

EXIT_ENGINE_ERROR = 125  # docker: "the error is with Docker daemon itself"


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 125 with a docker-style hint, as `docker run --foo` does."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"barque: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(EXIT_ENGINE_ERROR)


def _version() -> str:
    from importlib import metadata  # ~15 ms: only for the commands that print it

    try:
        return metadata.version("barque")
    except metadata.PackageNotFoundError:
        return "unknown"


def _env_option(value: str) -> str | None:
    """docker run -e: KEY=VALUE as given; a bare KEY copies the host's value, if it has one."""
    key, sep, _ = value.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"invalid environment variable: {value}")
    if sep:
        return value
    host = os.environ.get(key)
    return None if host is None else f"{key}={host}"


class _VersionAction(argparse.Action):
    """argparse's "version" action, minus computing the version for every command."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"barque version {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="barque",
        description="A container engine with a docker-compatible command line.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("BARQUE_ROOT", container.DEFAULT_ROOT),
        help="persistent state: images, containers (env BARQUE_ROOT; default %(default)s)",
    )
    parser.add_argument(
        "--runroot",
        default=os.environ.get("BARQUE_RUNROOT", container.DEFAULT_RUNROOT),
        help="transient state: the runtime's (env BARQUE_RUNROOT; default %(default)s)",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the Barque version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # add_help=False: as in docker, -h is --hostname; help is --help only.
    run = commands.add_parser(
        "run",
        help="run a command in a new container",
        description="Run a command in a new container, attached, and exit with its status.",
        usage="barque run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        add_help=False,
        allow_abbrev=False,
    )
    run.set_defaults(parser=run)
    run.add_argument("--help", action="help", help="show this help message and exit")
    run.add_argument("--rm", action="store_true", help="remove the container when it exits")
    run.add_argument(
        "-i", "--interactive", action="store_true", help="keep STDIN attached (else /dev/null)"
    )
    run.add_argument("--name", help="assign a name to the container")
    run.add_argument(
        "-e", "--env", action="append", default=[], type=_env_option, metavar="KEY[=VALUE]",
        help="set an environment variable (KEY alone copies the host's value)",
    )  # fmt: skip
    run.add_argument("-w", "--workdir", help="working directory inside the container")
    run.add_argument("-h", "--hostname", help="container host name (default: short id)")
    run.add_argument("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    run.add_argument("image", metavar="IMAGE", help="busybox (built in) or an OCI layout DIR[:TAG]")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and args")

    image_commands = image_args.add_parsers(commands, _Parser)
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

    rm = commands.add_parser("rm", help="remove one or more containers")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")
    rm.add_argument("-f", "--force", action="store_true",
                    help="force the removal of a running container (uses SIGKILL)")
    rm.add_argument("-v", "--volumes", action="store_true",
                    help="remove anonymous volumes (Barque makes none yet)")
    rm.set_defaults(parser=rm)
    export = commands.add_parser(
        "export", help="export a container's filesystem as a tar archive (to STDOUT by default)"
    )
    export.add_argument("container", metavar="CONTAINER")
    export.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    export.set_defaults(parser=export)
    commands.add_parser("version", help="show the Barque version information")
    return parser


def _cmd_run(ns: argparse.Namespace, paths: container.Paths) -> int:
    options = RunOptions(
        command=list(ns.args),
        env=[e for e in ns.env if e is not None],
        workdir=ns.workdir,
        hostname=ns.hostname,
        user=ns.user,
    )
    return container.run_container(
        paths, ns.image, options, name=ns.name, remove=ns.rm, interactive=ns.interactive
    )


def _cmd_image(ns: argparse.Namespace, paths: container.Paths) -> int:
    if ns.image_command == "build-default":
        store = images.open_store(paths.root)
        try:
            print(images.ensure_default_image(store).id)
        finally:
            store.close()
    else:
        default_image.write_oci_archive(default_image.ensure_default_image(paths.root), ns.output)
    return 0


def _cmd_store(ns: argparse.Namespace, paths: container.Paths) -> int:
    """Commands working on the image store: Docker's CLI reports their errors with exit 1."""
    from barque.cli import images as cli_images
    from barque.cli.gotemplate import TemplateError

    store = images.open_store(paths.root)
    try:
        return int(getattr(cli_images, ns.handler)(ns, store))
    except ImageError as e:
        sys.stderr.write(f"Error response from daemon: {e}\n")
    except cli_images.CommandError as e:
        sys.stderr.write(f"{e}\n")
    except TemplateError as e:
        sys.stderr.write(f"{e}\n")
    except _service_errors() as e:
        sys.stderr.write(f"Error response from daemon: {e}\n")
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


def _service_errors() -> tuple[type[Exception], ...]:
    """The registry's and archive code's own errors, imported only when a command needs them."""
    errors: list[type[Exception]] = [BlobError]
    for module, name in (("barque.registry.errors", "RegistryError"),
                         ("barque.image.archive", "ArchiveError"),
                         ("barque.registry.auth", "AuthError")):
        mod = sys.modules.get(module)
        if mod is not None and isinstance(getattr(mod, name, None), type):
            errors.append(getattr(mod, name))
    return tuple(errors)


def _cmd_rm(ns: argparse.Namespace, paths: container.Paths) -> int:
    status = 0
    for name in ns.containers:
        try:
            print(container.remove_container(paths, name, force=ns.force))
        except container.EngineError as e:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            status = 1
    return status


def _cmd_export(ns: argparse.Namespace, paths: container.Paths) -> int:
    if ns.output:
        with ol.atomic_writer(ns.output) as out:
            container.export_container(paths, ns.container, out)
        return 0
    if sys.stdout.isatty():
        sys.stderr.write("cowardly refusing to save to a terminal. Use the -o flag or "
                         "redirect\n")
        return 1
    sys.stdout.flush()
    container.export_container(paths, ns.container, sys.stdout.buffer)
    return 0


def _cmd_version() -> int:
    try:
        runtime = container.find_runtime()
    except container.EngineError as e:
        runtime = f"({e})"
    plat = ol.host_platform()
    print(f"barque version {_version()}")
    print(f" Python:   {platform.python_version()}")
    print(f" OS/Arch:  {plat['os']}/{plat['architecture']}")
    print(f" Runtime:  {runtime}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns, extras = parser.parse_known_args(argv)
    if extras:
        # Blame the subcommand, as docker does: "unknown flag: --foo / See 'docker run --help'".
        getattr(ns, "parser", parser).error(f"unknown flag: {extras[0]}")
    paths = container.Paths(root=os.path.abspath(ns.root), runroot=os.path.abspath(ns.runroot))
    try:
        if ns.command == "run":
            return _cmd_run(ns, paths)
        if getattr(ns, "handler", None) is not None:
            return _cmd_store(ns, paths)
        if ns.command == "image":
            return _cmd_image(ns, paths)
        if ns.command == "rm":
            return _cmd_rm(ns, paths)
        if ns.command == "export":
            return _cmd_export(ns, paths)
        if ns.command == "version":
            return _cmd_version()
        parser.print_help()
        return 0
    except container.EngineError as e:
        sys.stderr.write(f"barque: Error response from daemon: {e}\n")
        return e.exit_code
    except (default_image.DefaultImageError, ol.LayoutError, OSError) as e:
        sys.stderr.write(f"barque: Error response from daemon: {e}\n")
        return EXIT_ENGINE_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
