"""The image commands' arguments, with Docker's flags: images, pull, push, tag, rmi,
history, image inspect|ls|rm|prune, save, load, import, login, logout.

Kept apart from their handlers (barque.cli.images) so that building the parser, which every
`barque` command does, imports nothing heavy: `barque run` must start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from barque.cli.argv_scan import wanted

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> Any:
    """Top-level commands (`images`, `pull`, …) and the `image` group (`image ls`, …);
    returns the group, for commands defined elsewhere. `handler` names a function of
    barque.cli.images, imported only when the command runs."""
    image = commands.add_parser("image", help="manage images")
    group = image.add_subparsers(dest="image_command", metavar="COMMAND",
                                 parser_class=parser_class, required=True)
    for name, aliases, adder, handler in _COMMANDS:
        if name is not None:
            top = commands.add_parser(name, help=adder.__doc__)
            if wanted(name):
                adder(top)
            top.set_defaults(parser=top, handler=handler)
        for group_name in aliases:
            sub = group.add_parser(group_name, help=adder.__doc__)
            if wanted(group_name):
                adder(sub)
            sub.set_defaults(parser=sub, handler=handler)
    return group


# --- argument definitions ----------------------------------------------------------------

def _images_args(p: argparse.ArgumentParser) -> None:
    """list images"""
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]",
                   help="only images of this repository[:tag]")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output (dangling=, reference=, before=, since=, until=, label=)")
    p.add_argument("--format", help="format output with a Go template")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")


def _pull_args(p: argparse.ArgumentParser) -> None:
    """pull an image or a repository from a registry"""
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", help="platform, e.g. linux/arm64")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("-a", "--all-tags", action="store_true", help=argparse.SUPPRESS)


def _push_args(p: argparse.ArgumentParser) -> None:
    """push an image or a repository to a registry"""
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")


def _tag_args(p: argparse.ArgumentParser) -> None:
    """create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"""
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def _rmi_args(p: argparse.ArgumentParser) -> None:
    """remove one or more images"""
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")


def _history_args(p: argparse.ArgumentParser) -> None:
    """show the history of an image"""
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--format", help="format output with a Go template")
    p.add_argument("-H", "--human", action=argparse.BooleanOptionalAction, default=True,
                   help="print sizes and dates in human readable format")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    """display detailed information on one or more images"""
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", help="format output with a Go template")


def _prune_args(p: argparse.ArgumentParser) -> None:
    """remove unused images"""
    p.add_argument("-a", "--all", action="store_true",
                   help="remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[],
                   help='Provide filter values (e.g. "until=<timestamp>")')


def _save_args(p: argparse.ArgumentParser) -> None:
    """save one or more images to a tar archive (streamed to STDOUT by default)"""
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    p.add_argument("--format", default="docker-archive",
                   choices=("docker-archive", "oci-archive", "oci-dir"),
                   help="docker-archive (default; holds an OCI layout too), oci-archive, or "
                        "oci-dir (a layout directory, needs -o)")


def _load_args(p: argparse.ArgumentParser) -> None:
    """load an image from a tar archive or STDIN"""
    p.add_argument("-i", "--input",
                   help="read from a tar archive (or an OCI layout directory), not STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")


def _import_args(p: argparse.ArgumentParser) -> None:
    """import the contents from a tarball to create a filesystem image"""
    p.add_argument("file", metavar="file|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", help="set commit message for imported image")
    p.add_argument("--platform", help="set platform if server is multi-platform capable")


def _login_args(p: argparse.ArgumentParser) -> None:
    """log in to a registry"""
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    p.add_argument("-u", "--username", help="username")
    p.add_argument("-p", "--password", help="password")
    p.add_argument("--password-stdin", action="store_true", help="take the password from stdin")


def _logout_args(p: argparse.ArgumentParser) -> None:
    """log out from a registry"""
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


# (top-level name or None, names under `image`, arguments, handler)
_COMMANDS: list[tuple[str | None, tuple[str, ...], Callable[[argparse.ArgumentParser], None],
                      str]] = [
    ("images", ("ls", "list"), _images_args, "cmd_images"),
    ("pull", ("pull",), _pull_args, "cmd_pull"),
    ("push", ("push",), _push_args, "cmd_push"),
    ("tag", ("tag",), _tag_args, "cmd_tag"),
    ("rmi", ("rm", "remove"), _rmi_args, "cmd_rmi"),
    ("history", ("history",), _history_args, "cmd_history"),
    (None, ("inspect",), _inspect_args, "cmd_inspect"),
    (None, ("prune",), _prune_args, "cmd_prune"),
    ("save", ("save",), _save_args, "cmd_save"),
    ("load", ("load",), _load_args, "cmd_load"),
    ("import", ("import",), _import_args, "cmd_import"),
    ("login", (), _login_args, "cmd_login"),
    ("logout", (), _logout_args, "cmd_logout"),
]
