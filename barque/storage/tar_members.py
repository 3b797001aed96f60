"""A tar member made in a directory through tarsafe (never following a symlink), for the
extractors that take an archive as `tar -x` would: ADD's auto-extract and `docker cp`'s host
side. What lands where, and which member types are allowed, stays theirs."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable

from barque.storage import tarsafe


def pax_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    """The member's `SCHILY.xattr.*` records, their values as the bytes written."""
    # tarfile decodes PAX values as UTF-8 with surrogateescape: this restores the bytes.
    return {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape")
            for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr.")}


def make(tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str,
         meta: tarsafe.Meta, *, link: Callable[[int, str], None], devices: bool) -> bool:
    """Make `member` as `name` in the directory `parent` (a directory merged with one there);
    a hard link through `link(parent, name)`, devices only when `devices`. False: a member
    of another type, nothing made."""
    if member.isdir():
        tarsafe.make_dir(parent, name, meta, exist_ok=True)
    elif member.isreg():
        data = tar.extractfile(member)
        assert data is not None
        tarsafe.write_file(parent, name, data, meta)
    elif member.issym():
        tarsafe.make_symlink(parent, name, member.linkname, meta)
    elif member.islnk():
        link(parent, name)
    elif member.isfifo():
        tarsafe.make_node(parent, name, stat.S_IFIFO, 0, meta)
    elif (member.ischr() or member.isblk()) and devices:
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        tarsafe.make_node(parent, name, kind, os.makedev(member.devmajor, member.devminor), meta)
    else:
        return False
    return True
