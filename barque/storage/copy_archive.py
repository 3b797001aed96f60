"""The host side of `docker cp` out of a container: its archive written to a host path with
Docker's rules (the client's archive.CopyTo).

Where it lands: into DEST when DEST is an existing directory (entries keep their names);
else in DEST's parent with the source's base name renamed to DEST's (a new directory, or a
file that replaces an existing file). A directory never replaces a file, nor a file a
directory.

The archive is made from the container's files, so it is read as hostile: every name is
one relative path below the extraction dir, every entry is made through directory fds that
never follow a symlink (tarsafe), hard links only point at entries of the same extraction.
Owners are the caller's and set-id bits, file capabilities and device nodes are dropped,
unless `preserve` (`cp -a`) keeps owners, modes and capabilities.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import IO

from barque.storage import tar_members, tarsafe

_MAX_SYMLINKS = 10  # Docker's CopyInfoDestinationPath gives up after as many


class CopyError(Exception):
    """The copy cannot be made; Docker's words."""


def _destination(path: str) -> tuple[str, bool, bool]:
    """(the path, whether it exists, whether it is a dir), following a symlink at DEST as
    Docker does (the link's target is where the copy goes)."""
    for _ in range(_MAX_SYMLINKS + 1):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = os.path.dirname(path.rstrip("/")) or "."
            if not os.path.exists(parent):
                raise CopyError(f"no such directory: {parent}") from None
            if not os.path.isdir(parent):
                raise CopyError(f"not a directory: {parent}") from None
            return path, False, False
        if not stat.S_ISLNK(st.st_mode):
            return path, True, stat.S_ISDIR(st.st_mode)
        target = os.readlink(path)
        path = target if target.startswith("/") else os.path.join(
            os.path.dirname(path.rstrip("/")), target)
    raise CopyError(f"too many symlinks in {path}")


def _split(path: str) -> tuple[str, str]:
    """Docker's SplitPathDirEntry: a trailing `/.` keeps `.` as the base."""
    cleaned = os.path.normpath(path)
    if path.endswith(("/.", "/./")) or path == ".":
        cleaned = os.path.join(cleaned, ".")
    return os.path.dirname(cleaned) or ".", os.path.basename(cleaned) or cleaned


def plan(dest: str, src_is_dir: bool) -> tuple[str, str | None]:
    """(the dir to extract into, the base name the source's entries are renamed to, if any)."""
    path, exists, is_dir = _destination(dest)
    directory, base = _split(path)
    if exists and is_dir:
        return path, None
    if exists and src_is_dir:
        raise CopyError("cannot copy directory")
    if not exists and not src_is_dir and path.endswith(("/", "/.")):
        raise CopyError(f"no such directory: {path}")
    return directory, base


def _parts(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise CopyError(f"invalid copy source content: {name!r}")
    return parts


def _rebase(name: str, old: str, new: str | None) -> str:
    if new is None:
        return name
    if name == old or name.startswith(old + "/") or (old == "." and name == "./"):
        return new + name[len(old):]
    raise CopyError(f"invalid copy source content: {name!r}")


class _Writer:
    def __init__(self, root_fd: int, preserve: bool) -> None:
        self.root_fd = root_fd
        self.preserve = preserve
        self.dir_times: list[tuple[list[str], int]] = []

    def open_parent(self, parts: list[str]) -> int:
        return tarsafe.open_parent(self.root_fd, parts)

    def meta(self, member: tarfile.TarInfo) -> tarsafe.Meta:
        mode = member.mode & 0o7777
        if self.preserve:
            return tarsafe.Meta(member.uid, member.gid, mode, int(member.mtime) * 10**9,
                                tar_members.pax_xattrs(member))
        # The caller's own files: no set-id bit or capability a container chose.
        return tarsafe.Meta(os.getuid(), os.getgid(), mode & 0o1777, int(member.mtime) * 10**9)

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str],
            link_parts: list[str] | None) -> None:
        if not parts:  # the extraction dir itself ("./"): only its metadata
            return
        parent = self.open_parent(parts)
        try:
            self._add(tar, member, parent, parts, link_parts)
        finally:
            os.close(parent)

    def _add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int,
             parts: list[str], link_parts: list[str] | None) -> None:
        name = parts[-1]
        existing = tarsafe.lstat(parent, name)
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode) != member.isdir():
                what = "directory" if stat.S_ISDIR(existing.st_mode) else "non-directory"
                raise CopyError(f"cannot overwrite {what} {'/'.join(parts)!r} with "
                                f"{'directory' if member.isdir() else 'non-directory'}")
            if not member.isdir():
                tarsafe.remove(parent, name)
        # Devices unless `preserve` (see above), and types tarfile knows no file for, are skipped.
        tar_members.make(tar, member, parent, name, self.meta(member), devices=self.preserve,
                         link=lambda at, as_name: self._link(link_parts, at, as_name))
        if member.isdir():
            self.dir_times.append((parts, int(member.mtime) * 10**9))

    def _link(self, link_parts: list[str] | None, parent: int, name: str) -> None:
        assert link_parts is not None
        src_parent = self.open_parent(link_parts)
        try:
            tarsafe.make_link(src_parent, link_parts[-1], parent, name)
        finally:
            os.close(src_parent)

    def finish(self) -> None:
        for parts, mtime in reversed(self.dir_times):  # deepest last made, set first
            parent = self.open_parent(parts)
            try:
                fd = tarsafe.open_dir(parent, parts[-1])
            finally:
                os.close(parent)
            try:
                tarsafe.set_dir_mtime(fd, mtime)
            finally:
                os.close(fd)


def extract(stream: IO[bytes], into: str, src_base: str, rename: str | None,
            preserve: bool) -> None:
    """Write the archive `stream` (entries named `src_base` and `src_base/...`) into the
    directory `into`, `src_base` renamed to `rename` when given (see `plan`)."""
    root_fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    writer = _Writer(root_fd, preserve)
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                          errors="surrogateescape") as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]
                if member.sparse is not None:
                    raise CopyError(f"invalid copy source content: {member.name!r}")
                parts = _parts(_rebase(member.name, src_base, rename))
                link = None
                if member.islnk():
                    link = _parts(_rebase(member.linkname, src_base, rename))
                    if not link:
                        raise CopyError(f"invalid copy source content: {member.name!r}")
                if (member.ischr() or member.isblk()) and not preserve:
                    continue
                writer.add(tar, member, parts, link)
        writer.finish()
    except (OSError, tarfile.TarError, ValueError) as e:
        raise CopyError(str(e)) from None
    finally:
        os.close(root_fd)
