"""The files a COPY or ADD names: its source patterns matched inside a root (the build
context, or another stage's root filesystem: both hostile, resolved inside their root),
and their content checksum (BuildKit's: names, modes, owners and contents, never mtimes),
which keys the cache.

Matching is BuildKit's (fsutil's copy and contenthash): a pattern is cleaned as an absolute
path inside the root; without wildcards it names one path, followed through symlinks inside
the root, and a missing one is BuildKit's "not found" error; with wildcards, the part before
the first wildcard component is resolved the same way and the rest is matched component by
component with Go's filepath.Match against real entries (symlinks are not walked through),
and a wildcard that matches nothing matches nothing (no error, as BuildKit's
AllowEmptyWildcard). What the .dockerignore leaves out of the context does not exist here.
`--exclude` patterns apply below each matched source, relative to it (fsutil's copier).

Everything is opened relative to directory fds: a path is resolved with openat2
RESOLVE_IN_ROOT (a symlink to /etc/shadow in a stage's rootfs is <root>/etc/shadow), and a
walk opens each entry with O_NOFOLLOW in its parent's fd.
"""

from __future__ import annotations

import errno
import os
import stat

from barque import sha256
from barque.build import gomatch
from barque.build.ignore import Matcher, MatchInfo
from barque.linux import paths
from barque.storage import tarsafe
from barque.structs import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator, Sequence

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass
class Source:
    pattern: str                     # as written in the instruction ("src/*.py", "a.txt")
    paths: list[str] = field(default_factory=list)  # what it matched: root-relative,
    #                                  posix, no leading "/", sorted; "" is the root itself


class SourceError(Exception):
    """A source cannot be used; BuildKit's words."""


class SourceNotFound(SourceError):
    def __init__(self, path: str, ref: str) -> None:
        self.path = path
        super().__init__(f"failed to compute cache key: failed to calculate checksum of ref "
                         f'{ref}: "{path}": not found')


def _ref(root: str) -> str:
    """A stable name for a root in messages (BuildKit prints its snapshot's ID)."""
    return sha256.hexdigest(os.fsencode(root))[:25]


# --- resolving inside the root ------------------------------------------------------------

class _Root:
    """An fd of the root and its real path, to name what an fd resolved to root-relatively."""

    def __init__(self, root: str) -> None:
        self.path = root
        self.fd = paths.open_root(root)
        self.real = paths.fd_path(self.fd).rstrip("/")

    def close(self) -> None:
        os.close(self.fd)

    def rel(self, fd: int) -> str:
        """Where `fd` is, relative to the root ("" for the root itself)."""
        where = paths.fd_path(fd)
        if where == self.real or (self.real == "" and where == "/"):
            return ""
        if not where.startswith(self.real + "/"):
            raise SourceError(f"{where!r} resolved outside of the root")  # cannot happen
        return where[len(self.real) + 1:]

    def open_dir(self, path: str) -> int | None:
        """A readable fd of the directory `path` (symlinks followed inside the root); None
        if it is missing or not a directory."""
        try:
            return paths.open_in_root(self.fd, path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise

    def resolve(self, path: str) -> tuple[int, str] | None:
        """(an O_PATH fd, the real root-relative path) of `path` with every symlink followed
        inside the root; None if something on the way is missing."""
        try:
            fd = paths.open_in_root(self.fd, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        try:
            return fd, self.rel(fd)
        except BaseException:
            os.close(fd)
            raise


def _listing(dir_fd: int) -> list[str]:
    return sorted(os.listdir(dir_fd), key=os.fsencode)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


# --- walking a matched path ---------------------------------------------------------------

class Found:
    """One entry of a walk. `path` is relative to the walked source ("" for the source
    itself); `st` its lstat (for the source, its stat when links are followed). `dir_fd`
    and `name` name the entry without following it (os.open(name, ...|O_NOFOLLOW,
    dir_fd=dir_fd)) and stay valid only until the walk moves on."""

    __slots__ = ("path", "st", "dir_fd", "name")

    def __init__(self, path: str, st: os.stat_result, dir_fd: int, name: str) -> None:
        self.path, self.st, self.dir_fd, self.name = path, st, dir_fd, name

    def __repr__(self) -> str:
        return f"Found({self.path!r}, {stat.filemode(self.st.st_mode)})"


class _Filter:
    """The ignore file (on root-relative real paths) and --exclude (on source-relative
    paths) together, as fsutil applies both while walking."""

    def __init__(self, ignore: Matcher | None, excludes: Matcher | None) -> None:
        self.ignore = ignore if ignore else None
        self.excludes = excludes if excludes else None

    def check(self, real: str, sub: str, infos: tuple[MatchInfo | None, MatchInfo | None]
              ) -> tuple[bool, bool, tuple[MatchInfo | None, MatchInfo | None]]:
        """(left out, walk into it if a directory, the infos for its children)."""
        out, descend = False, True
        ign_info = ex_info = None
        if self.ignore is not None:
            hit, ign_info = self.ignore.check(real, infos[0])
            if hit:
                out = True
                descend = self.ignore.may_match_children(real)
        if self.excludes is not None:
            hit, ex_info = self.excludes.check(sub, infos[1])
            if hit:
                out = True
                descend = descend and self.excludes.may_match_children(sub)
        return out, descend, (ign_info, ex_info)


def _excludes_matcher(excludes: Sequence[str] | Matcher) -> Matcher | None:
    if isinstance(excludes, Matcher):
        return excludes if excludes else None
    return Matcher(excludes) if excludes else None


def _walk_below(flt: _Filter, dir_fd: int, real: str, sub: str,
                infos: tuple[MatchInfo | None, MatchInfo | None]
                ) -> Generator[Found, None, None]:
    """The entries below the open directory `dir_fd`, sorted, parents first. An excluded
    directory is given only before something below it that is not excluded."""
    # A stack of (directory fd, its real path, its path in the walk, its infos, the names
    # still to visit, the excluded directory waiting to be given if something below is).
    stack: list[tuple[int, str, str, tuple[MatchInfo | None, MatchInfo | None], list[str],
                      Found | None]] = []
    names = _listing(dir_fd)
    names.reverse()
    stack.append((dir_fd, real, sub, infos, names, None))
    try:
        while stack:
            fd, d_real, d_sub, d_infos, todo, _ = stack[-1]
            if not todo:
                stack.pop()
                if fd != dir_fd:
                    os.close(fd)
                continue
            name = todo.pop()
            st = _lstat(fd, name)
            if st is None or stat.S_ISSOCK(st.st_mode):
                continue  # gone since listed; sockets are never part of a context or copy
            c_real = f"{d_real}/{name}" if d_real else name
            c_sub = f"{d_sub}/{name}" if d_sub else name
            out, descend, c_infos = flt.check(c_real, c_sub, d_infos)
            is_dir = stat.S_ISDIR(st.st_mode)
            found = Found(c_sub, st, fd, name)
            if not out:
                # Give the excluded parents this entry is in, first (once each).
                for i, level in enumerate(stack):
                    if level[5] is not None:
                        yield level[5]
                        stack[i] = level[:5] + (None,)
                yield found
            if is_dir and (not out or descend):
                try:
                    sub_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE):  # an fd per level walked
                        raise SourceError(f"{c_sub}: too many levels of directories") from None
                    raise
                child: list[str] = []
                stack.append((sub_fd, c_real, c_sub, c_infos, child, found if out else None))
                child.extend(reversed(_listing(sub_fd)))  # the fd is the stack's to close
    finally:
        for level in stack:
            if level[0] != dir_fd:
                os.close(level[0])


def walk(root: str, relpath: str, ignore: Matcher | None = None,
         excludes: Sequence[str] | Matcher = (), *, follow_links: bool = True
         ) -> Generator[Found, None, None]:
    """What the matched source `relpath` holds, as a COPY of it sees it: the source itself
    first (its symlink followed inside the root unless `follow_links` is false), then, for a
    directory, everything below it, sorted, parents first, never following symlinks; what
    `ignore` (the context's .dockerignore) or `excludes` (--exclude, relative to the source)
    leave out is skipped. SourceNotFound if `relpath` is not there."""
    r = _Root(root)
    try:
        yield from _walk_source(r, relpath, ignore, _excludes_matcher(excludes), follow_links)
    finally:
        r.close()


def _open_source(r: _Root, relpath: str, follow_links: bool) -> tuple[int, str, str] | None:
    """(an O_PATH fd of the directory holding the source, its name there, the source's real
    root-relative path), or None if missing."""
    relpath = gomatch.clean("/" + relpath).lstrip("/")
    if follow_links:
        found = r.resolve(relpath)
        if found is None:
            return None
        fd, real = found
        os.close(fd)
    else:
        head, _, tail = relpath.rpartition("/")
        found = r.resolve(head)
        if found is None:
            return None
        fd, real_head = found
        os.close(fd)
        real = f"{real_head}/{tail}" if real_head and tail else (tail or real_head)
    if not real:
        return os.dup(r.fd), ".", ""
    head, _, tail = real.rpartition("/")
    found = r.resolve(head)
    if found is None:
        return None
    return found[0], tail, real


def _walk_source(r: _Root, relpath: str, ignore: Matcher | None, excludes: Matcher | None,
                 follow_links: bool) -> Iterator[Found]:
    opened = _open_source(r, relpath, follow_links)
    if opened is None:
        raise SourceNotFound("/" + gomatch.clean("/" + relpath).lstrip("/"), _ref(r.path))
    parent_fd, name, real = opened
    try:
        st = _lstat(parent_fd, name) if name != "." else os.stat(parent_fd)
        if st is None:
            raise SourceNotFound("/" + relpath.lstrip("/"), _ref(r.path))
        yield Found("", st, parent_fd, name)
        if not stat.S_ISDIR(st.st_mode):
            return
        ign = ignore if ignore else None
        ign_info: MatchInfo | None = None
        if ign is not None and real:
            state = ign.dir_state(real)
            if state is None:
                return  # left out as a whole (match_sources would not have matched it)
            ign_info = state[1]
        dir_fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            yield from _walk_below(_Filter(ign, excludes), dir_fd, real, "", (ign_info, None))
        finally:
            os.close(dir_fd)
    finally:
        os.close(parent_fd)


# --- matching -----------------------------------------------------------------------------

def _present(r: _Root, ignore: Matcher | None, real: str, st: os.stat_result) -> bool:
    """Whether the context holds `real` after the ignore file: not left out, or a directory
    left out that still holds something re-included (then it is there as its parent)."""
    if ignore is None or not ignore.matches(real):
        return True
    if not stat.S_ISDIR(st.st_mode) or not ignore.may_match_children(real):
        return False
    state = ignore.dir_state(real)
    if state is None:
        return False
    dir_fd = r.open_dir(real)
    if dir_fd is None:
        return False
    below = _walk_below(_Filter(ignore, None), dir_fd, real, "", (state[1], None))
    try:
        return next(below, None) is not None
    finally:
        below.close()
        os.close(dir_fd)


def _match_literal(r: _Root, path: str, ignore: Matcher | None) -> bool:
    found = r.resolve(path)
    if found is None:
        return False
    fd, real = found
    try:
        return _present(r, ignore, real, os.fstat(fd)) if real else True
    finally:
        os.close(fd)


def _match_wildcard(r: _Root, path: str, ignore: Matcher | None) -> list[str]:
    """The paths matching `path` (cleaned, relative, with a wildcard component)."""
    parts = path.split("/")
    first = next(i for i, p in enumerate(parts) if gomatch.has_wildcards(p))
    prefix = "/".join(parts[:first])
    found = r.resolve(prefix)
    if found is None:
        return []
    fd, real = found
    os.close(fd)
    # (the path as written, the real path) of the directories matched so far
    level = [(prefix, real)]
    for i, comp in enumerate(parts[first:]):
        last = first + i == len(parts) - 1
        nxt: list[tuple[str, str]] = []
        for written, d_real in level:
            nxt.extend(_match_in(r, written, d_real, comp, last, ignore))
        level = nxt
    return [written for written, _ in level]


def _match_in(r: _Root, written: str, real: str, comp: str, last: bool,
              ignore: Matcher | None) -> list[tuple[str, str]]:
    dir_fd = r.open_dir(real)
    if dir_fd is None:
        return []
    out = []
    try:
        for name in _listing(dir_fd):
            if not gomatch.match(comp, name):
                continue
            st = _lstat(dir_fd, name)
            if st is None or stat.S_ISSOCK(st.st_mode):
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                continue  # only real directories are walked into, never through a symlink
            c_real = f"{real}/{name}" if real else name
            if _present(r, ignore, c_real, st):
                out.append((f"{written}/{name}" if written else name, c_real))
    finally:
        os.close(dir_fd)
    return out


def match_sources(root: str, patterns: Sequence[str], *, ignore: Matcher | None = None,
                  excludes: Sequence[str] = (), allow_wildcards: bool = True,
                  ref: str | None = None) -> list[Source]:
    """Each pattern's Source: what it names inside `root`. `ignore` is the context's
    .dockerignore (None for another stage's rootfs). `excludes` (--exclude) do not remove a
    matched source, only what is below it (see `walk`); they are checked for syntax here.
    SourceNotFound (BuildKit's message; `ref` names the root in it) for a path without
    wildcards that is not there; a wildcard matching nothing gives an empty Source."""
    _excludes_matcher(excludes)  # a malformed --exclude fails before anything else
    ignore = ignore if ignore else None
    r = _Root(root)
    try:
        out = []
        for pattern in patterns:
            path = gomatch.clean("/" + pattern).lstrip("/")
            try:
                wildcard = allow_wildcards and gomatch.has_wildcards(path)
                if wildcard:
                    gomatch.validate(path)
                    matched = sorted(_match_wildcard(r, path, ignore), key=os.fsencode)
                elif _match_literal(r, path, ignore):
                    matched = [path]
                else:
                    raise SourceNotFound("/" + path, ref or _ref(root))
            except gomatch.BadPattern as e:
                raise SourceError(f"{pattern}: {e}") from None
            out.append(Source(pattern, matched))
        return out
    finally:
        r.close()


# --- checksums ----------------------------------------------------------------------------

# File content digests by what identifies a file's version without reading it: a rewrite
# changes mtime or ctime (and a rename keeps the inode's digest right).
_file_digests: dict[tuple[int, int, int, int, int], str] = {}
_MAX_DIGESTS = 1 << 16  # a long-running server's memory stays bounded: start over past it


def _file_digest(dir_fd: int, name: str, st: os.stat_result) -> str:
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    known = _file_digests.get(key)
    if known is not None:
        return known
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != key[:2]:
            raise SourceError(f"{name!r} changed while it was read")
        h = sha256.new()
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
    finally:
        os.close(fd)
    digest = str(h.hexdigest())
    if len(_file_digests) >= _MAX_DIGESTS:
        _file_digests.clear()
    _file_digests[key] = digest
    return digest


def xattrs_of(found: Found) -> dict[str, bytes]:
    """The xattrs of a walked entry (its name, not followed) that are its content: never
    overlayfs's own. What the checksum keys and what a copy sets."""
    where = paths.proc_path(found.dir_fd) + ("/" + found.name if found.name != "." else "")
    try:
        values = tarsafe.read_xattrs(where)
    except OSError as e:
        if e.errno == errno.EPERM:
            return {}
        raise
    return {k: v for k, v in values.items() if not k.startswith(tarsafe.OVERLAY_XATTR_PREFIXES)}


def _record(name: str, found: Found, links: dict[tuple[int, int], str]) -> bytes:
    """One entry's line: name, type and permission bits, owner, device, link target (for
    a file, the first name of its inode in this checksum: a COPY keeps hard links within
    it, as fsutil's Linkname), xattrs and content digest. Never times: a touch does not
    change what is copied."""
    st = found.st
    fmt = stat.S_IFMT(st.st_mode)
    mode = 0o777 if fmt == stat.S_IFLNK else stat.S_IMODE(st.st_mode)
    link = content = ""
    if fmt == stat.S_IFLNK:
        link = os.readlink(found.name, dir_fd=found.dir_fd)
    elif fmt == stat.S_IFREG:
        content = _file_digest(found.dir_fd, found.name, st)
        if st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), name)
            link = first if first != name else ""
    rdev = st.st_rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    xattrs = b",".join(os.fsencode(k) + b"=" + v.hex().encode()
                       for k, v in sorted(xattrs_of(found).items()))
    head = f"{fmt >> 12:x} {mode:o} {st.st_uid} {st.st_gid} {rdev} {content}"
    return b"\0".join((os.fsencode(name), head.encode(), os.fsencode(link),
                       xattrs)) + b"\n"


def checksum(root: str, sources: Iterable[Source], *, ignore: Matcher | None = None,
             excludes: Sequence[str] = (), follow_links: bool = True) -> str:
    """"sha256:..." of everything the sources name, as a COPY of them would take it (see
    `walk`): the same tree gives the same digest on any machine and in any run; a changed
    byte, mode, owner, link target, xattr or name changes it."""
    ex = _excludes_matcher(excludes)
    ignore = ignore if ignore else None
    h = sha256.new()
    links: dict[tuple[int, int], str] = {}
    r = _Root(root)
    try:
        for source in sources:
            h.update(b"source\0" + os.fsencode(source.pattern) + b"\n")
            for path in source.paths:
                for found in _walk_source(r, path, ignore, ex, follow_links):
                    name = f"{path}/{found.path}" if found.path else path
                    h.update(_record("/" + name, found, links))
    finally:
        r.close()
    return "sha256:" + str(h.hexdigest())
