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

What a source gives is exactly what sources.walk lists of it, so exactly what
sources.checksum keys (a cache hit can never stand for a different copy): the .dockerignore
on context paths, --exclude relative to each matched source (fsutil's copier), and an
ignored or excluded directory only where something kept is below it.

Both roots are hostile. A source path is opened inside its root (a matched symlink is
followed, but only inside the root) and everything under it is walked O_NOFOLLOW from
directory fds (sources.walk). The destination is resolved inside the step's root with openat2
RESOLVE_IN_ROOT (a layer may have made /app a symlink to /etc or to ../../..: the write lands
in <root>/etc or <root>, never on the host); below it every entry is made with *at calls
that never follow a symlink (tarsafe)."""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from barque.build import modes
from barque.build.ignore import IgnoreError, Matcher
from barque.build.sources import Found, Source, SourceError, walk, xattrs_of
from barque.linux import paths
from barque.storage import tarsafe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

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

class _Dir:
    """A destination directory the copy is filling: its fd, its path in the walk, and the
    metadata it takes once its contents are in (None: it keeps its own)."""

    __slots__ = ("path", "fd", "meta", "owned")

    def __init__(self, path: str, fd: int, meta: tarsafe.Meta | None, owned: bool) -> None:
        self.path, self.fd, self.meta, self.owned = path, fd, meta, owned


class _Copier:
    def __init__(self, dst_root_fd: int, *, chown: tuple[int, int] | None,
                 chmod: modes.Chmod | None, keep_owners: bool) -> None:
        self.dst_root = dst_root_fd
        self.chown = chown
        self.chmod = chmod
        self.keep_owners = keep_owners
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

    def meta(self, found: Found) -> tarsafe.Meta:
        st = found.st
        mode = stat.S_IMODE(st.st_mode)
        if self.chmod is not None:
            mode = self.chmod.apply(mode, stat.S_ISDIR(st.st_mode))
        uid, gid = self.owner_of(st)
        return tarsafe.Meta(uid, gid, mode, st.st_mtime_ns, xattrs_of(found))

    # entries
    def copy_tree(self, into: int, top: Found, below: Iterator[Found], meta: bool) -> None:
        """What the walk gives below the source directory `top`, into the open directory
        `into` (parents come before their entries, so the directory an entry goes in is
        on the stack); then, if `meta`, `top`'s metadata on `into`. A directory's metadata
        is set once its contents are in (writing them changes its mtime)."""
        stack = [_Dir("", into, self.meta(top) if meta else None, owned=False)]
        try:
            for found in below:
                parent, _, name = found.path.rpartition("/")
                while stack and stack[-1].path != parent:
                    self.finish(stack.pop())
                if not stack:  # the walk gives parents first: cannot happen
                    raise CopyError(f"copy: {found.path}: parent not copied")
                dfd = stack[-1].fd
                if stat.S_ISDIR(found.st.st_mode):
                    sub = self.open_target_dir(dfd, name)
                    stack.append(_Dir(found.path, sub, self.meta(found), owned=True))
                else:
                    self.copy_entry(found, dfd, name)
            while stack:
                self.finish(stack.pop())
        finally:
            for d in stack:
                if d.owned:
                    os.close(d.fd)

    def finish(self, d: _Dir) -> None:
        try:
            if d.meta is not None:
                m = d.meta
                os.fchown(d.fd, m.uid, m.gid)  # owner first: it clears set-id bits
                os.fchmod(d.fd, m.mode)
                tarsafe.set_xattrs(d.fd, m.xattrs)
                if m.mtime_ns is not None:
                    os.utime(d.fd, ns=(m.mtime_ns, m.mtime_ns))
        finally:
            if d.owned:
                os.close(d.fd)

    def copy_entry(self, found: Found, parent: int, name: str) -> None:
        """Copy the non-directory `found` to `name` in the directory `parent`."""
        st = found.st
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFSOCK:
            return  # not copied (BuildKit skips them too)
        self.clear_target(parent, name)
        if fmt == stat.S_IFREG:
            self.copy_file(found, parent, name)
        elif fmt == stat.S_IFLNK:
            target = os.readlink(found.name, dir_fd=found.dir_fd)
            tarsafe.make_symlink(parent, name, target, self.meta(found))
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            tarsafe.make_node(parent, name, fmt, st.st_rdev, self.meta(found))

    def clear_target(self, parent: int, name: str) -> None:
        existing = tarsafe.lstat(parent, name)
        if existing is None:
            return
        if stat.S_ISDIR(existing.st_mode):
            raise CopyError(f"cannot replace to directory {name} with file")
        os.unlink(name, dir_fd=parent)  # a symlink there is replaced, never written through

    def open_target_dir(self, parent: int, name: str) -> int:
        """The directory `name` in `parent`, made if missing (O_NOFOLLOW: a symlink in the
        way is an error, as BuildKit's Lstat check)."""
        existing = tarsafe.lstat(parent, name)
        if existing is None:
            os.mkdir(name, 0o700, dir_fd=parent)
        elif not stat.S_ISDIR(existing.st_mode):
            raise CopyError(f"cannot copy to non-directory: {name}")
        return os.open(name, _RDIR, dir_fd=parent)

    def copy_file(self, found: Found, parent: int, name: str) -> None:
        st = found.st
        key = (st.st_dev, st.st_ino)
        first = self.links.get(key) if st.st_nlink > 1 else None
        # Linked to its first copy, unless that was this very name (a second source
        # copying the same inode there): the clear above removed it, write it again.
        if first is not None and not _same_place(first, parent, name):
            tarsafe.make_link(first[0], first[1], parent, name)
            return
        rfd = _open_file(found)
        try:
            tarsafe.write_file(parent, name, rfd, self.meta(found))
        finally:
            os.close(rfd)
        if st.st_nlink > 1:
            if first is not None:
                os.close(first[0])
            self.links[key] = (os.dup(parent), name)


def _same_place(first: tuple[int, str], parent: int, name: str) -> bool:
    if first[1] != name:
        return False
    a, b = os.fstat(first[0]), os.fstat(parent)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _open_file(found: Found) -> int:
    """The regular file the walk found, opened for reading without following a symlink;
    CopyError if something else took its name since (O_NONBLOCK: a fifo cannot block)."""
    fd = os.open(found.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=found.dir_fd)
    now = os.fstat(fd)
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (found.st.st_dev,
                                                                         found.st.st_ino):
        os.close(fd)
        raise CopyError(f"copy: {found.name!r} changed while it was copied")
    return fd


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
    """COPY/ADD `sources` (matched in `src_root`) to `dest` in `dst_root`: exactly what
    sources.walk gives of each (and so what sources.checksum keys), with `ignore` (the
    context's .dockerignore) and `excludes` (--exclude, relative to each source) applied.
    `keep_owners`: files keep their source owners (COPY --from another stage; the context's
    files are root's). `link` (--link) changes how the builder layers the result, not the
    copy: it passes an empty `dst_root`. Raises CopyError."""
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
        ex = Matcher(excludes)
    except (modes.ChmodError, IgnoreError) as e:
        raise CopyError(str(e)) from None
    made_owner = chown or (0, 0)
    dst_fd = paths.open_root(dst_root)
    copier = _Copier(dst_fd, chown=chown, chmod=cmode, keep_owners=keep_owners)
    try:
        for source in sources:
            for path in source.paths:
                walking = walk(src_root, path, ignore, ex)
                try:
                    top = next(walking)
                    _copy_one(copier, top, walking, path, source, dst_root, dest_abs,
                              dest_is_dir, parents, unpack, made_owner)
                finally:
                    walking.close()
    except SourceError as e:
        raise CopyError(str(e)) from None
    except OSError as e:
        raise CopyError(_os_message(e)) from None
    except RecursionError:  # a destination path with more components than Python's stack
        raise CopyError("copy: directory tree nested too deep") from None
    finally:
        copier.close()
        os.close(dst_fd)


def _os_message(e: OSError) -> str:
    where = f" {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{':' if where else ''}{where}"


def _copy_one(copier: _Copier, top: Found, below: Iterator[Found], path: str, source: Source,
              dst_root: str, dest_abs: str, dest_is_dir: bool, parents: bool, unpack: bool,
              made_owner: tuple[int, int]) -> None:
    st = top.st
    dst_fd = copier.dst_root
    name = posixpath.basename(path) or "/"
    if parents:
        kept = _pivot(source.pattern, path)
        target = posixpath.normpath(posixpath.join(dest_abs, kept)) if kept else dest_abs
        dest_abs, dest_is_dir = target, stat.S_ISDIR(st.st_mode)
    if unpack and stat.S_ISREG(st.st_mode) and _unpack(copier, top, dest_abs, made_owner):
        return
    if stat.S_ISDIR(st.st_mode):
        _copy_dir_source(copier, top, below, dest_abs, dest_is_dir, made_owner)
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
        copier.copy_entry(top, parent, leaf)
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


def _copy_dir_source(copier: _Copier, top: Found, below: Iterator[Found], dest_abs: str,
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
        copier.copy_tree(wfd, top, below, meta=created)
    finally:
        os.close(wfd)


def _unpack(copier: _Copier, top: Found, dest_abs: str, made_owner: tuple[int, int]) -> bool:
    """ADD of a local archive: unpacked into the destination (made as a directory, whether
    or not it ends in `/`). False if the file is not an archive."""
    from barque.build import unpack

    rfd = _open_file(top)
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
