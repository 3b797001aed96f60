"""The build context and the Dockerfile, from what `barque build` was given, as the docker
CLI takes them:

- a directory: the context as it is (no copy); the Dockerfile is `<dir>/Dockerfile` (or
  `dockerfile`, as Docker falls back to), or `-f PATH` relative to the current directory,
  or `-f -` read from stdin;
- a tarball (a file, or `-` with an archive on stdin): plain, gzip, bzip2, xz or zstd,
  unpacked into a temporary directory, entry by entry through directory fds that never
  follow a symlink (storage/copy_archive): absolute names, `..`, hard links out of the
  archive and writes through its own symlinks are refused. `-f NAME` then names a file
  inside it;
- `-` with a Dockerfile (not an archive) on stdin: an empty context.

The Dockerfile and the ignore file of an unpacked archive are read inside it (openat2
RESOLVE_IN_ROOT): an archive's `Dockerfile -> /etc/shadow` reads the archive's own.

- a git URL (moby's rule, build/gitsource.py): the repository checked out at `#REF` into a
  claimed private directory, the context its `:SUBDIR` (resolved inside it), without
  `.git` (BuildKit's default); the Dockerfile and ignore file are read inside it as an
  archive's;
- any other http(s) URL (build/urlsource.py): the body downloaded, bounded, and taken as
  stdin is (an archive by its bytes, else a Dockerfile with an empty context; `-f` names a
  file inside an archive), or for `POST /build?remote=` by dockerd's Content-Type rule
  (open_url's `daemon`).
"""

from __future__ import annotations

import errno
import os
import stat

from barque.build import ignore
from barque.build.ignore import Matcher
from barque.linux import paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

    from barque.build.urlsource import Body

DEFAULT_DOCKERFILE = "Dockerfile"
TEMP_PREFIX = ".build-context-"
_PEEK = 1024  # the docker CLI's look at stdin to tell an archive from a Dockerfile
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_BZIP2, _XZ = b"BZh", b"\xfd7zXZ\x00"
_BZIP2_BLOCK = b"\x31\x41\x59\x26\x53\x59"  # after "BZh" and the level: a tar or a
#                                              Dockerfile may well begin with "BZh" too


class ContextError(Exception):
    """The context or Dockerfile cannot be prepared; Docker's words."""


class Context:
    """A prepared context: `dir` (a host directory), the Dockerfile's text and its name
    relative to `dir` (absolute when it is outside), the ignore file's Matcher, name and
    size (None and 0 without one: for progress lines). close() removes what was unpacked."""

    def __init__(self, directory: str, dockerfile: bytes, dockerfile_name: str,
                 ignore_matcher: Matcher, ignore_name: str | None = None, ignore_size: int = 0,
                 *, temp: _Temp | Any = None) -> None:
        self.dir = directory
        self.dockerfile = dockerfile
        self.dockerfile_name = dockerfile_name
        self.ignore = ignore_matcher
        self.ignore_name = ignore_name
        self.ignore_size = ignore_size
        self._temp = temp

    def close(self) -> None:
        if self._temp is not None:
            self._temp.remove()
            self._temp = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Temp:
    """A private directory (0700) for an unpacked context, claimed (storage/claimed.py) while
    in use, so that `reclaim` can tell a killed build's leftovers from a running build's."""

    def __init__(self, parent: str) -> None:
        from barque.storage.claimed import ClaimedDir

        self._claim = ClaimedDir(parent, TEMP_PREFIX + os.urandom(8).hex())
        self.path = self._claim.path

    def remove(self) -> None:
        from barque.storage.blobs import remove_tree

        removed = False
        try:
            remove_tree(self.path)
            removed = True
        finally:
            self._claim.release(keep_lock=not removed)


def reclaim(tmp_dir: str) -> int:
    """Remove unpacked contexts and git checkouts that killed builds left in `tmp_dir`
    (claims no live process holds); the number removed."""
    from barque.build import gitsource
    from barque.storage import claimed
    from barque.storage.blobs import remove_tree

    return claimed.reclaim(tmp_dir, remove_tree, prefix=TEMP_PREFIX) + \
        gitsource.reclaim(tmp_dir)


# --- reading streams ----------------------------------------------------------------------

class _Prefixed:
    """A stream with bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                out, self._head = self._head + self._rest.read(), b""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)


def _peek(stream: IO[bytes], size: int = _PEEK) -> bytes:
    head = b""
    while len(head) < size and (more := stream.read(size - len(head))):
        head += more
    return head


def _is_tar_header(block: bytes) -> bool:
    if len(block) < 512 or not block[:512].strip(b"\0"):
        return False
    import tarfile

    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _is_bzip2(head: bytes) -> bool:
    return head.startswith(_BZIP2) and head[4:10] == _BZIP2_BLOCK


def is_archive(head: bytes) -> bool:
    """The docker CLI's test: a compression's magic bytes, or a readable tar header."""
    if head.startswith((_GZIP, _ZSTD, _XZ)) or _is_bzip2(head):
        return True
    return _is_tar_header(head)


class _Errors:
    """A stream whose decoder's own error type is raised as OSError."""

    def __init__(self, stream: IO[bytes], error: type[Exception]) -> None:
        self._stream, self._error = stream, error

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except self._error as e:
            raise OSError(f"corrupt stream: {e}") from None


def _decompressed(stream: IO[bytes], head: bytes) -> IO[bytes]:
    raw: Any = _Prefixed(head, stream)  # a file-like object (read) is all they use
    if head.startswith((_GZIP, _ZSTD)):
        from barque.storage.compression import decompressed

        return decompressed(raw, "")
    if _is_bzip2(head):
        import bz2

        return bz2.BZ2File(raw)
    if head.startswith(_XZ):
        import lzma  # its LZMAError is not an OSError: _Errors turns it into one

        checked: Any = _Errors(lzma.LZMAFile(raw), lzma.LZMAError)
        return checked
    return raw


class _BlockPadded:
    """A tar stream whose last block may lack its zero padding and the end-of-archive
    blocks: the docker CLI's context when `-f` names a Dockerfile outside it (moby's
    ReplaceFileTarWrapper closes its pipe before its tar writer), which dockerd takes. The
    last block is completed with zeros; a member cut before that still fails."""

    def __init__(self, stream: Any) -> None:
        self._stream, self._total, self._pad = stream, 0, -1

    def read(self, size: int = -1) -> bytes:
        if self._pad < 0:
            data = self._stream.read(size)
            if data or size == 0:
                self._total += len(data)
                return data
            self._pad = -self._total % 512
        size = self._pad if size is None or size < 0 else min(size, self._pad)
        self._pad -= size
        return b"\0" * size


def _unpack(stream: IO[bytes], head: bytes, tmp_dir: str,
            bound: Callable[[IO[bytes]], Any] | None = None) -> _Temp:
    """`stream` (its first bytes `head` already read) unpacked into a new _Temp; `bound`
    wraps the decompressed stream (a remote context's size limit)."""
    from barque.storage.compression import DecompressError
    from barque.storage.copy_archive import CopyError, extract

    temp = _Temp(tmp_dir)
    try:
        # Owners, modes and xattrs kept (COPY --chmod/--chown aside, Docker copies them);
        # the directory is private to root, so no set-id file in it is reachable meanwhile.
        tar = _decompressed(stream, head)
        padded: Any = _BlockPadded(bound(tar) if bound else tar)  # a read() is all it uses
        extract(padded, temp.path, ".", None, preserve=True)
    except (CopyError, DecompressError, OSError, EOFError, ValueError) as e:
        temp.remove()
        raise ContextError(f"unable to prepare context: invalid archive: {e}") from None
    except BaseException:
        temp.remove()
        raise
    return temp


# --- the Dockerfile -----------------------------------------------------------------------

def _read_in_root(root: str, name: str) -> bytes | None:
    """The regular file `name` inside `root` (symlinks followed inside it); None if it is
    missing or not a regular file (a fifo there would block the read forever)."""
    with paths.rooted(root) as root_fd:
        try:
            fd = paths.open_in_root(root_fd, name, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


def _read_host(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _not_found(name: str) -> ContextError:
    return ContextError(f"Cannot locate specified Dockerfile: {name}")


def _dockerfile_in_dir(context_dir: str, dockerfile: str | None,
                       stdin: IO[bytes] | None) -> tuple[bytes, str]:
    """(text, name relative to the context or absolute) for a directory context."""
    if dockerfile == "-":
        return _read_stdin(stdin), DEFAULT_DOCKERFILE
    if dockerfile is None:
        for name in (DEFAULT_DOCKERFILE, DEFAULT_DOCKERFILE.lower()):
            text = _read_host(os.path.join(context_dir, name))
            if text is not None:
                return text, name
        raise _not_found(DEFAULT_DOCKERFILE)
    path = os.path.realpath(os.path.abspath(dockerfile))
    text = _read_host(path)
    if text is None:
        raise _not_found(dockerfile)
    rel = os.path.relpath(path, context_dir)
    return text, (path if rel == ".." or rel.startswith("../") else rel)


def _dockerfile_in_unpacked(context_dir: str, dockerfile: str | None,
                            stdin: IO[bytes] | None) -> tuple[bytes, str]:
    if dockerfile == "-":
        return _read_stdin(stdin), DEFAULT_DOCKERFILE
    names = [dockerfile] if dockerfile else [DEFAULT_DOCKERFILE, DEFAULT_DOCKERFILE.lower()]
    for name in names:
        text = _read_in_root(context_dir, name)
        if text is not None:
            from barque.build.gomatch import clean

            return text, clean("/" + name).lstrip("/")
    raise _not_found(dockerfile or DEFAULT_DOCKERFILE)


def _read_stdin(stdin: IO[bytes] | None) -> bytes:
    if stdin is None:
        raise ContextError("unable to prepare context: no standard input to read from")
    return stdin.read()


def _ignore_for(context_dir: str, dockerfile_name: str, in_root: bool
                ) -> tuple[Matcher, str | None, int]:
    """(the ignore file's Matcher, its name relative to the context or None, its size); an
    unpacked archive's is read inside it."""
    if in_root:
        for name in (dockerfile_name + ".dockerignore", ".dockerignore"):
            data = _read_in_root(context_dir, name)
            if data is not None:
                return _matcher(data), name, len(data)
        return Matcher(), None, 0
    path = ignore.ignore_file(context_dir, dockerfile_name)
    data = _read_host(path) if path is not None else None
    if path is None or data is None:
        return Matcher(), None, 0
    rel = os.path.relpath(path, context_dir)
    return _matcher(data), (path if rel.startswith("../") else rel), len(data)


def _matcher(data: bytes) -> Matcher:
    try:
        return ignore.from_data(data)
    except ignore.IgnoreError as e:
        raise ContextError(str(e)) from None


# --- the entry point ----------------------------------------------------------------------

def _looks_remote(arg: str) -> bool:
    return arg.startswith(("http://", "https://"))


def _default_tmp() -> str:
    import tempfile

    return tempfile.gettempdir()


KEEP_GIT_DIR_ARG = "BUILDKIT_CONTEXT_KEEP_GIT_DIR"  # BuildKit's build arg: keep .git


def keep_git_dir(build_args: dict[str, str]) -> bool:
    """BUILDKIT_CONTEXT_KEEP_GIT_DIR's value as Go's strconv.ParseBool reads it."""
    return build_args.get(KEEP_GIT_DIR_ARG, "") in ("1", "t", "T", "true", "TRUE", "True")


def open_context(arg: str, *, dockerfile: str | None = None, stdin: IO[bytes] | None = None,
                 tmp_dir: str | None = None, keep_git: bool = False) -> Context:
    """Prepare the context `arg` (a directory, a tarball, or "-" for stdin) and read the
    Dockerfile (`dockerfile`: -f's value; None for the default; "-" for stdin). Archives
    are unpacked into a private directory under `tmp_dir` (the root's tmp; the system's by
    default), removed by Context.close(). A git URL is checked out there too (`keep_git`:
    with its .git, as BUILDKIT_CONTEXT_KEEP_GIT_DIR asks)."""
    if arg == "-":
        if dockerfile == "-":
            raise ContextError("invalid argument: can't use stdin for both build context "
                               "and dockerfile")
        if stdin is None:
            raise ContextError("unable to prepare context: no standard input to read from")
        return _from_stream(stdin, dockerfile, None, tmp_dir, "unable to prepare context "
                            "from STDIN: ")
    if os.path.isdir(arg):
        context_dir = os.path.realpath(os.path.abspath(arg))
        text, name = _dockerfile_in_dir(context_dir, dockerfile, stdin)
        return Context(context_dir, text, name, *_ignore_for(context_dir, name, False))
    if os.path.isfile(arg):
        with open(arg, "rb") as f:
            head = _peek(f)
            if not is_archive(head):
                raise ContextError("unable to prepare context: context must be a directory "
                                   f"or a tar archive: {os.path.abspath(arg)}")
            return _from_stream(f, dockerfile, head, tmp_dir, "", stdin)
    from barque.build import gitsource

    if gitsource.is_git_url(arg):
        return _from_git(arg, dockerfile, stdin, tmp_dir or _default_tmp(), keep_git)
    if _looks_remote(arg):
        return open_url(arg, dockerfile=dockerfile, stdin=stdin, tmp_dir=tmp_dir)
    raise ContextError(f'unable to prepare context: path "{arg}" not found')


def _from_stream(stream: IO[bytes], dockerfile: str | None, head: bytes | None,
                 tmp_dir: str | None, prefix: str, stdin: IO[bytes] | None = None
                 ) -> Context:
    if head is None:
        head = _peek(stream)
    parent = tmp_dir or _default_tmp()
    if not is_archive(head):
        # A Dockerfile on stdin, and an empty context.
        if dockerfile:
            raise ContextError(prefix + "ambiguous Dockerfile source: both stdin and flag "
                               "correspond to Dockerfiles")
        text = head + stream.read()
        temp = _Temp(parent)
        return Context(temp.path, text, DEFAULT_DOCKERFILE, Matcher(), temp=temp)
    return _unpacked_context(_unpack(stream, head, parent), dockerfile, stdin)


def _unpacked_context(temp: _Temp, dockerfile: str | None, stdin: IO[bytes] | None
                      ) -> Context:
    """The context of an unpacked archive (`temp`, removed if it cannot be one)."""
    try:
        text, name = _dockerfile_in_unpacked(temp.path, dockerfile, stdin)
        return Context(temp.path, text, name, *_ignore_for(temp.path, name, True), temp=temp)
    except BaseException:
        temp.remove()
        raise


def _from_git(url: str, dockerfile: str | None, stdin: IO[bytes] | None, parent: str,
              keep_git: bool) -> Context:
    """A git URL's checkout as the context (hostile: read inside it, as an archive)."""
    from barque.build import gitsource

    try:
        checkout = gitsource.Checkout(parent, gitsource.parse(url), keep_git_dir=keep_git)
    except gitsource.GitError as e:
        # buildx's words: BuildKit's frontend fails reading the Dockerfile from the repository
        raise ContextError(f"failed to solve: failed to read dockerfile: failed to load cache "
                           f"key: {e}") from None
    try:
        text, name = _dockerfile_in_unpacked(checkout.dir, dockerfile, stdin)
        return Context(checkout.dir, text, name, *_ignore_for(checkout.dir, name, True),
                       temp=checkout)
    except BaseException:
        checkout.close()
        raise


# --- http(s) URLs -------------------------------------------------------------------------

def open_url(url: str, *, dockerfile: str | None = None, stdin: IO[bytes] | None = None,
             tmp_dir: str | None = None, daemon: bool = False) -> Context:
    """The body of `url` as the context (build/urlsource.py). `daemon`: dockerd's rule
    (POST /build?remote=: by Content-Type; its words; urlsource.UrlError, with the HTTP
    status, for a failed download or a refused type); else the docker CLI's (by the bytes,
    ContextError with "unable to prepare context: ")."""
    from barque.build import urlsource

    parent = tmp_dir or _default_tmp()
    try:
        body = urlsource.get(url)
    except urlsource.DownloadError as e:
        if daemon:
            raise urlsource.DownloadError(f"error downloading remote context {url}: {e}",
                                          e.status) from None
        raise ContextError(f"unable to prepare context: unable to download remote context "
                           f"{url}: {e}") from None
    except urlsource.UrlError as e:  # a declared length past the bound
        if daemon:
            raise
        raise ContextError(f"unable to prepare context: {e}") from None
    try:
        if daemon:
            return _url_by_type(body, dockerfile, parent)
        return _url_by_bytes(body, dockerfile, stdin, parent)
    except urlsource.UrlError as e:
        if daemon:
            raise
        raise ContextError(f"unable to prepare context: {e}") from None
    finally:
        body.close()


def _bound(body: Body) -> Callable[[IO[bytes]], Any]:
    from barque.build import urlsource

    return lambda tar: urlsource.Bounded(tar, body.url, "the unpacked archive",
                                         urlsource.MAX_UNPACKED)


def _dockerfile_only(body: Body, head: bytes, parent: str) -> Context:
    """A Dockerfile downloaded whole (bounded: it is held in memory) and an empty context."""
    from barque.build import urlsource

    rest = urlsource.Bounded(body, body.url, "the Dockerfile", urlsource.MAX_DOCKERFILE,
                             len(head))
    text = head + urlsource.read_all(rest)
    temp = _Temp(parent)
    return Context(temp.path, text, DEFAULT_DOCKERFILE, Matcher(), temp=temp)


def _url_by_bytes(body: Body, dockerfile: str | None, stdin: IO[bytes] | None,
                  parent: str) -> Context:
    """The docker CLI's GetContextFromURL (and BuildKit's http context): an archive by its
    magic, else the Dockerfile (then `-f` is moot, as the docker CLI ignores it)."""
    stream: Any = body  # a read() is all _peek uses
    head = _peek(stream)
    if not is_archive(head):
        if dockerfile == "-":
            raise ContextError("unable to prepare context: build context is not an archive")
        return _dockerfile_only(body, head, parent)
    return _unpacked_url(body, head, dockerfile, stdin, parent)


def _url_by_type(body: Body, dockerfile: str | None, parent: str) -> Context:
    """dockerd's newURLRemote: `text/plain` is the Dockerfile alone (`dockerfile` unused,
    as dockerd's), any other accepted type an archive."""
    from barque.build import urlsource

    stream: Any = body  # a read() is all _peek uses
    head = _peek(stream, urlsource.PREAMBLE)
    try:
        kind = urlsource.content_type(body.content_type, head)
    except urlsource.UrlError as e:
        raise urlsource.UrlError(f"error detecting content type for remote {body.url}: {e}",
                                 e.status) from None
    if kind == urlsource.TEXT_PLAIN:
        return _dockerfile_only(body, head, parent)
    return _unpacked_url(body, head, dockerfile, None, parent)


def _unpacked_url(body: Body, head: bytes, dockerfile: str | None, stdin: IO[bytes] | None,
                  parent: str) -> Context:
    stream: Any = body  # a read() is all _unpack uses
    return _unpacked_context(_unpack(stream, head, parent, _bound(body)), dockerfile, stdin)
