"""The image commands' handlers, with Docker's output: images, pull, push, tag, rmi, history,
image inspect|ls|rm|prune, save, load, import, login, logout (their arguments are in
barque.cli.image_args)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from barque.cli import formatting as fmt
from barque.engine import images as eng
from barque.image import reference as refs
from barque.image.store import Image, ImageStore

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
