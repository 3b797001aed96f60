"""The image commands' handlers, with Docker's output: images, pull, push, tag, rmi, history,
image inspect|ls|rm|prune, save, load, import, login, logout (their arguments are in
barque.cli.image_args)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from barque.cli import formatting as fmt
from barque.engine import images as eng
from barque.image.store import ImageNotFound, ImageStore

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


# --- handlers ----------------------------------------------------------------------------

def cmd_images(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.engine import image_list

    try:
        rows = image_list.list_images(store, image_list.parse_filter_flags(ns.filter),
                                      ns.repository)
    except image_list.ImageFilterError as e:
        raise CommandError(str(e)) from None
    shown = [{"Repository": r.repository, "Tag": r.tag, "Digest": r.digest,
              "ID": r.id if ns.no_trunc else r.id.split(":", 1)[1][:12],
              "CreatedSince": fmt.time_ago_iso(r.created),
              "CreatedAt": fmt.go_time(r.created) if r.created else "",
              "Size": fmt.human_size(r.size), "Containers": "N/A"} for r in rows]
    if ns.quiet:  # one line per row, as Docker: an image with two tags is listed twice
        for row in shown:
            print(row["ID"])
        return 0
    table = IMAGES_DIGESTS_TABLE if ns.digests else IMAGES_TABLE
    sys.stdout.write(fmt.format_table(shown, ns.format, table, IMAGE_HEADERS,
                                      go_type="*formatter.imageContext"))
    return 0


def cmd_pull(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.cli.registry_progress import make_progress

    if ns.all_tags:
        raise CommandError("--all-tags is not supported yet")
    if _name_only(ns.name) and not ns.quiet:  # the docker CLI says so before it asks
        print("Using default tag: latest", flush=True)
    view = make_progress(quiet=ns.quiet)
    try:
        outcome = eng.pull(store, ns.name, platform=ns.platform, progress=view)
        view.pull_finished(outcome.reference, outcome.digest, up_to_date=not outcome.fresh)
    finally:
        view.close()
    return 0


def _name_only(text: str) -> bool:
    from barque.image import reference as refs

    try:
        ref = refs.parse(text, default_tag=False)
    except refs.ReferenceError as e:  # the docker CLI's own check: no daemon in the message
        raise CommandError(str(e)) from None
    return ref.tag is None and ref.digest is None


def cmd_push(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.cli.registry_progress import make_progress
    from barque.image import reference as refs
    from barque.registry.errors import RegistryError

    try:  # the docker CLI's own check, before it asks the daemon
        ref = refs.parse(ns.name)
    except refs.ReferenceError as e:
        raise CommandError(str(e)) from None
    view = make_progress(quiet=ns.quiet)
    try:
        # dockerd's stream says which repository first, before it looks for the image; an
        # error after that comes in the stream, which the docker CLI prints bare.
        view.push_started(ref)
        eng.push(store, ns.name, progress=view)
    except (eng.ImageError, RegistryError) as e:
        raise CommandError(str(e)) from None
    finally:
        view.close()
    return 0


def cmd_tag(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.image import reference

    try:  # the target is checked by the docker CLI before dockerd hears of it
        ref = reference.parse(ns.target)
    except reference.ReferenceError as e:
        raise CommandError(f"Error parsing reference: {gofmt_quote(ns.target)} is not a valid "
                           f"repository/tag: {e}") from None
    if ref.digest:
        raise CommandError("refusing to create a tag with a digest reference")
    eng.tag(store, ns.source, ns.target)
    return 0


def gofmt_quote(text: str) -> str:
    from barque.cli.gofmt import quote

    return quote(text)


def cmd_rmi(ns: argparse.Namespace, store: ImageStore) -> int:
    status = 0
    for name in ns.images:
        try:
            done = eng.remove(store, name, force=ns.force, paths=ns.paths)
        except eng.ImageError as e:
            # a missing one in the docker client's own words (its 404), named as given
            sys.stderr.write(f"Error: No such image: {name}\n" if isinstance(e, ImageNotFound)
                             else f"Error response from daemon: {e}\n")
            status = 1
            continue
        for item in done:
            for verb, what in item.items():
                print(f"{verb}: {what}")
    return status


def _history_at(created: str) -> str:
    """The docker CLI's history CreatedAt: RFC 3339 in local time; a missing time is 0."""
    from datetime import datetime

    seconds = fmt.parse_timestamp(created).timestamp() if created else 0
    return datetime.fromtimestamp(int(seconds)).astimezone().isoformat().replace("+00:00", "Z")


def _history_since(created: str) -> str:
    """The docker CLI's history CREATED: "N/A" for a step without a time (or at the epoch,
    as reproducible builds set it)."""
    if not created or fmt.parse_timestamp(created).timestamp() <= 0:
        return "N/A"
    return fmt.time_ago_iso(created)


def cmd_history(ns: argparse.Namespace, store: ImageStore) -> int:
    rows = []
    for row in eng.history(store, ns.image):
        shown_id = row.id if row.id == "<missing>" or ns.no_trunc else row.id[7:19]
        created_by = row.created_by
        if not ns.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append({
            "ID": shown_id,
            "CreatedSince": _history_since(row.created) if ns.human else _history_at(row.created),
            "CreatedAt": _history_at(row.created),
            "CreatedBy": created_by,
            "Size": fmt.human_size(row.size) if ns.human else str(row.size),
            "Comment": row.comment,
        })
    if ns.quiet:
        print("\n".join(r["ID"] for r in rows))
        return 0
    sys.stdout.write(fmt.format_table(rows, ns.format, HISTORY_TABLE, HISTORY_HEADERS,
                                      go_type="*image.historyContext"))
    return 0


def cmd_inspect(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.cli.template_views import inspect_template, print_objects

    template = inspect_template(ns.format)
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in ns.images:
        try:
            found.append(eng.inspect_named(store, name))
        except ImageNotFound:
            missing.append(name)
    status = print_objects(found, template)
    for name in missing:
        sys.stderr.write(f"Error: No such image: {name}\n")
    return 1 if missing else status


def cmd_prune(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.engine import image_list

    filters = image_list.parse_filter_flags(ns.filter) if ns.filter else {}
    if not ns.force:
        what = "all images without at least one container associated to them" if ns.all \
            else "all dangling images"
        sys.stdout.write(f"WARNING! This will remove {what}.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = eng.prune(store, all_images=ns.all, filters=filters)
    if report["ImagesDeleted"]:
        print("Deleted Images:")
        print(deleted_lines(report["ImagesDeleted"]))
        print()
    print(f"Total reclaimed space: {fmt.human_size(report['SpaceReclaimed'])}")
    return 0


def deleted_lines(items: list[dict[str, str]]) -> str:
    """A prune's ImageDeleteResponseItems as Docker's CLI prints them: `untagged: NAME`."""
    return "\n".join(f"{verb.lower()}: {what}" for item in items for verb, what in item.items())


def cmd_save(ns: argparse.Namespace, store: ImageStore) -> int:
    if ns.format == "oci-dir" and not ns.output:
        raise CommandError("--format oci-dir needs -o DIRECTORY")
    if ns.output:  # written whole or not at all, and not when an image is missing
        eng.save(store, ns.images, ns.output, ns.format)
        return 0
    if sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    sys.stdout.flush()
    eng.save(store, ns.images, sys.stdout.buffer, ns.format)
    return 0


def cmd_load(ns: argparse.Namespace, store: ImageStore) -> int:
    if ns.input:
        _check_readable(ns.input)
        lines = eng.load(store, ns.input)
    else:
        if sys.stdin.isatty():
            raise CommandError("requested load from stdin, but stdin is empty")
        lines = eng.load(store, sys.stdin.buffer)
    for line in lines:  # -q only hides progress, which Barque does not show for load
        print(line)
    return 0


def _check_readable(path: str) -> None:
    """The docker CLI opens `load -i`'s file itself: its error is Go's, "open PATH: …"."""
    import os

    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as e:
        raise CommandError(f"open {path}: {(e.strerror or str(e)).lower()}") from None


def cmd_import(ns: argparse.Namespace, store: ImageStore) -> int:
    source = sys.stdin.buffer if ns.file == "-" else ns.file
    image = eng.import_image(store, source, ns.reference, ns.change, ns.message, ns.platform)
    print(image.id)
    return 0


def cmd_login(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.engine import auth

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
    print(auth.login(ns.server, username, password)["Status"])
    return 0


def cmd_logout(ns: argparse.Namespace, store: ImageStore) -> int:
    from barque.engine import auth

    print(f"Removing login credentials for {ns.server}")
    auth.logout(ns.server)
    return 0
