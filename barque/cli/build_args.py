"""The arguments of `build` (also `image build`, `builder build`) and `builder prune`, with
Docker's flags; their handlers are in barque.cli.build, imported only when one runs."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add_parsers(commands: Any, image_commands: Any,
                parser_class: type[argparse.ArgumentParser]) -> None:
    for group in (commands, image_commands):
        _build(group.add_parser("build", help="build an image from a Dockerfile"))
    builder = commands.add_parser("builder", help="manage builds")
    group = builder.add_subparsers(dest="builder_command", metavar="COMMAND",
                                   parser_class=parser_class, required=True)
    _build(group.add_parser("build", help="build an image from a Dockerfile"))
    prune = group.add_parser("prune", help="remove build cache")
    prune.add_argument("-a", "--all", action="store_true",
                       help="remove all unused build cache, not just dangling ones")
    prune.add_argument("--filter", action="append", default=[],
                       help="provide filter values (e.g. 'until=24h')")
    prune.add_argument("-f", "--force", action="store_true",
                       help="do not prompt for confirmation")
    prune.add_argument("--keep-storage", default="0",
                       help="amount of disk space to keep for cache")
    prune.set_defaults(parser=prune, handler="cmd_builder_prune", cli_module="build",
                       system_handler=True)
    du = group.add_parser("du", help="disk usage")
    du.add_argument("--filter", action="append", default=[], help="provide filter values")
    du.add_argument("--verbose", action="store_true", help='shorthand for "--format=pretty"')
    du.add_argument("--format", help="format the output")
    du.set_defaults(parser=du, handler="cmd_builder_du", cli_module="build",
                    system_handler=True)


def _build(p: Any) -> None:
    p.add_argument("context", metavar="PATH | URL | -")
    p.add_argument("-t", "--tag", action="append", default=[],
                   help="name and optionally a tag in the 'name:tag' format")
    p.add_argument("-f", "--file", help="name of the Dockerfile (default: PATH/Dockerfile)")
    p.add_argument("--target", help="set the target build stage to build")
    p.add_argument("--build-arg", action="append", default=[], help="set build-time variables")
    p.add_argument("--label", action="append", default=[], help="set metadata for an image")
    p.add_argument("--no-cache", action="store_true",
                   help="do not use cache when building the image")
    p.add_argument("--no-cache-filter", action="append", default=[],
                   help="do not cache specified stages")
    p.add_argument("--pull", action="store_true",
                   help="always attempt to pull all referenced images")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="suppress the build output and print image ID on success")
    p.add_argument("--iidfile", help="write the image ID to the file")
    p.add_argument("--platform", help="set target platform for build")
    p.add_argument("--progress", default=None,
                   help="set type of progress output (auto, plain, tty, quiet)")
    p.add_argument("--secret", action="append", default=[],
                   help='secret to expose to the build (format: "id=mysecret[,src=/local/'
                        'secret]")')
    p.add_argument("--network", default="default",
                   help="set the networking mode for the RUN instructions during build")
    p.add_argument("--cache-from", action="append", default=[],
                   help='external cache sources (e.g., "user/app:cache", '
                        '"type=local,src=path/to/dir")')
    p.add_argument("--cache-to", action="append", default=[],
                   help='cache export destinations (e.g., "type=local,dest=path/to/dir")')
    p.add_argument("-o", "--output", action="append", default=[],
                   help='output destination (format: "type=local,dest=path")')
    # Accepted and ignored, as BuildKit does: it keeps no intermediate containers.
    for flag in ("--rm", "--force-rm", "--compress"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(parser=p, handler="cmd_build", build_handler=True)
