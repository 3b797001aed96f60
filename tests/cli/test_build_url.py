"""`barque build URL` for http(s) URLs that are not git repositories: a tarball or a
Dockerfile served by the test on 127.0.0.1; the results read through `-o type=local`; the
docker CLI's words for a failed download; nothing left in the root's tmp."""

from __future__ import annotations

import gzip
import lzma
import os

import pytest

from tests.cli.conftest import Barque
from tests.cli.test_build import build
from tests.support.httpd import Reply, replying
from tests.support.tars import files_tar

pytestmark = [pytest.mark.slow]
NO_PROXY = {"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}


def _tmp_left(barque: Barque) -> list[str]:
    tmp = os.path.join(barque.root, "tmp")
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def _read(*parts: str) -> bytes:
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


CTX = files_tar({"Dockerfile": b"FROM scratch\nCOPY hello.txt /\n", "hello.txt": b"hi\n",
            "Dockerfile.alt": b"FROM scratch\nCOPY hello.txt /alt.txt\n"})


def test_tarball_contexts(barque: Barque, tmp_path: os.PathLike[str]) -> None:
    replies = {"/ctx.tar.gz": Reply(gzip.compress(CTX), content_type="application/gzip"),
               "/ctx.tar.xz": Reply(lzma.compress(CTX), content_type=None)}
    out1, out2 = (os.path.join(str(tmp_path), name) for name in ("o1", "o2"))
    with replying(replies) as (base, _):
        result = build(barque, "-o", f"type=local,dest={out1}", base + "/ctx.tar.gz",
                       env=NO_PROXY)
        assert result.returncode == 0, result.stderr
        result = build(barque, "-f", "Dockerfile.alt", "-o", f"type=local,dest={out2}",
                       base + "/ctx.tar.xz", env=NO_PROXY)
        assert result.returncode == 0, result.stderr
    assert os.listdir(out1) == ["hello.txt"] and _read(out1, "hello.txt") == b"hi\n"
    assert os.listdir(out2) == ["alt.txt"]
    assert _tmp_left(barque) == []


def test_dockerfile_over_http(barque: Barque) -> None:
    dockerfile = b"FROM busybox\nLABEL from=url\n"
    with replying({"/Dockerfile": Reply(dockerfile, content_type="text/plain")}) as (base, _):
        result = build(barque, "-t", "urlctx:1", base + "/Dockerfile", env=NO_PROXY)
    assert result.returncode == 0, result.stderr
    labels = barque.run("image", "inspect", "-f", "{{json .Config.Labels}}", "urlctx:1")
    assert labels.stdout.strip() == '{"from":"url"}'
    assert _tmp_left(barque) == []


def test_failed_downloads_in_the_docker_clis_words(barque: Barque) -> None:
    evil = files_tar({"../escaped": b"x", "Dockerfile": b"FROM scratch\n"})
    with replying({"/evil.tar": Reply(evil)}) as (base, _):
        url = base + "/nope.tar.gz"
        result = build(barque, url, env=NO_PROXY)
        assert result.returncode == 1
        assert result.stderr.endswith(
            f"ERROR: unable to prepare context: unable to download remote context {url}: "
            f"failed to GET {url} with status 404 Not Found: 404 page not found\n"), \
            result.stderr
        result = build(barque, base + "/evil.tar", env=NO_PROXY)
        assert result.returncode == 1
        assert "ERROR: unable to prepare context: invalid archive" in result.stderr
    assert _tmp_left(barque) == []
    assert not os.path.exists(os.path.join(barque.root, "escaped"))
