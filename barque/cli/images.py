"""Image commands with Docker's flags and output: images, pull, push, tag, rmi, history,
image inspect|ls|rm|prune, save, load, import, login, logout."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from barque.cli import formatting as fmt
from barque.engine import images as eng
from barque.image import reference as refs
from barque.image.store import Image, ImageStore

Handler = Callable[[argparse.Namespace, ImageStore], int]

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_DIGESTS_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                        "{{.CreatedSince}}\t{{.Size}}")
IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Digest": "DIGEST", "Containers": "CONTAINERS"}
HISTORY_TABLE = ("table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t"
                 "{{.Comment}}")
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


class CommandError(Exception):
    """A failure to report as Docker's CLI does: the message, exit status 1."""


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> Any:
    """Top-level commands (`images`, `pull`, …) and the `image` group (`image ls`, …);
    returns the group, for commands defined elsewhere."""
    image = commands.add_parser("image", help="manage images")
    group = image.add_subparsers(dest="image_command", metavar="COMMAND",
                                 parser_class=parser_class, required=True)
    for name, aliases, adder, handler in _COMMANDS:
        if name is not None:
            top = commands.add_parser(name, help=adder.__doc__)
            adder(top)
            top.set_defaults(parser=top, handler=handler)
        for group_name in aliases:
            sub = group.add_parser(group_name, help=adder.__doc__)
            adder(sub)
            sub.set_defaults(parser=sub, handler=handler)
    return group


# --- argument definitions ----------------------------------------------------------------

def _images_args(p: argparse.ArgumentParser) -> None:
    """list images"""
    p.add_argument("repository", nargs="?", help="only images of this repository[:tag]")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output (dangling=, reference=, before=, since=, label=)")
    p.add_argument("--format", help="format output with a Go template")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")


def _pull_args(p: argparse.ArgumentParser) -> None:
    """download an image from a registry"""
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", help="platform, e.g. linux/arm64")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("-a", "--all-tags", action="store_true", help=argparse.SUPPRESS)


def _push_args(p: argparse.ArgumentParser) -> None:
    """upload an image to a registry"""
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
    p.add_argument("--filter", action="append", default=[], help=argparse.SUPPRESS)


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


# --- handlers ----------------------------------------------------------------------------

def _image_rows(store: ImageStore, images: list[Image], ns: argparse.Namespace
                ) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for image in images:
        image_id = image.id if ns.no_trunc else image.short_id
        common = {"ID": image_id, "CreatedSince": fmt.time_ago_iso(image.created),
                  "CreatedAt": image.created, "Size": fmt.human_size(image.size),
                  "Containers": "N/A"}
        digests = {refs.parse(d, default_tag=False).familiar_repository: d.split("@", 1)[1]
                   for d in image.repo_digests}
        names = [refs.parse(t) for t in image.tags]
        if not names:
            digest = next(iter(digests.values()), "<none>")
            rows.append({"Repository": "<none>", "Tag": "<none>", "Digest": digest, **common})
        for ref in names:
            rows.append({"Repository": ref.familiar_repository, "Tag": ref.tag or "<none>",
                         "Digest": digests.get(ref.familiar_repository, "<none>"), **common})
    return rows


def _filter_images(store: ImageStore, images: list[Image], filters: list[str],
                   repository: str | None) -> list[Image]:
    import fnmatch

    out = images
    for spec in filters:
        key, sep, value = spec.partition("=")
        if not sep:
            raise CommandError(f'bad format of filter (expected name=value): "{spec}"')
        if key == "dangling":
            if value not in ("true", "false", "1", "0"):
                raise CommandError(f"Invalid filter 'dangling={value}'")
            want = value in ("true", "1")
            out = [i for i in out if (not i.tags) == want]
        elif key == "reference":
            out = [i for i in out if any(
                fnmatch.fnmatchcase(refs.parse(t).familiar, value)
                or fnmatch.fnmatchcase(refs.parse(t).familiar_repository, value)
                for t in i.tags)]
        elif key in ("before", "since"):
            pivot = store.resolve(value)
            out = [i for i in out if (i.created < pivot.created) == (key == "before")
                   and i.id != pivot.id]
        elif key == "label":
            name, _, want_value = value.partition("=")
            out = [i for i in out if _has_label(store, i, name, want_value or None)]
        else:
            raise CommandError(f"invalid filter '{key}'")
    if repository:
        try:
            ref = refs.parse(repository, default_tag=False)
        except refs.ReferenceError as e:
            raise CommandError(str(e)) from None
        wanted_tag = str(ref) if ref.tag else None
        out = [i for i in out if any(
            t == wanted_tag if wanted_tag else t.rsplit(":", 1)[0] == ref.repository
            for t in i.tags)]
    return out


def _has_label(store: ImageStore, image: Image, name: str, value: str | None) -> bool:
    labels = (store.config(image).get("config") or {}).get("Labels") or {}
    return name in labels and (value is None or labels[name] == value)


def cmd_images(ns: argparse.Namespace, store: ImageStore) -> int:
    images = _filter_images(store, store.images(), ns.filter, ns.repository)
    rows = _image_rows(store, images, ns)
    patterns = [f.partition("=")[2] for f in ns.filter if f.startswith("reference=")]
    if patterns:  # Docker lists only the matching tags of a matching image
        import fnmatch

        rows = [r for r in rows if all(
            fnmatch.fnmatchcase(f"{r['Repository']}:{r['Tag']}", p)
            or fnmatch.fnmatchcase(r["Repository"], p) for p in patterns)]
    if ns.repository:
        want = refs.parse(ns.repository, default_tag=False)
        rows = [r for r in rows if r["Repository"] == want.familiar_repository
                and (not want.tag or r["Tag"] == want.tag)]
    if ns.quiet:  # one line per row, as Docker: an image with two tags is listed twice
        for row in rows:
            print(row["ID"])
        return 0
    table = IMAGES_DIGESTS_TABLE if ns.digests else IMAGES_TABLE
    sys.stdout.write(fmt.format_table(rows, ns.format, table, IMAGE_HEADERS))
    return 0


def cmd_pull(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.registry.progress import make_progress

    if ns.all_tags:
        raise CommandError("--all-tags is not supported yet")
    view = make_progress(quiet=ns.quiet)
    try:
        outcome = eng.pull(store, ns.name, platform=ns.platform, progress=view)
        view.pull_finished(outcome.reference, outcome.digest, up_to_date=not outcome.fresh)
    finally:
        view.close()
    return 0


def cmd_push(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.registry.progress import make_progress

    view = make_progress(quiet=ns.quiet)
    try:
        eng.push(store, ns.name, progress=view)
    finally:
        view.close()
    return 0


def cmd_tag(ns: argparse.Namespace, store: ImageStore) -> int:
    store.tag(store.resolve(ns.source), ns.target)
    return 0


def cmd_rmi(ns: argparse.Namespace, store: ImageStore) -> int:
    status = 0
    for name in ns.images:
        try:
            lines = store.remove(name, force=ns.force)
        except eng.ImageError as e:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            status = 1
            continue
        for verb, what in lines:
            print(f"{verb}: {what}")
    return status


def cmd_history(ns: argparse.Namespace, store: ImageStore) -> int:
    image = store.resolve(ns.image)
    rows = []
    for row in eng.history(store, image):
        shown_id = row.id if row.id == "<missing>" or ns.no_trunc else row.id[7:19]
        created_by = row.created_by
        if not ns.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append({
            "ID": shown_id,
            "CreatedSince": fmt.time_ago_iso(row.created) if ns.human else row.created,
            "CreatedAt": row.created,
            "CreatedBy": created_by,
            "Size": fmt.human_size(row.size) if ns.human else str(row.size),
            "Comment": row.comment,
        })
    if ns.quiet:
        print("\n".join(r["ID"] for r in rows))
        return 0
    sys.stdout.write(fmt.format_table(rows, ns.format, HISTORY_TABLE, HISTORY_HEADERS))
    return 0


def cmd_inspect(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.cli.gotemplate import render

    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in ns.images:
        image = store.lookup(name)
        if image is None:
            missing.append(name)
        else:
            found.append(eng.inspect(store, image))
    if ns.format:
        for obj in found:
            print(render(ns.format, obj))
    else:
        print(json.dumps(found, indent=4))
    for name in missing:
        sys.stderr.write(f"Error: No such image: {name}\n")
    return 1 if missing else 0


def cmd_prune(ns: argparse.Namespace, store: ImageStore) -> int:
    if ns.filter:
        raise CommandError("image prune --filter is not supported yet")
    if not ns.force:
        what = "all images without at least one container associated to them" if ns.all \
            else "all dangling images"
        sys.stdout.write(f"WARNING! This will remove {what}.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    lines, reclaimed = store.prune(all_images=ns.all)
    if lines:
        print("Deleted Images:")
        for verb, what in lines:
            print(f"{verb}: {what}")
        print()
    print(f"Total reclaimed space: {fmt.human_size(reclaimed)}")
    return 0


def cmd_save(ns: argparse.Namespace, store: ImageStore) -> int:
    if ns.format == "oci-dir":
        if not ns.output:
            raise CommandError("--format oci-dir needs -o DIRECTORY")
        eng.save(store, ns.images, ns.output, ns.format)
        return 0
    if ns.output:
        from barque.image.archive import select
        from barque.image.oci_layout import atomic_writer

        select(store, ns.images)  # "No such image" before a file is made
        with atomic_writer(ns.output) as out:
            eng.save(store, ns.images, out, ns.format)
        return 0
    if sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    sys.stdout.flush()
    eng.save(store, ns.images, sys.stdout.buffer, ns.format)
    return 0


def cmd_load(ns: argparse.Namespace, store: ImageStore) -> int:
    if ns.input:
        lines = eng.load(store, ns.input)
    else:
        if sys.stdin.isatty():
            raise CommandError("requested load from stdin, but stdin is empty")
        lines = eng.load(store, sys.stdin.buffer)
    for line in lines:  # -q only hides progress, which Barque does not show for load
        print(line)
    return 0


def cmd_import(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.image.archive import import_tarball

    with store.writing():
        if ns.file == "-":
            image = import_tarball(store, sys.stdin.buffer, ns.reference, ns.change,
                                   ns.message, ns.platform)
        else:
            with open(ns.file, "rb") as f:
                image = import_tarball(store, f, ns.reference, ns.change, ns.message,
                                       ns.platform)
    print(image.id)
    return 0


def cmd_login(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.registry import auth

    password = ns.password
    if ns.password_stdin:
        if ns.password:
            raise CommandError("--password and --password-stdin are mutually exclusive")
        if not ns.username:
            raise CommandError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not ns.username or password is None:
        import getpass

        username = ns.username or input("Username: ")
        password = password if password is not None else getpass.getpass("Password: ")
    else:
        username = ns.username
    auth.login(ns.server, username, password)
    print("Login Succeeded")
    return 0


def cmd_logout(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.registry import auth

    print(f"Removing login credentials for {ns.server}")
    auth.logout(ns.server)
    return 0


# (top-level name or None, names under `image`, arguments, handler)
_COMMANDS: list[tuple[str | None, tuple[str, ...], Callable[[argparse.ArgumentParser], None],
                      Handler]] = [
    ("images", ("ls", "list"), _images_args, cmd_images),
    ("pull", ("pull",), _pull_args, cmd_pull),
    ("push", ("push",), _push_args, cmd_push),
    ("tag", ("tag",), _tag_args, cmd_tag),
    ("rmi", ("rm", "remove"), _rmi_args, cmd_rmi),
    ("history", ("history",), _history_args, cmd_history),
    (None, ("inspect",), _inspect_args, cmd_inspect),
    (None, ("prune",), _prune_args, cmd_prune),
    ("save", ("save",), _save_args, cmd_save),
    ("load", ("load",), _load_args, cmd_load),
    ("import", ("import",), _import_args, cmd_import),
    ("login", (), _login_args, cmd_login),
    ("logout", (), _logout_args, cmd_logout),
]
