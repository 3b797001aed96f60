"""ADD of an http(s) URL, as BuildKit's http source: the body is downloaded to a private
temporary directory (mode 0600, mtime from Last-Modified or the epoch, sha256 taken on the
way), checked against --checksum, then copied into the step's root by fileops.copy with
COPY's rules (so --chown/--chmod/--unpack and the in-root destination resolution are the same).

The file's name is the destination's last component when the destination does not end in
`/`, else the response's Content-Disposition filename, else the URL path's last component,
else `download` (BuildKit's getFileName)."""

from __future__ import annotations

import os
import posixpath
import re
import shutil

from barque.build import fileops
from barque.build.sources import Source
from barque.structs import dataclass

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


class FetchError(Exception):
    """The download failed, or did not match its --checksum (nothing was added)."""


@dataclass
class Download:
    dir: str              # a private temporary directory holding only the file
    name: str             # the file's name in it
    digest: str           # sha256:... of the body
    mtime: int            # seconds since the epoch (Last-Modified, else 0)

    @property
    def path(self) -> str:
        return os.path.join(self.dir, self.name)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def check_checksum(checksum: str) -> None:
    """--checksum's form: sha256:<64 hex> (the only algorithm BuildKit takes for URLs)."""
    if ":" not in checksum:
        raise FetchError(f"invalid checksum digest format: {checksum}")
    if not checksum.startswith("sha256:"):
        raise FetchError(f"unsupported digest algorithm: {checksum}")
    if not _SHA256.match(checksum):
        raise FetchError(f"invalid checksum digest format: {checksum}")


def _filename(url: str, dest: str, disposition: str | None) -> str:
    if not fileops.dest_is_dir(dest):
        return posixpath.basename(dest.rstrip("/"))
    if disposition:
        from email.message import Message

        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_param("filename", header="content-disposition")
        if isinstance(name, str) and name and not name.endswith("/"):
            base = posixpath.basename(name)
            if base not in ("", ".", ".."):
                return base
    from urllib.parse import unquote, urlsplit

    base = posixpath.basename(unquote(urlsplit(url).path))
    return base if base not in ("", ".", "..") else "download"


def _mtime(last_modified: str | None) -> int:
    if not last_modified:
        return 0
    from email.utils import parsedate_to_datetime

    try:
        return int(parsedate_to_datetime(last_modified).timestamp())
    except (TypeError, ValueError):
        return 0


def download(url: str, tmp_root: str, *, dest: str = "/", checksum: str | None = None,
             timeout: float = 60.0) -> Download:
    """GET `url` into a new directory under `tmp_root`; the caller closes the Download."""
    import hashlib
    import urllib.error
    import urllib.request

    if not is_url(url):
        raise FetchError(f"unsupported URL scheme: {url}")
    if checksum is not None:
        check_checksum(checksum)
    request = urllib.request.Request(url, headers={"User-Agent": "barque-build"})
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise FetchError(f"invalid response status {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"failed to load {url}: {reason}") from None
    with resp:
        if not 200 <= resp.status < 400:
            raise FetchError(f"invalid response status {resp.status}")
        name = _filename(url, dest, resp.headers.get("Content-Disposition"))
        tmp = _mkdtemp(tmp_root)
        try:
            h = hashlib.sha256()
            fd = os.open(os.path.join(tmp, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # BuildKit's, whatever the umask
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                mtime = _mtime(resp.headers.get("Last-Modified"))
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
            got = "sha256:" + h.hexdigest()
            if checksum is not None and got != checksum:
                raise FetchError(f"digest mismatch {got}: {checksum}")
            return Download(tmp, name, got, mtime)
        except (OSError, ValueError) as e:  # a cut connection, a full disk
            shutil.rmtree(tmp, ignore_errors=True)
            raise FetchError(f"failed to load {url}: {e}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _mkdtemp(tmp_root: str) -> str:
    import tempfile

    os.makedirs(tmp_root, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix=".add-", dir=tmp_root)


def add(dl: Download, dst_root: str, dest: str, *, workdir: str = "/",
        chown: tuple[int, int] | None = None, chmod: int | str | None = None,
        unpack: bool = False) -> None:
    """Put a download at `dest` in `dst_root`, as COPY of the one file would (ADD of a
    URL unpacks only with --unpack=true)."""
    fileops.copy(dl.dir, [Source(dl.name, [dl.name])], dst_root, dest, workdir=workdir,
                 chown=chown, chmod=chmod, unpack=unpack, command="ADD")


def add_url(url: str, tmp_root: str, dst_root: str, dest: str, *, workdir: str = "/",
            chown: tuple[int, int] | None = None, chmod: int | str | None = None,
            checksum: str | None = None, unpack: bool = False) -> str:
    """Download `url` and add it at `dest`; the body's digest (for the cache key)."""
    dl = download(url, tmp_root, dest=dest, checksum=checksum)
    try:
        add(dl, dst_root, dest, workdir=workdir, chown=chown, chmod=chmod, unpack=unpack)
        return dl.digest
    finally:
        dl.close()
