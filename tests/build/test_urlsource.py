"""barque/build/urlsource.py and context.open_url: build contexts from http(s) URLs served
by the test on 127.0.0.1. The CLI's rule (by the body's bytes) and dockerd's (by
Content-Type, sniffed as Go's), Go's redirect limit, dockerd's words and statuses, the
bounds on a hostile server's body, and nothing left behind after any failure."""

from __future__ import annotations

import gzip
import io
import os
import socket
import socketserver
import tarfile
from collections.abc import Iterator

import pytest

from barque.build import urlsource
from barque.build.context import ContextError, open_context, open_url
from tests.build.test_context import COMPRESS, _tar
from tests.support.httpd import Reply, replying, serving

DOCKERFILE = b"FROM scratch\nCOPY a /\n"
CONTEXT = _tar([("Dockerfile", DOCKERFILE.decode(), "f"), ("a", "A", "f"),
                ("sub", None, "d"), ("sub/Dockerfile.app", "FROM scratch\nCOPY sub/b /\n", "f"),
                ("sub/b", "B", "f")])
GZ = gzip.compress(CONTEXT)

pytestmark = pytest.mark.usefixtures("no_proxy")


@pytest.fixture
def tmp(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """The contexts' parent; every test leaves it empty."""
    path = os.path.join(str(tmp_path), "tmp")
    os.mkdir(path, 0o700)
    yield path
    assert os.listdir(path) == []


def _files(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


# --- the CLI's rule: the bytes decide --------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_archive_in_each_compression_is_the_context(tmp: str, kind: str) -> None:
    body = COMPRESS[kind](CONTEXT)
    with replying({"/ctx": Reply(body, content_type="text/html")}) as (base, _):
        with open_context(base + "/ctx", tmp_dir=tmp) as ctx:
            assert ctx.dockerfile == DOCKERFILE and ctx.dockerfile_name == "Dockerfile"
            assert _files(ctx.dir) == {"Dockerfile": DOCKERFILE, "a": b"A",
                                       "sub/Dockerfile.app": b"FROM scratch\nCOPY sub/b /\n",
                                       "sub/b": b"B"}


def test_dockerfile_flag_names_a_file_in_the_archive(tmp: str) -> None:
    with replying({"/ctx.tgz": Reply(GZ)}) as (base, _):
        with open_context(base + "/ctx.tgz", dockerfile="sub/Dockerfile.app",
                          tmp_dir=tmp) as ctx:
            assert ctx.dockerfile == b"FROM scratch\nCOPY sub/b /\n"
            assert ctx.dockerfile_name == "sub/Dockerfile.app"
        with pytest.raises(ContextError, match="^Cannot locate specified Dockerfile: nope$"):
            open_context(base + "/ctx.tgz", dockerfile="nope", tmp_dir=tmp)


def test_plain_body_is_the_dockerfile_with_an_empty_context(tmp: str) -> None:
    with replying({"/Dockerfile": Reply(DOCKERFILE, content_type=None)}) as (base, _):
        with open_context(base + "/Dockerfile", dockerfile="ignored", tmp_dir=tmp) as ctx:
            assert ctx.dockerfile == DOCKERFILE and ctx.dockerfile_name == "Dockerfile"
            assert os.listdir(ctx.dir) == []
        with pytest.raises(ContextError, match="build context is not an archive"):
            open_context(base + "/Dockerfile", dockerfile="-", stdin=io.BytesIO(b""),
                         tmp_dir=tmp)


def test_http_errors_in_the_docker_clis_words(tmp: str) -> None:
    with replying({"/gone": Reply(b"  it is gone \n", 410, "text/plain")}) as (base, _):
        url = base + "/nope.tar"
        with pytest.raises(ContextError) as err:
            open_context(url, tmp_dir=tmp)
        assert str(err.value) == (f"unable to prepare context: unable to download remote "
                                  f"context {url}: failed to GET {url} with status 404 Not "
                                  f"Found: 404 page not found")
        with pytest.raises(ContextError, match=r"with status 410 Gone: it is gone$"):
            open_context(base + "/gone", tmp_dir=tmp)


def test_unreachable_server(tmp: str) -> None:
    # A bound socket that does not listen: connections to it are refused, and its port
    # cannot be taken by anything else meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/ctx.tar"
        with pytest.raises(ContextError) as err:
            open_context(url, tmp_dir=tmp)
    assert str(err.value).endswith(
        f'Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused')


class _NotHttp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        self.wfile.write(b"SSH-2.0-not-http\r\n\r\n")


def test_a_server_that_does_not_speak_http(tmp: str) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _NotHttp)
    server.daemon_threads = True
    with serving(server):
        url = f"http://127.0.0.1:{server.server_address[1]}/ctx.tar"
        with pytest.raises(ContextError, match=f'unable to download remote context {url}: Get '
                                               f'"{url}": net/http: HTTP/1.x transport '
                                               f'connection broken: malformed HTTP response'):
            open_context(url, tmp_dir=tmp)
    with pytest.raises(urlsource.DownloadError, match='unsupported protocol scheme "file"'):
        urlsource.get("file:///etc/passwd")


def _hops(count: int, last: Reply) -> dict[str, Reply]:
    """/hop/N redirects to /hop/N-1 ... /hop/0 is `last`."""
    replies = {f"/hop/{n}": Reply(status=302, headers={"Location": f"/hop/{n - 1}"})
               for n in range(1, count + 1)}
    replies["/hop/0"] = last
    return replies


def test_redirects_followed_as_gos_client(tmp: str) -> None:
    with replying(_hops(10, Reply(GZ))) as (base, hits):
        with open_context(base + "/hop/9", tmp_dir=tmp) as ctx:  # 9 redirects: followed
            assert ctx.dockerfile == DOCKERFILE
        assert len(hits) == 10
        hits.clear()
        with pytest.raises(ContextError) as err:
            open_context(base + "/hop/10", tmp_dir=tmp)  # the 10th redirect: Go stops
        assert str(err.value).endswith(f'Get "{base}/hop/1": stopped after 10 redirects')
        assert len(hits) == 10


def test_redirect_to_another_scheme_refused(tmp: str) -> None:
    replies = {"/ftp": Reply(status=301, headers={"Location": "ftp://127.0.0.1/ctx.tar"}),
               "/file": Reply(status=307, headers={"Location": "file:///etc/passwd"})}
    with replying(replies) as (base, _):
        with pytest.raises(ContextError, match='unsupported protocol scheme "ftp"'):
            open_context(base + "/ftp", tmp_dir=tmp)
        with pytest.raises(ContextError, match='unsupported protocol scheme "file"'):
            open_context(base + "/file", tmp_dir=tmp)


@pytest.mark.parametrize("members", [
    [("../escaped", "x", "f")],
    [("/abs-escaped", "x", "f")],
    [("link", "{outside}", "l"), ("link/escaped", "x", "f")],
    [("hard", "{outside}/victim", "h")],
])
def test_hostile_archive_writes_nothing_outside(tmp_path: os.PathLike[str], tmp: str,
                                                members: list[tuple[str, str, str]]) -> None:
    outside = os.path.join(str(tmp_path), "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "victim"), "w") as f:
        f.write("host file\n")
    body = gzip.compress(_tar([(n, c.format(outside=outside), k) for n, c, k in members]
                              + [("Dockerfile", "FROM scratch\n", "f")]))
    with replying({"/evil.tgz": Reply(body)}) as (base, _):
        with pytest.raises(ContextError, match="invalid archive"):
            open_context(base + "/evil.tgz", tmp_dir=tmp)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert not os.path.exists(os.path.join(str(tmp_path), "escaped"))
    assert not os.path.exists("/abs-escaped")


def test_truncated_body(tmp: str) -> None:
    body = GZ[:len(GZ) // 2]
    short = Reply(body, headers={"Content-Length": str(len(GZ))}, length=False)
    short_df = Reply(DOCKERFILE[:5], headers={"Content-Length": str(len(DOCKERFILE))},
                     length=False, content_type="text/plain")
    with replying({"/short.tgz": short, "/Dockerfile": short_df}) as (base, _):
        with pytest.raises(ContextError, match="unexpected EOF"):  # never half a Dockerfile
            open_context(base + "/Dockerfile", tmp_dir=tmp)
        with pytest.raises(ContextError, match=f"^unable to prepare context: error reading "
                                               f"remote context {base}/short.tgz: unexpected "
                                               f"EOF$"):
            open_context(base + "/short.tgz", tmp_dir=tmp)
        with pytest.raises(urlsource.UrlError, match="unexpected EOF"):
            open_url(base + "/short.tgz", tmp_dir=tmp, daemon=True)


# --- bounds --------------------------------------------------------------------------------

def test_download_bound_declared_and_streamed(tmp: str, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setattr(urlsource, "MAX_DOWNLOAD", 64 << 10)
    big = os.urandom(1 << 20)  # incompressible: the wire bytes are what is bounded
    replies = {"/declared": Reply(big), "/streamed": Reply(big, length=False)}
    with replying(replies) as (base, _):
        for path in ("/declared", "/streamed"):
            with pytest.raises(ContextError, match=r"the download exceeds the limit of "
                                                   r"65536 bytes"):
                open_context(base + path, tmp_dir=tmp)


def test_decompression_bomb_stops_at_the_unpacked_bound(tmp: str,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(urlsource, "MAX_UNPACKED", 1 << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = gzip.compress(buf.getvalue(), 9)
    assert len(bomb) < 128 << 10
    with replying({"/bomb.tgz": Reply(bomb)}) as (base, _):
        with pytest.raises(ContextError, match="the unpacked archive exceeds the limit of "
                                               "1048576 bytes"):
            open_context(base + "/bomb.tgz", tmp_dir=tmp)


def test_dockerfile_bound(tmp: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urlsource, "MAX_DOCKERFILE", 4096)
    text = b"FROM scratch\n" + b"# padding\n" * 1000
    with replying({"/Dockerfile": Reply(text, content_type="text/plain")}) as (base, _):
        with pytest.raises(ContextError, match="the Dockerfile exceeds the limit of 4096"):
            open_context(base + "/Dockerfile", tmp_dir=tmp)
        with pytest.raises(urlsource.UrlError, match="the Dockerfile exceeds the limit"):
            open_url(base + "/Dockerfile", tmp_dir=tmp, daemon=True)


# --- dockerd's rule: the Content-Type decides ------------------------------------------------

def test_daemon_takes_the_type_the_server_names(tmp: str) -> None:
    replies = {"/as-text": Reply(GZ, content_type="text/plain; charset=utf-8"),
               "/as-gzip": Reply(GZ, content_type="application/x-gzip"),
               "/as-tar": Reply(COMPRESS["zstd"](CONTEXT), content_type="application/x-tar"),
               "/untyped": Reply(GZ, content_type=None),
               "/df-octet": Reply(DOCKERFILE, content_type="application/octet-stream")}
    with replying(replies) as (base, _):
        # text/plain is a Dockerfile whatever the bytes (dockerd's rule, not the CLI's)
        with open_url(base + "/as-text", tmp_dir=tmp, daemon=True) as ctx:
            assert ctx.dockerfile == GZ and os.listdir(ctx.dir) == []
        for path in ("/as-gzip", "/as-tar", "/untyped"):
            with open_url(base + path, dockerfile="sub/Dockerfile.app", tmp_dir=tmp,
                          daemon=True) as ctx:
                assert ctx.dockerfile_name == "sub/Dockerfile.app", path
                assert os.path.isfile(os.path.join(ctx.dir, "a"))
        with open_url(base + "/df-octet", dockerfile="x", tmp_dir=tmp, daemon=True) as ctx:
            assert ctx.dockerfile == DOCKERFILE and os.listdir(ctx.dir) == []


def test_daemon_refuses_other_types_in_dockerds_words(tmp: str) -> None:
    replies = {"/html": Reply(b"<html><body>hi</body></html>", content_type="text/html"),
               "/sniffed-html": Reply(b"\n  <!DOCTYPE html>\n<p>x</p>"),
               "/zip": Reply(b"PK\x03\x04" + bytes(40), content_type="application/zip"),
               "/empty": Reply(b"", content_type="application/x-tar")}
    with replying(replies) as (base, _):
        cases = [("/html", 'unsupported Content-Type "text/html"'),
                 ("/sniffed-html", 'unsupported Content-Type "application/octet-stream"'),
                 ("/zip", 'unsupported Content-Type "application/zip"'),
                 ("/empty", "empty response")]
        for path, words in cases:
            with pytest.raises(urlsource.UrlError) as err:
                open_url(base + path, tmp_dir=tmp, daemon=True)
            assert str(err.value) == (f"error detecting content type for remote "
                                      f"{base}{path}: {words}")
            assert err.value.status == 500


def test_daemon_download_errors_carry_dockerds_status(tmp: str) -> None:
    replies = {"/bad": Reply(b"no", 400, "text/plain"), "/auth": Reply(b"", 401, None),
               "/forbidden": Reply(b"", 403, None), "/boom": Reply(b"oops", 502, None)}
    with replying(replies) as (base, _):
        for path, status in [("/missing", 404), ("/bad", 400), ("/auth", 401),
                             ("/forbidden", 403), ("/boom", 500)]:
            with pytest.raises(urlsource.UrlError) as err:
                open_url(base + path, tmp_dir=tmp, daemon=True)
            assert err.value.status == status, path
            assert str(err.value).startswith(f"error downloading remote context {base}{path}: "
                                             f"failed to GET {base}{path} with status ")


@pytest.mark.parametrize(("data", "kind"), [
    (b"FROM scratch\n", "text/plain"),
    (b"\xef\xbb\xbfFROM scratch\n", "text/plain"),
    (b"  <HTML>", "text/html"),
    (b"<!-- x -->", "text/html"),
    (b"<a", "text/plain"),            # a tag needs a space or '>' after it
    (b"<?xml version='1.0'?>", "text/xml"),
    (b"%PDF-1.4", "application/pdf"),
    (b"BM and more", "image/bmp"),
    (b"\x1f\x8b\x08\x00", "application/x-gzip"),
    (b"BZh91AY&SY\x00", "application/octet-stream"),
    (b"ctx/\x00\x00\x00", "application/octet-stream"),
])
def test_gos_sniffing(data: bytes, kind: str) -> None:
    assert urlsource.detect_content_type(data) == kind
