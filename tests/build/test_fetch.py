"""ADD of an http URL: served from a local server on 127.0.0.1 only. The file's name, its
0600 mode and Last-Modified mtime, --checksum, --unpack, and errors that add nothing."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import stat
import tarfile
from collections.abc import Iterator

import pytest

from barque.build import fetch
from barque.build.fetch import FetchError
from tests.support.httpd import serving

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_proxy")]

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_TS = 1445412480


def _tgz() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("inside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"in"))
    return gzip.compress(out.getvalue())


FILES: dict[str, tuple[bytes, dict[str, str]]] = {
    "/files/hello.txt": (b"hello\n", {"Last-Modified": LAST_MODIFIED}),
    "/files/plain": (b"no date", {}),
    "/dl": (b"disposed", {"Content-Disposition": 'attachment; filename="report.csv"'}),
    "/": (b"index", {}),
    "/a.tar.gz": (_tgz(), {}),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        found = FILES.get(self.path)
        if found is None:
            self.send_error(404)
            return
        body, headers = found
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)) as httpd:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def dirs(tmp_path: os.PathLike) -> tuple[str, str]:
    root, tmp = os.path.join(str(tmp_path), "root"), os.path.join(str(tmp_path), "tmp")
    os.mkdir(root)
    return root, tmp


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_name_from_url_mode_0600_and_last_modified(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    digest = fetch.add_url(server + "/files/hello.txt", tmp, root, "/srv/")
    out = os.path.join(root, "srv/hello.txt")
    st = os.stat(out)
    assert _read(out) == b"hello\n"
    assert stat.S_IMODE(st.st_mode) == 0o600 and (st.st_uid, st.st_gid) == (0, 0)
    assert st.st_mtime == LAST_MODIFIED_TS
    assert digest == "sha256:" + hashlib.sha256(b"hello\n").hexdigest()
    assert os.listdir(tmp) == []  # the download's temporary dir is gone


def test_dest_without_slash_is_the_file_name(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    fetch.add_url(server + "/files/plain", tmp, root, "bar", workdir="/w")
    st = os.stat(os.path.join(root, "w/bar"))
    assert _read(os.path.join(root, "w/bar")) == b"no date" and st.st_mtime == 0


def test_content_disposition_and_default_names(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    fetch.add_url(server + "/dl", tmp, root, "/d/")
    fetch.add_url(server + "/", tmp, root, "/d/")
    assert sorted(os.listdir(os.path.join(root, "d"))) == ["download", "report.csv"]


def test_chown_and_chmod(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    fetch.add_url(server + "/files/plain", tmp, root, "/c/", chown=(5, 6), chmod=0o755)
    st = os.stat(os.path.join(root, "c/plain"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (5, 6, 0o755)


def test_checksum_verified(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    good = "sha256:" + hashlib.sha256(b"hello\n").hexdigest()
    fetch.add_url(server + "/files/hello.txt", tmp, root, "/ok/", checksum=good)
    assert os.path.exists(os.path.join(root, "ok/hello.txt"))
    bad = "sha256:" + "0" * 64
    with pytest.raises(FetchError, match=f"digest mismatch {good}: {bad}"):
        fetch.add_url(server + "/files/hello.txt", tmp, root, "/bad/", checksum=bad)
    assert not os.path.exists(os.path.join(root, "bad")) and os.listdir(tmp) == []
    with pytest.raises(FetchError, match="unsupported digest algorithm"):
        fetch.add_url(server + "/files/hello.txt", tmp, root, "/bad/", checksum="md5:00")
    with pytest.raises(FetchError, match="invalid checksum digest format"):
        fetch.add_url(server + "/files/hello.txt", tmp, root, "/bad/", checksum="sha256:xyz")


def test_remote_archives_unpack_only_when_asked(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    fetch.add_url(server + "/a.tar.gz", tmp, root, "/kept/")
    assert os.listdir(os.path.join(root, "kept")) == ["a.tar.gz"]
    fetch.add_url(server + "/a.tar.gz", tmp, root, "/unpacked", unpack=True)
    assert _read(os.path.join(root, "unpacked/inside.txt")) == b"in"


def test_http_errors_add_nothing(server: str, dirs: tuple[str, str]) -> None:
    root, tmp = dirs
    with pytest.raises(FetchError, match="invalid response status 404"):
        fetch.add_url(server + "/missing", tmp, root, "/x/")
    with pytest.raises(FetchError, match="failed to load"):
        fetch.add_url("http://127.0.0.1:1/nothing-listens", tmp, root, "/x/")
    assert os.listdir(root) == []


def test_symlinked_destination_stays_in_root(server: str, dirs: tuple[str, str],
                                             tmp_path: os.PathLike) -> None:
    root, tmp = dirs
    host = os.path.join(str(tmp_path), "host")
    os.mkdir(host)
    os.symlink(host, os.path.join(root, "app"))
    fetch.add_url(server + "/files/hello.txt", tmp, root, "/app/")
    assert os.listdir(host) == []
    assert _read(os.path.join(root, host.lstrip("/"), "hello.txt")) == b"hello\n"
