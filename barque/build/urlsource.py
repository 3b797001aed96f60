"""Build contexts from http(s) URLs that are not git repositories (`barque build
https://host/ctx.tar.gz`, `POST /build?remote=URL`): the body is a tar (plain, gzip, bzip2,
xz or zstd), unpacked as any tarball context, or a Dockerfile alone with an empty context.

How the body is told apart is the front end's rule, both kept here:
- `barque build URL` (the docker CLI's GetContextFromURL, BuildKit's http context): by its
  bytes, as stdin (build/context.py is_archive);
- `POST /build?remote=URL` (dockerd's builder/remotecontext): by the response's
  Content-Type, sniffed from the first 100 bytes as Go's http.DetectContentType when it is
  missing or `application/octet-stream`; `text/plain` is a Dockerfile, the tar and
  compression types and octet-stream an archive, anything else refused.

The server is hostile: redirects are followed as Go's http client does (at most 10
responses, http and https only), the body is bounded (MAX_DOWNLOAD bytes on the wire,
MAX_UNPACKED once decompressed, MAX_DOCKERFILE for a Dockerfile held in memory), every read
has a timeout, and the archive goes through the same no-follow extraction as any tarball
context (storage/copy_archive). Errors carry dockerd's words and the HTTP status it answers
with (errdefs: a 404 or an unknown host is NotFound, a 400/401/403 the same, the rest 500).
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

MAX_DOWNLOAD = 2 << 30        # bytes of body, compressed as sent
MAX_UNPACKED = 8 << 30        # bytes of tar stream once decompressed
MAX_DOCKERFILE = 16 << 20     # a plain-text body is read into memory
MAX_REDIRECTS = 10            # Go's default CheckRedirect: "stopped after 10 redirects"
TIMEOUT = 60.0                # seconds for a connect or one read
PREAMBLE = 100                # dockerd's maxPreambleLength
_ERROR_BODY = 64 << 10        # what an error response's body may add to the message
_CHUNK = 1 << 16

TEXT_PLAIN = "text/plain"
OCTET_STREAM = "application/octet-stream"
# dockerd's acceptableRemoteMIME, searched (not matched) in the type, as Go's FindString
_ACCEPTABLE = re.compile(r"(?:application/(?:(?:x-)?tar|octet-stream|((?:x-)?(?:gzip|bzip2?"
                         r"|xz)))|(?:text/plain))")


class UrlError(Exception):
    """The URL cannot be a context; `status` is dockerd's HTTP status for it."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class DownloadError(UrlError):
    """The GET itself failed (no response body to read): dockerd's words without its
    "error downloading remote context URL: " (the front ends word that differently)."""


class TooLarge(UrlError):
    """A bound was crossed: nothing of the context is kept."""

    def __init__(self, url: str, what: str, limit: int) -> None:
        super().__init__(f"remote context {url}: {what} exceeds the limit of {limit} bytes",
                         400)


def is_url(text: str) -> bool:
    """moby's urlutil.IsURL (git URLs are checked first, by build/gitsource.py)."""
    return text.startswith(("http://", "https://"))


# --- the request ---------------------------------------------------------------------------

class _Redirects(urllib.request.HTTPRedirectHandler):
    """Go's http.Client redirects: the 10th redirect response is an error, whatever URLs
    it names (urllib's own limits are per URL and one hop more), and only to http(s)
    (urllib would follow one to ftp://, and hand a refused file:// back as a response)."""

    max_repeats = max_redirections = 1 << 30  # ours below

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                       headers: Any) -> Any:
        from urllib.parse import urljoin

        target = headers.get("location") or headers.get("uri")
        if target:
            if getattr(req, "barque_hops", 0) + 1 >= MAX_REDIRECTS:
                fp.close()
                raise DownloadError(f'Get "{req.full_url}": stopped after {MAX_REDIRECTS} '
                                    "redirects")
            newurl = urljoin(req.full_url, target)
            scheme = newurl.partition(":")[0].lower()
            if scheme not in ("http", "https"):
                fp.close()
                raise DownloadError(f'Get "{newurl}": unsupported protocol scheme "{scheme}"')
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int,
                         msg: str, headers: Any, newurl: str
                         ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.barque_hops = getattr(req, "barque_hops", 0) + 1  # type: ignore[attr-defined]
        return new


class Body:
    """A response body read through its bound: `content_type` the server's header ("" if
    none), read() raising TooLarge past MAX_DOWNLOAD bytes. close() closes the connection."""

    def __init__(self, url: str, response: Any, limit: int) -> None:
        self.url = url
        self._response = response
        self._left = limit
        self._limit = limit
        self.content_type: str = response.headers.get("Content-Type") or ""
        length = response.headers.get("Content-Length") or ""
        # http.client ends a body cut short of its length quietly: Go's reader does not
        self._declared = int(length) if length.isdigit() else None
        if self._declared is not None and self._declared > limit:
            response.close()
            raise TooLarge(url, "the download", limit)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return read_all(self)
        try:
            data = self._response.read(min(size, self._left + 1))
        except (OSError, ValueError, http.client.HTTPException) as e:
            # a cut connection, a read timeout, a body shorter than its Content-Length
            raise UrlError(f"error reading remote context {self.url}: {_reason(e)}") from None
        self._left -= len(data)
        if self._left < 0:
            raise TooLarge(self.url, "the download", self._limit)
        if not data and size and self._declared is not None and \
                self._limit - self._left < self._declared:
            raise UrlError(f"error reading remote context {self.url}: unexpected EOF")
        return data

    def close(self) -> None:
        self._response.close()


def get(url: str, *, limit: int | None = None, timeout: float | None = None) -> Body:
    """GET `url` (dockerd's GetWithStatusError): the body of a response below 400, read
    through `limit` (MAX_DOWNLOAD), else DownloadError with dockerd's words (what follows
    its "error downloading remote context URL: ")."""
    if not is_url(url):  # the opener would read file:// and ftp:// too
        raise DownloadError(f'Get "{url}": unsupported protocol scheme '
                            f'"{url.partition(":")[0].lower()}"', 400)
    limit = MAX_DOWNLOAD if limit is None else limit
    timeout = TIMEOUT if timeout is None else timeout
    opener = urllib.request.build_opener(_Redirects())
    request = urllib.request.Request(url, headers={"User-Agent": "barque-build"})
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code < 400:  # a 3xx urllib would not follow: Go hands it over as the body
            return Body(url, e, limit)
        raise _status_error(url, e) from None
    except DownloadError:
        raise
    except http.client.HTTPException as e:  # not HTTP at all: a status line unreadable
        raise DownloadError(f'Get "{url}": net/http: HTTP/1.x transport connection broken: '
                            f"malformed HTTP response: {_reason(e)}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise _connect_error(url, e) from None
    return Body(url, response, limit)


def _status_error(url: str, e: urllib.error.HTTPError) -> DownloadError:
    message = f"failed to GET {url} with status {e.code} {e.reason}"
    try:
        body = e.read(_ERROR_BODY)
    except (OSError, ValueError):
        return DownloadError(message + ": error reading body")
    finally:
        e.close()
    message += ": " + body.strip().decode(errors="replace")
    return DownloadError(message, e.code if e.code in (400, 401, 403, 404) else 500)


def _reason(e: BaseException) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return "unexpected EOF"  # Go's io.ErrUnexpectedEOF
    reason = getattr(e, "reason", None) or e
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "i/o timeout"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


def _connect_error(url: str, e: BaseException) -> DownloadError:
    """Go's url.Error words: `Get "URL": dial tcp HOST:PORT: connect: connection refused`;
    an unknown host is NotFound (404), as dockerd's."""
    import socket
    from urllib.parse import urlsplit

    reason = getattr(e, "reason", None) or e
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https"
                                                          else 80)
    except ValueError:
        return DownloadError(f'parse "{url}": invalid URL', 400)
    if isinstance(reason, socket.gaierror):
        return DownloadError(f'Get "{url}": dial tcp: lookup {host}: no such host', 404)
    if isinstance(reason, ConnectionError | TimeoutError) or "timed out" in str(reason):
        return DownloadError(f'Get "{url}": dial tcp {host}:{port}: connect: {_reason(e)}')
    return DownloadError(f'Get "{url}": {_reason(e)}')


# --- dockerd's content type rule -------------------------------------------------------------

def content_type(header: str, preamble: bytes) -> str:
    """dockerd's inspectResponse: the type the body is taken as, `text/plain` (a
    Dockerfile) or an archive's; UrlError for what it refuses. `preamble`: the body's first
    bytes (at most PREAMBLE, fewer when the body is shorter)."""
    if not preamble:
        raise UrlError("empty response")
    kind = header
    if not header or header == OCTET_STREAM:
        kind = detect_content_type(preamble)
    found = _ACCEPTABLE.search(kind)
    if found is None:
        import json  # Go's %q of the server's own header, as dockerd prints it

        raise UrlError(f"unsupported Content-Type {json.dumps(header)}")
    return found.group(0)


# Go's net/http sniffing table (sniff.go), what a Dockerfile could be taken for: the
# signatures that are text themselves. Binary ones (images, zip, rar, ...) fall to
# octet-stream here and fail as an archive instead of as a type: an error either way.
_HTML_TAGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV",
              b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR",
              b"<P", b"<!--")
_PREFIXES = ((b"%PDF-", "application/pdf"), (b"%!PS-Adobe-", "application/postscript"),
             (b"\xfe\xff", TEXT_PLAIN), (b"\xff\xfe", TEXT_PLAIN), (b"\xef\xbb\xbf", TEXT_PLAIN),
             (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"),
             (b"ID3", "audio/mpeg"), (b"wOFF", "font/woff"), (b"wOF2", "font/woff2"),
             (b"OTTO", "font/otf"), (b"ttcf", "font/collection"),
             (b"\x1f\x8b\x08", "application/x-gzip"))
_MASKED = ((b"RIFF", b"WEBPVP", "image/webp"), (b"RIFF", b"WAVE", "audio/wave"),
           (b"RIFF", b"AVI ", "video/avi"), (b"FORM", b"AIFF", "audio/aiff"))
_WS = b"\t\n\x0c\r "
_BINARY = frozenset(range(0x00, 0x09)) | {0x0B} | frozenset(range(0x0E, 0x1B)) | \
    frozenset(range(0x1C, 0x20))


def detect_content_type(data: bytes) -> str:
    """Go's http.DetectContentType (the media type, parameters dropped), for what decides
    a remote context: text, HTML/XML, the textual signatures, gzip, else octet-stream."""
    data = data[:512]
    text = data.lstrip(_WS)
    upper = text.upper()
    for tag in _HTML_TAGS:
        if upper.startswith(tag) and text[len(tag):len(tag) + 1] in (b" ", b">"):
            return "text/html"
    if text.startswith(b"<?xml"):
        return "text/xml"
    for prefix, kind in _PREFIXES:
        if data.startswith(prefix):
            return kind
    for head, tail, kind in _MASKED:
        if data.startswith(head) and data[8:8 + len(tail)] == tail:
            return kind
    if any(byte in _BINARY for byte in data):
        return OCTET_STREAM
    return TEXT_PLAIN


# --- bounded decompressed stream -------------------------------------------------------------

class Bounded:
    """A stream that raises TooLarge once more than `limit` bytes came through it."""

    def __init__(self, stream: IO[bytes] | Any, url: str, what: str, limit: int,
                 used: int = 0) -> None:
        self._stream, self._url, self._what = stream, url, what
        self._limit = limit
        self._left = limit - used  # `used`: bytes the caller already took from `stream`
        if self._left < 0:
            raise TooLarge(url, what, limit)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return read_all(self)
        data: bytes = self._stream.read(min(size, self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise TooLarge(self._url, self._what, self._limit)
        return data


def read_all(stream: IO[bytes] | Any) -> bytes:
    """Everything left in `stream` (a bounded one: its bound ends the loop)."""
    parts = []
    while chunk := stream.read(_CHUNK):
        parts.append(chunk)
    return b"".join(parts)
