"""COPY and ADD: matched sources copied from one root (the build context, or another stage's
root filesystem) into a step's root filesystem, with Docker's rules (the Dockerfile
reference's Source and Destination sections, BuildKit's fsutil copy for the details):

- a directory's contents are copied, not the directory; several sources need a destination
  ending in `/`; a relative destination is below WORKDIR; missing destination directories
  are made (0755, owned by --chown's ids or root);
- files keep their mode, mtime and xattrs; owners are root's (the context), the source's
  (`keep_owners`, COPY --from) or --chown's; --chmod applies to every entry copied;
- symlinks are copied as symlinks; hard links within one COPY stay hard links;
- ADD unpacks a local tar archive into the destination (see unpack.py).

Both roots are hostile. A source path is opened inside its root (a matched symlink is
followed, but only inside the root) and everything under it is walked O_NOFOLLOW from
directory fds. The destination is resolved inside the step's root with openat2
RESOLVE_IN_ROOT (a layer may have made /app a symlink to /etc or to ../../..: the write lands
in <root>/etc or <root>, never on the host); below it every entry is made with *at calls
that never follow a symlink (tarsafe)."""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from barque.build import modes
from barque.build.sources import Source
from barque.linux import paths
from barque.storage import tarsafe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Protocol

    class Matcher(Protocol):  # barque/build/ignore.py's (.dockerignore)
        def matches(self, relpath: str) -> bool: ...

_RDIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyError(Exception):
    """The copy cannot be made (Docker's words); nothing is written outside the root."""


# --- --chown -------------------------------------------------------------------------------

def resolve_chown(dst_root: str, spec: str) -> tuple[int, int]:
    """--chown's `user[:group]` (names or ids) against the destination's /etc/passwd and
    /etc/group, read inside its root, as BuildKit's readUser: a user name gives its uid and
    primary gid, a numeric user the same number as gid, a group its gid. Names that are not
    there fail the build (the reference's rule); numeric ids need no files."""
    from barque.storage.rootfs_files import RootfsError, read_rootfs_file

    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise CopyError(f"invalid chown string format: {spec}")
    user, group = parts[0], parts[1] if len(parts) == 2 else ""
    try:
        if user.isdigit():
            uid = gid = int(user)
        else:
            entry = next((r for r in read_rootfs_file(dst_root, "/etc/passwd")
                          if len(r) >= 4 and r[0] == user and r[2].isdigit()
                          and r[3].isdigit()), None)
            if entry is None:
                raise CopyError(f"can't find uid for user {user}: no such user: {user}")
            uid, gid = int(entry[2]), int(entry[3])
        if group.isdigit():
            gid = int(group)
        elif group:
            match = next((r for r in read_rootfs_file(dst_root, "/etc/group")
                          if len(r) >= 3 and r[0] == group and r[2].isdigit()), None)
            if match is None:
                raise CopyError(f"can't find gid for group {group}: no such group: {group}")
            gid = int(match[2])
    except RootfsError as e:
        raise CopyError(str(e)) from None
    return uid, gid


# --- --exclude -----------------------------------------------------------------------------

class _Excludes:
    """--exclude patterns (Go filepath.Match per component, `**` for any depth), matched
    against an entry's path in the source root and below the source being copied; a
    matched directory excludes what it holds."""

    def __init__(self, patterns: Iterable[str]) -> None:
        import re

        self.regexes = [re.compile(_glob_regex(p)) for p in patterns if p.strip("/. ")]

    def __bool__(self) -> bool:
        return bool(self.regexes)

    def matches(self, *rels: str) -> bool:
        return any(r.match(rel) for rel in rels if rel for r in self.regexes)


def _glob_regex(pattern: str) -> str:
    import re

    pat = posixpath.normpath(pattern.lstrip("/"))
    out, i = [], 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**", i):
            out.append(".*")
            i += 2
            if pat.startswith("/", i):  # `**/` also matches no directory at all
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pat):
            i += 1
            out.append(re.escape(pat[i]))
        elif c == "[":
            end = pat.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pat[i + 1:end]
                if body.startswith("^"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                else:
                    body = body.replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "(?:/.*)?$"  # a matched directory takes its contents with it


# --- destination paths ---------------------------------------------------------------------

def dest_is_dir(dest: str) -> bool:
    """Whether a destination as written names a directory: a trailing `/`, or `.`/`..` as
    its last component (BuildKit's reading)."""
    return dest.endswith("/") or posixpath.basename(dest) in (".", "..") or dest == ""


def _dest_path(dest: str, workdir: str) -> tuple[str, bool]:
    """(the destination made absolute and clean, whether it names a directory)."""
    is_dir = dest_is_dir(dest)
    if not dest.startswith("/"):
        dest = posixpath.join(workdir or "/", dest)
    return posixpath.normpath("/" + dest.lstrip("/")), is_dir


def _mkdirs(root_fd: int, path: str, owner: tuple[int, int]) -> int:
    """`mkdir -p` of `path` inside the root (symlinks followed inside it): an O_PATH fd of
    the directory. The directories it makes are 0755 and owned by `owner` (--chown's ids
    for made ones only, as BuildKit's MkdirAll)."""
    try:
        fd = paths.open_in_root(root_fd, path)
    except FileNotFoundError:
        fd = None
    except NotADirectoryError:
        raise CopyError(f"mkdir {path}: not a directory") from None
    if fd is None:
        parent, name = posixpath.split(path)
        pfd = _mkdirs(root_fd, parent, owner)
        try:
            try:
                os.mkdir(name, 0o700, dir_fd=pfd)
            except FileExistsError:  # a dangling symlink: made where it points, in the root
                os.close(paths.mkdir_all(root_fd, path))
            else:
                made = os.open(name, _RDIR, dir_fd=pfd)
                try:
                    os.fchown(made, *owner)
                    os.fchmod(made, 0o755)  # not left to the umask
                finally:
                    os.close(made)
        finally:
            os.close(pfd)
        fd = paths.open_in_root(root_fd, path)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise CopyError(f"mkdir {path}: not a directory")
    return fd


def _resolved(root: str, path: str) -> str:
    """`path` with its symlinks resolved inside the root, as a root-relative absolute path
    (where BuildKit's RootPath writes a file whose destination is an existing symlink)."""
    joined = paths.secure_join(root, path)
    rel = os.path.relpath(joined, root)
    return "/" if rel == "." else "/" + rel


# --- the copy ------------------------------------------------------------------------------

class _Copier:
    def __init__(self, src_root_fd: int, dst_root_fd: int, *, chown: tuple[int, int] | None,
                 chmod: modes.Chmod | None, keep_owners: bool, excludes: _Excludes,
                 ignore: Matcher | None) -> None:
        self.src_root = src_root_fd
        self.dst_root = dst_root_fd
        self.chown = chown
        self.chmod = chmod
        self.keep_owners = keep_owners
        self.excludes = excludes
        self.ignore = ignore
        self.links: dict[tuple[int, int], tuple[int, str]] = {}  # inode -> (dir fd, name)

    def close(self) -> None:
        for fd, _ in self.links.values():
            os.close(fd)
        self.links.clear()

    # metadata
    def owner_of(self, st: os.stat_result) -> tuple[int, int]:
        if self.chown is not None:
            return self.chown
        return (st.st_uid, st.st_gid) if self.keep_owners else (0, 0)

    def meta(self, st: os.stat_result, xattrs: dict[str, bytes] | None = None) -> tarsafe.Meta:
        mode = stat.S_IMODE(st.st_mode)
        if self.chmod is not None:
            mode = self.chmod.apply(mode, stat.S_ISDIR(st.st_mode))
        uid, gid = self.owner_of(st)
        return tarsafe.Meta(uid, gid, mode, st.st_mtime_ns, xattrs)

    def skipped(self, rel: str, below: str, is_dir: bool) -> bool:
        if bool(self.excludes) and self.excludes.matches(rel, below):
            return True
        if self.ignore is None or not self.ignore.matches(rel):
            return False
        # An ignored directory is still walked when a `!` exception may keep something in
        # it (.dockerignore's rule), as patternmatcher's MatchesUsingParentResults.
        may = getattr(self.ignore, "may_match_children", None)
        return not (is_dir and may is not None and may(rel))

    # entries
    def copy_entry(self, src_fd: int, st: os.stat_result, parent: int, name: str, rel: str,
                   below: str) -> None:
        """Copy the entry open as `src_fd` (O_PATH, lstat `st`) to `name` in the dir
        `parent`; `rel` is its path in the source root, `below` below the copied source."""
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFDIR:
            dfd = self.open_target_dir(parent, name, st)
            try:
                self.copy_dir(src_fd, dfd, st, rel, below, meta=True)
            finally:
                os.close(dfd)
            return
        self.clear_target(parent, name)
        if fmt == stat.S_IFREG:
            self.copy_file(src_fd, st, parent, name)
        elif fmt == stat.S_IFLNK:
            target = os.readlink("", dir_fd=src_fd)  # the link opened, not a name again
            tarsafe.make_symlink(parent, name, target, self.meta(st))
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            tarsafe.make_node(parent, name, fmt, st.st_rdev, self.meta(st))
        # sockets are not copied (BuildKit skips them too)

    def clear_target(self, parent: int, name: str) -> None:
        existing = tarsafe.lstat(parent, name)
        if existing is None:
            return
        if stat.S_ISDIR(existing.st_mode):
            raise CopyError(f"cannot replace to directory {name} with file")
        os.unlink(name, dir_fd=parent)  # a symlink there is replaced, never written through

    def open_target_dir(self, parent: int, name: str, st: os.stat_result) -> int:
        """The directory `name` in `parent`, made if missing (O_NOFOLLOW: a symlink in the
        way is an error, as BuildKit's Lstat check)."""
        existing = tarsafe.lstat(parent, name)
        if existing is None:
            os.mkdir(name, 0o700, dir_fd=parent)
        elif not stat.S_ISDIR(existing.st_mode):
            raise CopyError(f"cannot copy to non-directory: {name}")
        return os.open(name, _RDIR, dir_fd=parent)

    def copy_file(self, src_fd: int, st: os.stat_result, parent: int, name: str) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            first_dir, first_name = self.links[key]
            tarsafe.make_link(first_dir, first_name, parent, name)
            return
        # Reopened through its fd (the inode checked, not a name looked up again).
        rfd = os.open(paths.proc_path(src_fd), os.O_RDONLY | os.O_CLOEXEC)
        try:
            tarsafe.write_file(parent, name, rfd, self.meta(st, _xattrs(rfd)))
        finally:
            os.close(rfd)
        if st.st_nlink > 1:
            self.links[key] = (os.dup(parent), name)

    def copy_dir(self, src_fd: int, dfd: int, st: os.stat_result, rel: str, below: str,
                 meta: bool) -> None:
        """The contents of the source dir `src_fd` into the dir `dfd`; then, if `meta`,
        the source's owner, mode, xattrs and mtime on `dfd`."""
        rfd = os.open(".", _RDIR, dir_fd=src_fd)
        try:
            for name in sorted(os.listdir(rfd)):
                child_rel = f"{rel}/{name}" if rel else name
                child_below = f"{below}/{name}" if below else name
                try:
                    cfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=rfd)
                except FileNotFoundError:
                    continue
                try:
                    cst = os.fstat(cfd)
                    if not self.skipped(child_rel, child_below, stat.S_ISDIR(cst.st_mode)):
                        self.copy_entry(cfd, cst, dfd, name, child_rel, child_below)
                finally:
                    os.close(cfd)
            if meta:
                m = self.meta(st, _xattrs(rfd))
                os.fchown(dfd, m.uid, m.gid)
                os.fchmod(dfd, m.mode)
                tarsafe.set_xattrs(dfd, m.xattrs)
                os.utime(dfd, ns=(st.st_mtime_ns, st.st_mtime_ns))
        finally:
            os.close(rfd)


def _xattrs(fd: int) -> dict[str, bytes]:
    try:
        names = os.listxattr(fd)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    out = {}
    for key in names:
        try:
            out[key] = os.getxattr(fd, key)
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP):
                raise
    return out


def _pivot(pattern: str, path: str) -> str:
    """--parents: the part of `path` kept below the destination (after a `/./` pivot)."""
    pat = pattern.lstrip("/")
    while pat.startswith("./"):
        pat = pat[2:]
    if "/./" not in pat:
        return path
    keep = len([p for p in pat.split("/./", 1)[0].split("/") if p not in ("", ".")])
    return "/".join(path.split("/")[keep:])


def copy(src_root: str, sources: Sequence[Source], dst_root: str, dest: str, *,
         workdir: str = "/", chown: tuple[int, int] | None = None,
         chmod: int | str | None = None, parents: bool = False,
         excludes: Sequence[str] = (), ignore: Matcher | None = None, unpack: bool = False,
         link: bool = False, keep_owners: bool = False, command: str = "COPY") -> None:
    """COPY/ADD `sources` (matched in `src_root`) to `dest` in `dst_root`. `keep_owners`:
    files keep their source owners (COPY --from another stage; the context's files are
    root's). `link` (--link) changes how the builder layers the result, not the copy: it
    passes an empty `dst_root`. Raises CopyError."""
    del link
    dest_abs, dest_is_dir = _dest_path(dest, workdir)
    total = sum(len(s.paths) for s in sources)
    if parents:
        dest_is_dir = True
    elif total > 1 and not dest_is_dir:
        raise CopyError(f"When using {command} with more than one source file, the "
                        "destination must be a directory and end with a /")
    try:
        cmode = modes.parse(chmod)
    except modes.ChmodError as e:
        raise CopyError(str(e)) from None
    made_owner = chown or (0, 0)
    src_fd = paths.open_root(src_root)
    dst_fd = paths.open_root(dst_root)
    copier = _Copier(src_fd, dst_fd, chown=chown, chmod=cmode, keep_owners=keep_owners,
                     excludes=_Excludes(excludes), ignore=ignore)
    try:
        for source in sources:
            for path in source.paths:
                sfd = _open_source(src_fd, path)
                try:
                    _copy_one(copier, sfd, path, source, dst_root, dest_abs, dest_is_dir,
                              parents, unpack, made_owner)
                finally:
                    os.close(sfd)
    except OSError as e:
        raise CopyError(_os_message(e)) from None
    except RecursionError:  # a hostile tree nested deeper than Python's stack
        raise CopyError("copy: directory tree nested too deep") from None
    finally:
        copier.close()
        os.close(src_fd)
        os.close(dst_fd)


def _os_message(e: OSError) -> str:
    where = f" {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{':' if where else ''}{where}"


def _open_source(src_fd: int, path: str) -> int:
    """The matched source, opened inside its root: a symlink matched is followed (BuildKit
    copies what it points to), but never out of the root."""
    try:
        return paths.open_in_root(src_fd, path or "/")
    except FileNotFoundError:
        raise CopyError(f"failed to compute cache key: \"/{path}\": not found") from None


def _copy_one(copier: _Copier, sfd: int, path: str, source: Source, dst_root: str,
              dest_abs: str, dest_is_dir: bool, parents: bool, unpack: bool,
              made_owner: tuple[int, int]) -> None:
    st = os.fstat(sfd)
    dst_fd = copier.dst_root
    name = posixpath.basename(path) or "/"
    if parents:
        kept = _pivot(source.pattern, path)
        target = posixpath.normpath(posixpath.join(dest_abs, kept)) if kept else dest_abs
        if stat.S_ISDIR(st.st_mode):
            dest_abs, dest_is_dir = target, True
        else:
            dest_abs, dest_is_dir = target, False
    if unpack and stat.S_ISREG(st.st_mode) and _unpack(copier, sfd, dest_abs, made_owner):
        return
    if stat.S_ISDIR(st.st_mode):
        _copy_dir_source(copier, sfd, st, path, dest_abs, dest_is_dir, made_owner)
        return
    # A file (or symlink, device): into the destination dir, or as the destination.
    if dest_is_dir:
        parent, leaf = _mkdirs(dst_fd, dest_abs, made_owner), name
    else:
        existing = _existing(dst_fd, dest_abs)
        if existing is not None and stat.S_ISDIR(existing):
            parent, leaf = _mkdirs(dst_fd, dest_abs, made_owner), name
        else:
            # An existing (or dangling) symlink there is followed inside the root, as
            # BuildKit's RootPath; its last component is then replaced, never written through.
            where = _resolved(dst_root, dest_abs)
            if where == "/":
                raise CopyError(f"cannot replace to directory {dest_abs} with file")
            dirname, leaf = posixpath.split(where)
            parent = _mkdirs(dst_fd, dirname, made_owner)
    try:
        copier.copy_entry(sfd, st, parent, leaf, path, "")
    finally:
        os.close(parent)


def _existing(root_fd: int, path: str) -> int | None:
    """The st_mode of what `path` resolves to inside the root (symlinks followed), if any."""
    try:
        fd = paths.open_in_root(root_fd, path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    try:
        return os.fstat(fd).st_mode
    finally:
        os.close(fd)


def _copy_dir_source(copier: _Copier, sfd: int, st: os.stat_result, path: str, dest_abs: str,
                     dest_is_dir: bool, made_owner: tuple[int, int]) -> None:
    """A directory's contents into the destination directory. A destination the copy makes
    itself takes the source directory's metadata (BuildKit's copyDirectory); one ending in
    `/` was made beforehand with 0755, as BuildKit's MkdirAll of it."""
    dst_fd = copier.dst_root
    created = False
    if dest_is_dir:
        dfd = _mkdirs(dst_fd, dest_abs, made_owner)
    else:
        existing = _existing(dst_fd, dest_abs)
        if existing is not None and not stat.S_ISDIR(existing):
            raise CopyError(f"cannot copy to non-directory: {dest_abs}")
        if existing is None:
            parent_dir, leaf = posixpath.split(dest_abs)
            pfd = _mkdirs(dst_fd, parent_dir, made_owner)
            try:
                if tarsafe.lstat(pfd, leaf) is None:
                    os.mkdir(leaf, 0o700, dir_fd=pfd)
                    created = True
            finally:
                os.close(pfd)
        dfd = _mkdirs(dst_fd, dest_abs, made_owner)
    try:
        wfd = os.open(".", _RDIR, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        copier.copy_dir(sfd, wfd, st, path, "", meta=created)
    finally:
        os.close(wfd)


def _unpack(copier: _Copier, sfd: int, dest_abs: str, made_owner: tuple[int, int]) -> bool:
    """ADD of a local archive: unpacked into the destination (made as a directory, whether
    or not it ends in `/`). False if the file is not an archive."""
    from barque.build import unpack

    rfd = os.open(paths.proc_path(sfd), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if not unpack.is_archive(rfd):
            return False
        into = _mkdirs(copier.dst_root, dest_abs, made_owner)
        try:
            unpack.extract(rfd, into, copier.chown)
        except unpack.UnpackError as e:
            raise CopyError(str(e)) from None
        finally:
            os.close(into)
        return True
    finally:
        os.close(rfd)
